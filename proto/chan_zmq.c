/* The device channel over a ZeroMQ PAIR socket (include/plexus/chan.h). */
#define _GNU_SOURCE
#include "chan_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const plx_chan_ops zmq_ops;

/* ---- sockets ----------------------------------------------------------------------------------------------- */

plx_chan *plx_chan_zmq(void *sock)
{
    plx_chan *c = plx_chan_alloc(PLX_CHAN_ZMQ, &zmq_ops);
    if (!c)
        return NULL;
    c->sock = sock;
    size_t l = sizeof(c->rcvtimeo);
    if (zmq_getsockopt(sock, ZMQ_RCVTIMEO, &c->rcvtimeo, &l) < 0)
        c->rcvtimeo = -1;
    return c;
}

/* One ZeroMQ context per process for every channel made here; its I/O thread ends with the last channel (a
 * device that moved to the ring and is then sandboxed has none left). */
static pthread_mutex_t zctx_lock = PTHREAD_MUTEX_INITIALIZER;
static void *zctx;
static unsigned zctx_users;

static void *zctx_get(void)
{
    pthread_mutex_lock(&zctx_lock);
    if (!zctx)
        zctx = zmq_ctx_new();
    void *z = zctx;
    if (z)
        zctx_users++;
    pthread_mutex_unlock(&zctx_lock);
    return z;
}

static void zctx_put(void)
{
    pthread_mutex_lock(&zctx_lock);
    if (zctx_users && --zctx_users == 0) {
        zmq_ctx_term(zctx);
        zctx = NULL;
    }
    pthread_mutex_unlock(&zctx_lock);
}

static plx_chan *zmq_open(const char *endpoint, bool bind, int recv_ms, int linger_ms, char *err, size_t err_len)
{
    void *z = zctx_get();
    void *sock = z ? zmq_socket(z, ZMQ_PAIR) : NULL;
    if (!sock) {
        snprintf(err, err_len, "cannot create a ZeroMQ socket: %s", zmq_strerror(errno));
        if (z)
            zctx_put();
        return NULL;
    }
    int hwm = 0;
    int64_t maxmsg = PLX_MAX_FRAME;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger_ms, sizeof(linger_ms));
    zmq_setsockopt(sock, ZMQ_SNDHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(sock, ZMQ_RCVHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg));
    zmq_setsockopt(sock, ZMQ_RCVTIMEO, &recv_ms, sizeof(recv_ms));
    if (strncmp(endpoint, "tcp://", 6) == 0) {
        /* Across hosts a peer can vanish without closing its end: ZeroMQ's heartbeats (docs/protocol.md
         * "Liveness") close a connection that stays silent, and the monitor below reports it. */
        int ivl = PLX_HEARTBEAT_IVL_MS, timeout = PLX_HEARTBEAT_TIMEOUT_MS;
        zmq_setsockopt(sock, ZMQ_HEARTBEAT_IVL, &ivl, sizeof(ivl));
        zmq_setsockopt(sock, ZMQ_HEARTBEAT_TIMEOUT, &timeout, sizeof(timeout));
        zmq_setsockopt(sock, ZMQ_HEARTBEAT_TTL, &timeout, sizeof(timeout));
    }
    plx_chan *c = plx_chan_alloc(PLX_CHAN_ZMQ, &zmq_ops);
    if (!c) {
        snprintf(err, err_len, "out of memory");
        zmq_close(sock);
        zctx_put();
        return NULL;
    }
    c->sock = sock;
    c->own_sock = true;
    c->rcvtimeo = recv_ms;
    char ep[sizeof(c->endpoint)];
    snprintf(ep, sizeof(ep), "%s", endpoint);
    size_t l = strlen(ep);
    if (bind && strncmp(ep, "tcp://", 6) == 0 && l >= 2 && strcmp(ep + l - 2, ":0") == 0)
        strcpy(ep + l - 1, "*");        /* any free port, as ZeroMQ spells it */
    if ((bind ? zmq_bind(sock, ep) : zmq_connect(sock, ep)) < 0) {
        snprintf(err, err_len, "cannot %s %s: %s", bind ? "bind" : "connect to", ep, zmq_strerror(errno));
        plx_chan_close(c);
        return NULL;
    }
    size_t ll = sizeof(c->endpoint);
    if (!bind || zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, c->endpoint, &ll) < 0 || ll <= 1)
        snprintf(c->endpoint, sizeof(c->endpoint), "%s", ep);
    /* Either side: the end of the connection, as ZeroMQ sees it (the peer's process closed it, or heartbeats
     * stopped). */
    char mon_ep[64];
    snprintf(mon_ep, sizeof(mon_ep), "inproc://plx-monitor-%p", (void *)c);
    if (zmq_socket_monitor(sock, mon_ep, ZMQ_EVENT_DISCONNECTED) == 0) {
        c->mon = zmq_socket(z, ZMQ_PAIR);
        if (c->mon && zmq_connect(c->mon, mon_ep) < 0) {
            zmq_close(c->mon);
            c->mon = NULL;
        }
    }
    return c;
}

plx_chan *plx_chan_zmq_bind(const char *endpoint, int recv_ms, char *err, size_t err_len)
{
    return zmq_open(endpoint, true, recv_ms, 0, err, err_len);
}

