/* The handshake's shared pieces (see include/plexus/handshake.h). */
#define _GNU_SOURCE
#include "plexus/handshake.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define ATTACH_PREFIX "attach "
#define ATTACH_OK "ok "
#define ATTACH_RETRY "retry"

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void
plx_hs_hello_init(Plx__Hello *h, uint32_t caps, const char *name, const char *model)
{
    plx__hello__init(h);
    h->major = PLX_PROTOCOL_MAJOR;
    h->minor = PLX_PROTOCOL_MINOR;
    h->capabilities = caps;
    h->name = (char *)(name ? name : "");
    h->model = (char *)(model ? model : "");
    h->pid = (uint32_t)getpid();
}

int
plx_hs_hello_check(const Plx__Hello *h, uint32_t *minor, char *err, size_t err_len)
{
    if (h->major != PLX_PROTOCOL_MAJOR) {
        snprintf(err, err_len, "protocol %u.%u is not supported (this side speaks %u.x)", h->major, h->minor,
                 PLX_PROTOCOL_MAJOR);
        return -EPROTONOSUPPORT;
    }
    uint32_t ours = PLX_PROTOCOL_MINOR;
    *minor = h->minor < ours ? h->minor : ours;
    return 0;
}

int
plx_hs_send_fds(int sock, const int *fds, unsigned n)
{
    char data[4] = "fds";
    char cbuf[CMSG_SPACE(sizeof(int) * PLX_MAX_PASSED_FDS)];
    if (n == 0 || n > PLX_MAX_PASSED_FDS)
        return -EINVAL;
    struct iovec iov = { data, sizeof(data) };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                         .msg_controllen = CMSG_SPACE(sizeof(int) * n) };
    memset(cbuf, 0, sizeof(cbuf));
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * n);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
    return sendmsg(sock, &mh, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

int
plx_hs_recv_fds(int sock, int *fds, unsigned n, int timeout_ms)
{
    if (sock < 0 || n == 0 || n > PLX_MAX_PASSED_FDS)
        return -EINVAL;
    struct pollfd p = { .fd = sock, .events = POLLIN };
    int pr;
    while ((pr = poll(&p, 1, timeout_ms)) < 0 && errno == EINTR)
        ;
    if (pr < 0)
        return -errno;
    if (pr == 0)
        return -ETIMEDOUT;
    char data[16];
    char cbuf[CMSG_SPACE(sizeof(int) * PLX_MAX_PASSED_FDS)];
    struct iovec iov = { data, sizeof(data) };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
    ssize_t r = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
    if (r < 0)
        return -errno;
    if (r == 0)
        return -EPIPE;
    int got[PLX_MAX_PASSED_FDS];
    unsigned k = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        unsigned m = (unsigned)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        for (unsigned i = 0; i < m && k < PLX_MAX_PASSED_FDS; i++)
            memcpy(&got[k++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
    }
    if (k != n) {
        for (unsigned i = 0; i < k; i++)
            close(got[i]);
        return -EPROTO;
    }
    memcpy(fds, got, sizeof(int) * n);
    return 0;
}

plx_chan *
plx_hs_ring_offer(int sock, unsigned n_slots, uint64_t spin_ns)
{
    int fds[PLX_RING_FDS];
    plx_chan *ring = plx_chan_ring_create(n_slots, spin_ns, fds);
    if (!ring)
        return NULL;
    int r = plx_hs_send_fds(sock, fds, PLX_RING_FDS);
    if (r < 0) {
        plx_chan_close(ring);
        errno = -r;
        return NULL;
    }
    return ring;
}

plx_chan *
plx_hs_ring_accept(int sock, int timeout_ms, char *err, size_t err_len)
{
    int fds[PLX_RING_FDS];
    int r = plx_hs_recv_fds(sock, fds, PLX_RING_FDS, timeout_ms);
    if (r < 0) {
        snprintf(err, err_len, "the hub's ring did not arrive on the fd socket (%s)", strerror(-r));
        return NULL;
    }
    char why[200];
    plx_chan *ring = plx_chan_ring_open(fds, why, sizeof(why));
    if (!ring)
        snprintf(err, err_len, "cannot use the hub's ring: %s", why);
    return ring;
}

/* The key the device presents: @key itself, else the first line of @key_file (read now: the hub may write it
 * only once it adds the device). */
static int attach_key(const char *key, const char *key_file, char *out, size_t len, char *err, size_t err_len)
{
    if (key) {
        if (strlen(key) != PLX_ATTACH_KEY_LEN) {
            snprintf(err, err_len, "the attach key must be %u hex digits", PLX_ATTACH_KEY_LEN);
            return -EINVAL;
        }
        snprintf(out, len, "%s", key);
        return 0;
    }
    int fd = open(key_file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        snprintf(err, err_len, "cannot read the attach key %s: %s", key_file, strerror(errno));
        return -errno;
    }
    ssize_t n = read(fd, out, len - 1);
    close(fd);
    if (n < (ssize_t)PLX_ATTACH_KEY_LEN) {
        snprintf(err, err_len, "the attach key file %s holds no key", key_file);
        return -EINVAL;
    }
    out[PLX_ATTACH_KEY_LEN] = 0;
    return 0;
}

int
plx_hs_attach(const char *path, const char *name, const char *key, const char *key_file, int timeout_ms,
              char *endpoint, size_t ep_len, int *sock, char *err, size_t err_len)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(sa.sun_path)) {
        snprintf(err, err_len, "attach socket path too long: %s", path);
        return -ENAMETOOLONG;
    }
    strcpy(sa.sun_path, path);
    uint64_t deadline = mono_ms() + (uint64_t)timeout_ms;
    for (;;) {
        char k[PLX_ATTACH_KEY_LEN + 2];
        int kr = attach_key(key, key_file, k, sizeof(k), err, err_len);
        if (kr == -EINVAL)
            return kr;
        int s = kr == 0 ? socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0) : -1;
        if (kr == 0 && s < 0)
            return -errno;
        if (s >= 0 && connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            char req[PLX_MAX_NAME + PLX_ATTACH_KEY_LEN + 16];
            int n = snprintf(req, sizeof(req), ATTACH_PREFIX "%s %s", name, k);
            char rep[512];
            ssize_t got;
            if (n < (int)sizeof(req) && send(s, req, (size_t)n, MSG_NOSIGNAL) == n &&
                (got = recv(s, rep, sizeof(rep) - 1, 0)) > 0) {
                rep[got] = 0;
                if (strncmp(rep, ATTACH_OK, 3) == 0 && (size_t)got - 3 < ep_len) {
                    strcpy(endpoint, rep + 3);
                    *sock = s;
                    return 0;
                }
                /* A key read from its file may be a hub's before this one (left by one that died): the hub
                 * writes the new one when it adds the device, so read it again rather than give up. */
                bool stale = !key && strncmp(rep, "error: refused", 14) == 0;
                if (strncmp(rep, ATTACH_RETRY, 5) != 0 && !stale) {
                    snprintf(err, err_len, "attach refused: %s", rep);
                    close(s);
                    return -ECONNREFUSED;
                }
            }
        }
        if (s >= 0)
            close(s);
        if (mono_ms() > deadline) {
            if (kr == 0)
                snprintf(err, err_len, "no hub accepted the attach on %s", path);
            return -ETIMEDOUT;
        }
        struct timespec ts = { 0, 50 * 1000000 };
        nanosleep(&ts, NULL);
    }
}

