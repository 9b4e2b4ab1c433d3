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
    if (r == -ETIMEDOUT && !d->inc.ring)
        hub_dev_fail(d, "cannot send to the device: it took none of the %u frames queued to it within %u ms "
                     "(limit: the ZeroMQ high-water mark)", PLX_ZMQ_HWM, d->timeout_ms);
    else
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

static bool loopback_host(const char *h, size_t n)
{
    return (n >= 4 && !strncmp(h, "127.", 4)) || (n == 9 && !strncmp(h, "localhost", 9)) ||
           (n == 5 && !strncmp(h, "[::1]", 5)) || (n == 3 && !strncmp(h, "::1", 3));
}

/*
 * A tcp:// channel is CURVE-encrypted and lets in only the device's key: the one the machine gives for it, or for
 * a device the hub starts itself a pair made for this process (handed to it in its environment). The hub's own
 * pair is the machine's, else made once per manager. Without a device key the endpoint is bound to the loopback
 * interface only (rewritten in @ep), and the log says so. 1: CURVE in @cv; 0: plain; -1 with @errp set.
 */
static int tcp_keys(hub_device *d, const hub_device_config *cfg, plx_curve *cv, char *ep, size_t ep_len,
                    Error **errp)
{
    hub_devmgr *m = d->m;
    uint8_t dev_public[PLX_CURVE_KEY];
    if (cfg->curve_key) {
        if (plx_curve_decode(cfg->curve_key, dev_public) < 0) {
            error_setg(errp, "device '%s': its CURVE key '%.48s' is not 40 characters of Z85", d->name,
                       cfg->curve_key);
            return -1;
        }
    } else if (!cfg->attach) {
        if (plx_curve_keypair(dev_public, d->inc.curve_secret) < 0) {
            error_setg(errp, "device '%s': cannot make a CURVE key pair: %s", d->name, strerror(errno));
            return -1;
        }
        d->inc.curve_given = true;
    } else {
        const char *h = ep + 6, *colon = strrchr(h, ':');
        if (colon && !loopback_host(h, (size_t)(colon - h))) {
            char port[16];
            snprintf(port, sizeof(port), "%s", colon + 1);
            snprintf(ep, ep_len, "tcp://127.0.0.1:%s", port);
            hub_dev_log(m, d->name, PLX_LOG_WARNING, "no CURVE key for the device (curve_key): its endpoint is "
                        "bound to the loopback interface only, %s, where any local process may connect as it", ep);
        }
        return 0;
    }
    if (!m->curve_ready) {
        if (m->env.curve_secret) {
            memcpy(m->curve.secret_key, m->env.curve_secret, PLX_CURVE_KEY);
            if (plx_curve_public(m->curve.secret_key, m->curve.public_key) < 0) {
                error_setg(errp, "device '%s': the hub's CURVE secret key is not usable", d->name);
                return -1;
            }
        } else if (plx_curve_keypair(m->curve.public_key, m->curve.secret_key) < 0) {
            error_setg(errp, "device '%s': cannot make the hub's CURVE key pair: %s", d->name, strerror(errno));
            return -1;
        }
        m->curve_ready = true;
    }
    *cv = m->curve;
    memcpy(cv->peer_key, dev_public, PLX_CURVE_KEY);
    return 1;
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
    plx_curve cv;
    bool curve = d->inc.tcp && tcp_keys(d, cfg, &cv, ep, sizeof(ep), errp) == 1;
    if (d->inc.tcp && !curve && errp && *errp)
        return -EINVAL;
    d->inc.chan = curve ? plx_chan_zmq_bind_curve(ep, HUB_RECV_SLICE_MS, &cv, err, sizeof(err))
                        : plx_chan_zmq_bind(ep, HUB_RECV_SLICE_MS, err, sizeof(err));
    if (!d->inc.chan) {
        error_setg(errp, "device '%s': %s", d->name, err);
        return -EIO;
    }
    plx_chan_set_send_timeout(d->inc.chan, (int)d->timeout_ms);
    plx_wire_init(&d->inc.wire, d->inc.chan);
    d->inc.endpoint = strdup(plx_chan_endpoint(d->inc.chan));
    return d->inc.endpoint ? 0 : -ENOMEM;
}

void
hub_dev_check_refused(hub_device *d)
{
    unsigned n = d->inc.tcp && d->inc.chan ? plx_chan_curve_refused(d->inc.chan) : 0;
    if (n <= d->inc.curve_refused)
        return;
    uint64_t now = hub_dev_now_ms();
    if (now - d->inc.curve_said_ms < 1000)
        return;             /* a stranger retrying is said once a second, with the count */
    d->inc.curve_said_ms = now;
    hub_dev_log(d->m, d->name, PLX_LOG_WARNING, "%u connection%s offering another CURVE key than the "
                "device's refused on %s", n - d->inc.curve_refused, n - d->inc.curve_refused == 1 ? "" : "s", d->inc.endpoint);
    d->inc.curve_refused = n;
}
