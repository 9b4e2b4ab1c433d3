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

/*
 * The context's ZAP handler (ZeroMQ RFC 27), for CURVE bind sides: every handshake a CURVE server socket makes is
 * put to it, with the socket's domain and the client's public key, and it lets in only the one key registered for
 * that domain. It runs on a thread of its own (ZeroMQ waits for its answer on its I/O thread), from the first
 * CURVE bind until the context ends.
 */
#define ZAP_SLOTS 256
static struct zap_slot {
    bool used;
    uint8_t key[PLX_CURVE_KEY];
    unsigned refused;
} zap_table[ZAP_SLOTS];
static pthread_mutex_t zap_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_t zap_thread;
static bool zap_running;

static void *zap_serve(void *sock)
{
    for (;;) {
        zmq_msg_t part[8];
        int n = 0;
        bool more = true;
        while (more && n < 8) {
            zmq_msg_init(&part[n]);
            if (zmq_msg_recv(&part[n], sock, 0) < 0) {
                zmq_msg_close(&part[n]);
                for (int i = 0; i < n; i++)
                    zmq_msg_close(&part[i]);
                if (errno == EINTR)
                    goto next;
                zmq_close(sock);       /* ETERM: the context ends */
                return NULL;
            }
            more = zmq_msg_more(&part[n]);
            n++;
        }
        /* version, request id, domain, address, identity, mechanism, the client's key */
        bool ok = false;
        if (n >= 7 && zmq_msg_size(&part[6]) == PLX_CURVE_KEY && zmq_msg_size(&part[2]) < 16) {
            char dom[16] = { 0 };
            memcpy(dom, zmq_msg_data(&part[2]), zmq_msg_size(&part[2]));
            unsigned slot = (unsigned)strtoul(dom, NULL, 10);
            pthread_mutex_lock(&zap_lock);
            if (slot < ZAP_SLOTS && zap_table[slot].used) {
                ok = memcmp(zap_table[slot].key, zmq_msg_data(&part[6]), PLX_CURVE_KEY) == 0;
                if (!ok)
                    zap_table[slot].refused++;
            }
            pthread_mutex_unlock(&zap_lock);
        }
        const char *code = ok ? "200" : "400", *text = ok ? "OK" : "key not allowed";
        zmq_send(sock, "1.0", 3, ZMQ_SNDMORE);
        if (n >= 2)
            zmq_send(sock, zmq_msg_data(&part[1]), zmq_msg_size(&part[1]), ZMQ_SNDMORE);
        else
            zmq_send(sock, "", 0, ZMQ_SNDMORE);
        zmq_send(sock, code, 3, ZMQ_SNDMORE);
        zmq_send(sock, text, strlen(text), ZMQ_SNDMORE);
        zmq_send(sock, "", 0, ZMQ_SNDMORE);        /* user id */
        zmq_send(sock, "", 0, 0);                  /* metadata */
        for (int i = 0; i < n; i++)
            zmq_msg_close(&part[i]);
    next:;
    }
}

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
        zmq_ctx_term(zctx);         /* the ZAP thread sees ETERM, closes its socket and ends */
        zctx = NULL;
        if (zap_running) {
            pthread_join(zap_thread, NULL);
            zap_running = false;
        }
    }
    pthread_mutex_unlock(&zctx_lock);
}

/* Start the ZAP handler of context @z if it is not running. */
static int zap_start(void *z)
{
    pthread_mutex_lock(&zctx_lock);
    int r = 0;
    if (!zap_running) {
        void *s = zmq_socket(z, ZMQ_REP);
        if (!s || zmq_bind(s, "inproc://zeromq.zap.01") < 0 || pthread_create(&zap_thread, NULL, zap_serve, s)) {
            r = -errno;
            if (s)
                zmq_close(s);
        } else {
            zap_running = true;
        }
    }
    pthread_mutex_unlock(&zctx_lock);
    return r;
}

/* A ZAP table slot for @key; -1 if the table is full. */
static int zap_register(const uint8_t key[PLX_CURVE_KEY])
{
    pthread_mutex_lock(&zap_lock);
    int slot = -1;
    for (int i = 0; i < ZAP_SLOTS && slot < 0; i++)
        if (!zap_table[i].used) {
            zap_table[i] = (struct zap_slot){ .used = true };
            memcpy(zap_table[i].key, key, PLX_CURVE_KEY);
            slot = i;
        }
    pthread_mutex_unlock(&zap_lock);
    return slot;
}

static void zap_unregister(int slot)
{
    if (slot < 0)
        return;
    pthread_mutex_lock(&zap_lock);
    zap_table[slot].used = false;
    pthread_mutex_unlock(&zap_lock);
}

unsigned plx_chan_curve_refused(const plx_chan *c)
{
    if (c->zap_slot < 0)
        return 0;
    pthread_mutex_lock(&zap_lock);
    unsigned n = zap_table[c->zap_slot].refused;
    pthread_mutex_unlock(&zap_lock);
    return n;
}

