/* The channel to a device's process: open it, send on it (held posted writes first), wait on it, close it. */
#define _GNU_SOURCE
#include "dev/link.h"

#include <ctype.h>
#include <poll.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dev/device.h"

/* ---- sending --------------------------------------------------------------------------------------------- */

int
hub_dev_send(hub_device *d, Plx__Envelope *env)
{
    if (d->inc.batch.n)
        hub_dev_flush(d);
    env->now_ns = vclock_now(d->m->env.clock);
    int r = plx_wire_send(&d->inc.wire, env, 0);
    if (r < 0)
        hub_dev_send_failed(d, r);
    d->inc.poked = true;
    return r;
}

const char *
hub_dev_chan_strerror(hub_device *d, int r)
{
    return plx_chan_strerror(d->inc.chan, r);
}

void
hub_dev_send_failed(hub_device *d, int r)
{
    if (d->m->shutting_down || d->failed)
        return;
    if (d->inc.pidfd >= 0) {
        /* Most likely the process died: say so rather than "not connected". */
        struct pollfd p = { .fd = d->inc.pidfd, .events = POLLIN };
        if (poll(&p, 1, 100) > 0 && hub_dev_reap(d))
            return;
    }
    /* ZeroMQ's queue is unbounded: EAGAIN means the device is no longer connected. */
    hub_dev_fail(d, "cannot send to the device: %s", r == -EAGAIN ? "not connected" : hub_dev_chan_strerror(d, r));
}

int
hub_dev_wait(hub_device *d, int timeout_ms)
{
    struct pollfd it[2] = { { .fd = plx_chan_poll_fd(d->inc.chan), .events = POLLIN },
                            { .fd = d->inc.pidfd, .events = POLLIN } };
    bool ready = plx_chan_poll_prepare(d->inc.chan);
    int n = d->inc.pidfd >= 0 ? 2 : 1;
    int r = poll(it, (nfds_t)n, ready ? 0 : timeout_ms);
    int e = errno;
    bool frame = plx_chan_poll_done(d->inc.chan, r > 0 ? it[0].revents : 0);
    if (r < 0)
        return e == EINTR ? 0 : -e;
    if (ready || frame)
        return 1;
    return n == 2 && (it[1].revents & POLLIN) ? 2 : 0;
}

void
hub_dev_send_error(hub_device *d, int code, const char *text)
{
    Plx__Error er = PLX__ERROR__INIT;
    er.code = (uint32_t)code;
    er.text = (char *)text;
    Plx__Envelope env = PLX__ENVELOPE__INIT;
    env.msg_case = PLX__ENVELOPE__MSG_ERROR;
    env.error = &er;
    env.now_ns = vclock_now(d->m->env.clock);
    plx_wire_send(&d->inc.wire, &env, PLX_CHAN_DONTWAIT);
}


void
hub_dev_flush(hub_device *d)
{
    if (!d->inc.batch.n)
        return;
    if (d->failed) {
        d->inc.batch.n = 0;
        d->inc.batch.len = 0;
        return;
    }
    int r = plx_wire_batch_send(&d->inc.wire, &d->inc.batch, d->inc.batch_time, 0);
    if (r < 0)
        hub_dev_send_failed(d, r);
    d->inc.poked = true;
}

/* Whether the device moves to the ring after the handshake: on this host unless the config or PLEXUS_TRANSPORT
 * says otherwise (and if the device can; see handshake()); never for tcp:// and explicit endpoints. */
static int choose_transport(hub_device *d, const hub_device_config *cfg, Error **errp)
{
    bool remote = cfg->endpoint && strncmp(cfg->endpoint, "tcp://", 6) == 0;
    hub_transport t = cfg->transport;
    if (t == HUB_TRANSPORT_AUTO) {
        const char *e = getenv("PLEXUS_TRANSPORT");
        t = remote || cfg->endpoint ? HUB_TRANSPORT_ZMQ
            : e && strcmp(e, "zmq") == 0 ? HUB_TRANSPORT_ZMQ : HUB_TRANSPORT_RING;
    }
    if (t == HUB_TRANSPORT_RING && cfg->endpoint) {
        error_setg(errp, "device '%s': the ring transport is for devices on this host; endpoint '%s' is ZeroMQ",
                   d->name, cfg->endpoint);
        return -EINVAL;
    }
    d->inc.ring_wanted = t == HUB_TRANSPORT_RING;
    d->inc.ring_required = cfg->transport == HUB_TRANSPORT_RING;
    return 0;
}

int
hub_dev_bind_channel(hub_device *d, const hub_device_config *cfg, Error **errp)
{
    hub_devmgr *m = d->m;
    if (choose_transport(d, cfg, errp) < 0)
        return -EINVAL;
    char ep[600], err[300];
    if (cfg->endpoint) {
        d->inc.tcp = strncmp(cfg->endpoint, "tcp://", 6) == 0;
        snprintf(ep, sizeof(ep), "%s", cfg->endpoint);
    } else {
        char clean[40];
        size_t j = 0;
        for (size_t i = 0; d->name[i] && j < sizeof(clean) - 1; i++)
            clean[j++] = isalnum((unsigned char)d->name[i]) || d->name[i] == '-' ? d->name[i] : '_';
        clean[j] = 0;
        if (asprintf(&d->inc.ipc_path, "%s/dev%u-%s.ipc", m->run_dir, m->next_id++, clean) < 0) {
            d->inc.ipc_path = NULL;
            return -ENOMEM;
        }
        snprintf(ep, sizeof(ep), "ipc://%s", d->inc.ipc_path);
    }
    d->inc.chan = plx_chan_zmq_bind(ep, HUB_RECV_SLICE_MS, err, sizeof(err));
    if (!d->inc.chan) {
        error_setg(errp, "device '%s': %s", d->name, err);
        return -EIO;
    }
    plx_wire_init(&d->inc.wire, d->inc.chan);
    d->inc.endpoint = strdup(plx_chan_endpoint(d->inc.chan));
    return d->inc.endpoint ? 0 : -ENOMEM;
}
