/* The device channel's interface (include/plexus/chan.h); the transports are chan_zmq.c and chan_ring.c. */
#include "chan_int.h"

#include <errno.h>
#include <stdlib.h>

plx_chan *plx_chan_alloc(plx_chan_kind kind, const plx_chan_ops *ops)
{
    plx_chan *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->ops = ops;
    c->kind = kind;
    c->send_timeout_ms = 10000;
    c->peer_fd = -1;
    for (int i = 0; i < PLX_RING_FDS; i++)
        c->fds[i] = -1;
    c->my_bell = c->peer_bell = -1;
    c->zfd = -1;
    c->zap_slot = -1;
    return c;
}

void plx_chan_close(plx_chan *c)
{
    if (!c)
        return;
    c->ops->close(c);
    free(c);
}

plx_chan_kind plx_chan_get_kind(const plx_chan *c)
{
    return c->kind;
}

void plx_chan_set_peer_fd(plx_chan *c, int fd)
{
    c->peer_fd = fd;
}

void plx_chan_set_send_timeout(plx_chan *c, int timeout_ms)
{
    c->send_timeout_ms = timeout_ms;
}

void plx_chan_set_spin_ns(plx_chan *c, uint64_t spin_ns)
{
    c->spin_ns = spin_ns;
}

int plx_chan_send(plx_chan *c, const void *buf, size_t len, int flags)
{
    return c->ops->send(c, buf, len, flags);
}

int plx_chan_recv(plx_chan *c, const void **data, size_t *len, int timeout_ms)
{
    return c->ops->recv(c, data, len, timeout_ms);
}

int plx_chan_spin(plx_chan *c)
{
    return c->ops->spin(c);
}

int plx_chan_poll_fd(const plx_chan *c)
{
    return c->ops->poll_fd(c);
}

bool plx_chan_poll_prepare(plx_chan *c)
{
    return c->ops->poll_prepare(c);
}

bool plx_chan_poll_done(plx_chan *c, short revents)
{
    return c->ops->poll_done(c, revents);
}

int plx_chan_peer_poll_fd(const plx_chan *c)
{
    return c->ops->peer_poll_fd(c);
}

bool plx_chan_peer_gone(plx_chan *c)
{
    return c->ops->peer_gone(c);
}

const char *plx_chan_strerror(const plx_chan *c, int r)
{
    if (r == -ETIMEDOUT)
        return "the device takes no frames (its ring stays full)";
    return c ? c->ops->strerror(c, r) : zmq_strerror(-r);
}

const char *plx_chan_endpoint(const plx_chan *c)
{
    return c->ops->endpoint(c);
}

const char *plx_chan_error(const plx_chan *c)
{
    return c->err;
}

void plx_chan_get_stats(const plx_chan *c, plx_chan_stats *out)
{
    *out = c->st;
}