int plx_curve_keypair(uint8_t public_key[PLX_CURVE_KEY], uint8_t secret_key[PLX_CURVE_KEY])
{
    char pub[PLX_CURVE_Z85], sec[PLX_CURVE_Z85];
    if (zmq_curve_keypair(pub, sec) < 0)
        return -errno;
    zmq_z85_decode(public_key, pub);
    zmq_z85_decode(secret_key, sec);
    return 0;
}

int plx_curve_public(const uint8_t secret_key[PLX_CURVE_KEY], uint8_t public_key[PLX_CURVE_KEY])
{
    char pub[PLX_CURVE_Z85], sec[PLX_CURVE_Z85];
    zmq_z85_encode(sec, secret_key, PLX_CURVE_KEY);
    if (zmq_curve_public(pub, sec) < 0)
        return -errno;
    zmq_z85_decode(public_key, pub);
    return 0;
}

int plx_curve_decode(const char *z85, uint8_t key[PLX_CURVE_KEY])
{
    if (!z85 || strlen(z85) != PLX_CURVE_Z85 - 1 || !zmq_z85_decode(key, z85))
        return -EINVAL;
    return 0;
}

void plx_curve_encode(const uint8_t key[PLX_CURVE_KEY], char z85[PLX_CURVE_Z85])
{
    zmq_z85_encode(z85, key, PLX_CURVE_KEY);
}

static plx_chan *zmq_open(const char *endpoint, bool bind, int recv_ms, int linger_ms, const plx_curve *curve,
                          char *err, size_t err_len)
{
    void *z = zctx_get();
    void *sock = z ? zmq_socket(z, ZMQ_PAIR) : NULL;
    if (!sock) {
        snprintf(err, err_len, "cannot create a ZeroMQ socket: %s", zmq_strerror(errno));
        if (z)
            zctx_put();
        return NULL;
    }
    /* Bounded queues both ways: a peer that does not read makes the sender wait, then fail, never grow it. */
    int hwm = PLX_ZMQ_HWM;
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
    if (curve) {
        int one = 1;
        bool ok;
        if (bind) {
            char dom[16];
            ok = zap_start(z) == 0 && (c->zap_slot = zap_register(curve->peer_key)) >= 0;
            snprintf(dom, sizeof(dom), "%d", c->zap_slot);
            ok = ok && zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof(one)) == 0 &&
                 zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, curve->secret_key, PLX_CURVE_KEY) == 0 &&
                 zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, dom, strlen(dom)) == 0;
        } else {
            ok = zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, curve->peer_key, PLX_CURVE_KEY) == 0 &&
                 zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, curve->public_key, PLX_CURVE_KEY) == 0 &&
                 zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, curve->secret_key, PLX_CURVE_KEY) == 0;
        }
        if (!ok) {
            snprintf(err, err_len, "cannot set up CURVE on %s: %s", endpoint, zmq_strerror(errno));
            plx_chan_close(c);
            return NULL;
        }
    }
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
    return zmq_open(endpoint, true, recv_ms, 0, NULL, err, err_len);
}

plx_chan *plx_chan_zmq_connect(const char *endpoint, int recv_ms, char *err, size_t err_len)
{
    /* a device's last words (Goodbye, an Error) get out before it exits */
    return zmq_open(endpoint, false, recv_ms, 2000, NULL, err, err_len);
}

plx_chan *plx_chan_zmq_bind_curve(const char *endpoint, int recv_ms, const plx_curve *curve, char *err,
                                  size_t err_len)
{
    return zmq_open(endpoint, true, recv_ms, 0, curve, err, err_len);
}

plx_chan *plx_chan_zmq_connect_curve(const char *endpoint, int recv_ms, const plx_curve *curve, char *err,
                                     size_t err_len)
{
    return zmq_open(endpoint, false, recv_ms, 2000, curve, err, err_len);
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




/*
 * Past the high-water mark (PLX_ZMQ_HWM frames queued towards a peer that does not take them), a send waits for
 * room up to the send timeout, then fails with -ETIMEDOUT; with PLX_CHAN_DONTWAIT it fails at once with -EAGAIN.
 * A PAIR whose peer is gone (or never came) behaves the same.
 */
static int zmq_chan_send(plx_chan *c, const void *buf, size_t len, int flags)
{
    if (zmq_send(c->sock, buf, len, ZMQ_DONTWAIT) >= 0)
        return 0;
    if (errno != EAGAIN || (flags & PLX_CHAN_DONTWAIT))
        return -errno;
    zmq_pollitem_t it = { .socket = c->sock, .events = ZMQ_POLLOUT };
    int r = zmq_poll(&it, 1, c->send_timeout_ms);
    if (r < 0)
        return -errno;
    if (r == 0)
        return -ETIMEDOUT;
    return zmq_send(c->sock, buf, len, ZMQ_DONTWAIT) < 0 ? -errno : 0;
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
        zap_unregister(c->zap_slot);
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
