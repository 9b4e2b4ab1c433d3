/* In-process entry points for the fuzzer (tests/fuzz): a device without a process. */
#define _GNU_SOURCE
#include "dev/detached.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dev/declare.h"
#include "dev/link.h"
#include "dev/output.h"
#include "dev/serve.h"

hub_device *
hub_dev_new_detached(hub_devmgr *m, const char *name, unsigned n_irqs, const char *endpoint)
{
    hub_device *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->m = m;
    hub_dev_inc_begin(d);
    d->state_fd = -1;
    d->timeout_ms = 100;
    d->name = strdup(name);
    d->regions = calloc(1, sizeof(*d->regions));
    d->irq_names = calloc(n_irqs ? n_irqs : 1, sizeof(char *));
    d->irq_map = calloc(n_irqs ? n_irqs : 1, sizeof(unsigned));
    d->irq_level = calloc(n_irqs ? n_irqs : 1, 1);
    d->props = calloc(1, sizeof(char *));
    char err[300];
    d->inc.chan = plx_chan_zmq_bind(endpoint, -1, err, sizeof(err));
    if (!d->name || !d->regions || !d->irq_names || !d->irq_map || !d->irq_level || !d->props || !d->inc.chan) {
        hub_dev_destroy(d);
        return NULL;
    }
    for (unsigned i = 0; i < n_irqs; i++) {
        if (asprintf(&d->irq_names[i], "irq%u", i) < 0)
            d->irq_names[i] = NULL;
        d->irq_map[i] = i % 2 ? HUB_IRQ_UNMAPPED : i + 1;   /* some lines connected, some not */
        d->n_irqs++;
    }
    plx_wire_init(&d->inc.wire, d->inc.chan);
    return d;
}

int
hub_dev_feed(hub_device *d, const void *frame, size_t len)
{
    Plx__Envelope *env;
    int r = plx_wire_decode(&d->inc.wire, frame, len, &env);
    if (r == -EBADMSG) {
        hub_dev_complain(d, "undecodable frame dropped");
        return r;
    }
    if (r < 0)
        return r;
    hub_dev_serve(d, env);
    return 0;
}

int
hub_dev_feed_declaration(hub_device *d, const void *frame, size_t len)
{
    Plx__Envelope *env;
    int r = plx_wire_decode(&d->inc.wire, frame, len, &env);
    if (r < 0)
        return r;
    if (env->msg_case != PLX__ENVELOPE__MSG_DECLARE) {
        plx_wire_release(&d->inc.wire);
        return -EPROTO;
    }
    /* the declaration is checked into a scratch device, then dropped */
    hub_device t = { .m = d->m, .name = d->name, .state_fd = -1 };
    Error *err = NULL;
    r = hub_dev_decl_take(&t, env->declare, &err);
    error_free(err);
    hub_dev_decl_free(&t);
    plx_wire_release(&d->inc.wire);
    return r;
}

void
hub_dev_free_detached(hub_device *d)
{
    hub_dev_destroy(d);
}