plx_chan *plx_chan_zmq_connect(const char *endpoint, int recv_ms, char *err, size_t err_len)
{
    /* a device's last words (Goodbye, an Error) get out before it exits */
    return zmq_open(endpoint, false, recv_ms, 2000, err, err_len);
}


/* What the monitor reported since last asked. */
static bool zmq_peer_gone(plx_chan *c)
{
    if (!c->mon)
        return false;
    for (;;) {
        zmq_msg_t ev, addr;
        zmq_msg_init(&ev);
        if (zmq_msg_recv(&ev, c->mon, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&ev);
            return c->peer_gone;
        }
        uint16_t id = 0;
        if (zmq_msg_size(&ev) >= 2)
            memcpy(&id, zmq_msg_data(&ev), 2);
        zmq_msg_close(&ev);
        zmq_msg_init(&addr);
        zmq_msg_recv(&addr, c->mon, 0);     /* second frame: the endpoint */
        zmq_msg_close(&addr);
        if (id == ZMQ_EVENT_DISCONNECTED)
            c->peer_gone = true;
    }
}




/* Never waits: with no high-water mark a connected PAIR socket queues everything, and a PAIR whose peer is
 * gone would block a plain send forever; -EAGAIN then says "not connected". */
static int zmq_chan_send(plx_chan *c, const void *buf, size_t len, int flags)
{
    (void)flags;
    if (zmq_send(c->sock, buf, len, ZMQ_DONTWAIT) < 0)
        return -errno;
    return 0;
}

static int zmq_chan_recv(plx_chan *c, const void **data, size_t *len, int timeout_ms)
{
    if (c->msg_live) {
        zmq_msg_close(&c->msg);
        c->msg_live = false;
    }
    int fl = 0;
    if (timeout_ms == 0)
        fl = ZMQ_DONTWAIT;
    else if (timeout_ms != c->rcvtimeo) {
        if (zmq_setsockopt(c->sock, ZMQ_RCVTIMEO, &timeout_ms, sizeof(timeout_ms)) == 0)
            c->rcvtimeo = timeout_ms;
    }
    zmq_msg_init(&c->msg);
    if (zmq_msg_recv(&c->msg, c->sock, fl) < 0) {
        int e = errno;
        zmq_msg_close(&c->msg);
        return -e;
    }
    c->msg_live = true;
    *data = zmq_msg_data(&c->msg);
    *len = zmq_msg_size(&c->msg);
    return 0;
}


static bool zmq_readable(plx_chan *c)
{
    int ev = 0;
    size_t l = sizeof(ev);
    /* Reading ZMQ_EVENTS also re-arms the edge-triggered ZMQ_FD. */
    return zmq_getsockopt(c->sock, ZMQ_EVENTS, &ev, &l) == 0 && (ev & ZMQ_POLLIN);
}

static int zmq_chan_spin(plx_chan *c)
{
    (void)c;
    return 0;       /* nothing to spin on */
}

static int zmq_poll_fd(const plx_chan *c)
{
    if (c->zfd < 0) {
        int fd = -1;
        size_t l = sizeof(fd);
        if (zmq_getsockopt(c->sock, ZMQ_FD, &fd, &l) == 0)
            ((plx_chan *)c)->zfd = fd;     /* the socket's for life: asked once */
    }
    return c->zfd;
}

static bool zmq_poll_prepare(plx_chan *c)
{
    return zmq_readable(c);
}

/* ZeroMQ's descriptor signals every change after the ZMQ_EVENTS read in plx_chan_poll_prepare(): quiet means
 * nothing came meanwhile. */
static bool zmq_poll_done(plx_chan *c, short revents)
{
    return revents ? zmq_readable(c) : false;
}

static int zmq_peer_poll_fd(const plx_chan *c)
{
    int fd = -1;
    size_t l = sizeof(fd);
    return c->mon && zmq_getsockopt(c->mon, ZMQ_FD, &fd, &l) == 0 ? fd : -1;
}

static const char *zmq_chan_strerror(const plx_chan *c, int r)
{
    (void)c;
    return zmq_strerror(-r);
}

static const char *zmq_endpoint(const plx_chan *c)
{
    return c->endpoint;
}

static void zmq_chan_close(plx_chan *c)
{
    if (c->msg_live)
        zmq_msg_close(&c->msg);
    if (c->mon) {
        zmq_socket_monitor(c->sock, NULL, 0);
        zmq_close(c->mon);
    }
    if (c->own_sock) {
        zmq_close(c->sock);
        zctx_put();
    }
}

static const plx_chan_ops zmq_ops = {
    .send = zmq_chan_send,
    .recv = zmq_chan_recv,
    .spin = zmq_chan_spin,
    .poll_fd = zmq_poll_fd,
    .poll_prepare = zmq_poll_prepare,
    .poll_done = zmq_poll_done,
    .peer_poll_fd = zmq_peer_poll_fd,
    .peer_gone = zmq_peer_gone,
    .strerror = zmq_chan_strerror,
    .endpoint = zmq_endpoint,
    .close = zmq_chan_close,
};
