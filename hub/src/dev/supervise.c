/* Supervision: a failed device is restarted, and the posted writes its process had not applied are delivered
 * to the next one. */
#define _GNU_SOURCE
#include "dev/supervise.h"

#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dev/handshake.h"
#include "dev/link.h"
#include "dev/replay.h"
#include "dev/serve.h"
#include "dev/spawn.h"

static void restart_device(hub_device *d)
{
    hub_devmgr *m = d->m;
    const hub_device_config *cfg = d->cfg;
    d->restarts++;
    hub_dev_replay rp;
    hub_dev_replay_take(d, &rp);
    uint64_t t0 = hub_dev_now_ns();
    hub_dev_last_words(d);          /* its last console output and log lines, before the channel goes */
    hub_dev_inc_end(d);
    Error *err = NULL;
    int r = hub_dev_start(d, cfg, true, &err);
    hub_dev_observe(m, restarted, d->name, d->restarts, r >= 0, r >= 0 ? d->inc.pid : 0, hub_dev_now_ns() - t0,
                    vclock_now(m->env.clock));
    if (r < 0) {
        hub_dev_log(m, d->name, PLX_LOG_ERR, "restart %u of %u failed: %s", d->restarts, d->max_restarts,
                    err ? error_get_pretty(err) : strerror(-r));
        error_free(err);
        hub_dev_inc_end(d);
        d->failed_at = hub_dev_now_ms();
        hub_dev_replay_keep(d, &rp);     /* the next process gets them */
        return;
    }
    d->failed = false;
    hub_dev_log(m, d->name, PLX_LOG_NOTICE, "restarted (%u of %u)", d->restarts, d->max_restarts);
    hub_dev_replay_deliver(d, &rp);
}

void
hub_dev_supervise(hub_devmgr *m)
{
    if (m->shutting_down)
        return;
    /* A guest access waits for a restart (the CPU abandoned it and makes it again once this returns): the
     * restart is done now, after the rest of its backoff. */
    bool wanted = m->restart_wanted;
    m->restart_wanted = false;
    uint64_t now = 0;
    for (hub_device *d = m->devs; d; d = d->next) {
        hub_dev_check_refused(d);
        if (!hub_dev_restartable(d))
            continue;
        if (!now)
            now = hub_dev_now_ms();
        uint64_t due = d->failed_at + d->backoff_ms;
        if (now < due && wanted) {
            struct timespec ts = { (time_t)((due - now) / 1000), (long)((due - now) % 1000) * 1000000 };
            nanosleep(&ts, NULL);
            now = due;
        }
        if (now >= due) {
            restart_device(d);
            now = hub_dev_now_ms();
        }
    }
}