int
plx_hs_attach_parse(const char *req, size_t len, char *name, size_t name_len, char *key, size_t key_len)
{
    size_t pl = strlen(ATTACH_PREFIX);
    if (len <= pl || strncmp(req, ATTACH_PREFIX, pl) != 0)
        return -EPROTO;
    const char *n = req + pl, *end = req + len;
    const char *sp = memchr(n, ' ', (size_t)(end - n));
    if (!sp || (size_t)(sp - n) >= name_len || (size_t)(end - sp - 1) != PLX_ATTACH_KEY_LEN ||
        key_len <= PLX_ATTACH_KEY_LEN)
        return -EPROTO;
    memcpy(name, n, (size_t)(sp - n));
    name[sp - n] = 0;
    memcpy(key, sp + 1, PLX_ATTACH_KEY_LEN);
    key[PLX_ATTACH_KEY_LEN] = 0;
    return 0;
}

int
plx_hs_attach_answer(int conn, const char *endpoint)
{
    char rep[600];
    int len = endpoint ? snprintf(rep, sizeof(rep), ATTACH_OK "%s", endpoint)
                       : snprintf(rep, sizeof(rep), ATTACH_RETRY);
    if (len < 0 || len >= (int)sizeof(rep))
        return -ENAMETOOLONG;
    return send(conn, rep, (size_t)len, MSG_NOSIGNAL | MSG_DONTWAIT) == len ? 0 : -EIO;
}
