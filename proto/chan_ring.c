/* The device channel over a shared-memory ring (include/plexus/chan.h; layout in docs/protocol.md). */
#define _GNU_SOURCE
#include "chan_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Fixed offsets of the ring's control words (docs/protocol.md); each in its own cache line. */
#define OFF_SLEEP(side) (64u + 64u * (side))        /* u32: that side sleeps on its bell */
#define OFF_CPU(side) (68u + 64u * (side))          /* u32: CPU that side last waited on, + 1 (advisory) */
#define OFF_HEAD(ring) (192u + 128u * (ring))        /* u64: producer index, in slots */
#define OFF_TAIL(ring) (256u + 128u * (ring))        /* u64: consumer index */
#define OFF_SLOTS 4096u
#define MIN_SLOTS 64u
#define MAX_SLOTS (1u << 20)
#define SPIN_PAUSE_NS 2000u     /* spin with a pause instruction this long, then yield between checks */
#define BACKLOG_MAX (64u << 20) /* frames taken in while waiting for room, at most */

static const plx_chan_ops ring_ops;

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

__attribute__((format(printf, 2, 3))) static int broken(plx_chan *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof(c->err), fmt, ap);
    va_end(ap);
    c->broken = true;
    return -EPROTO;
}

/* ---- ring: layout ------------------------------------------------------------------------------------------ */

static void ring_bind(plx_chan *c)
{
    uint8_t *b = c->map;
    int tx = c->side, rx = 1 - c->side;     /* ring 0 carries hub -> device */
    c->tx_head_pub = (uint64_t *)(b + OFF_HEAD(tx));
    c->tx_tail_peer = (uint64_t *)(b + OFF_TAIL(tx));
    c->rx_head_peer = (uint64_t *)(b + OFF_HEAD(rx));
    c->rx_tail_pub = (uint64_t *)(b + OFF_TAIL(rx));
    c->tx_slots = b + OFF_SLOTS + (size_t)tx * c->n * PLX_RING_SLOT;
    c->rx_slots = b + OFF_SLOTS + (size_t)rx * c->n * PLX_RING_SLOT;
    c->my_sleep = (uint32_t *)(b + OFF_SLEEP(c->side));
    c->peer_sleep = (uint32_t *)(b + OFF_SLEEP(1 - c->side));
    c->my_cpu = (uint32_t *)(b + OFF_CPU(c->side));
    c->peer_cpu = (uint32_t *)(b + OFF_CPU(1 - c->side));
    c->my_bell = c->fds[1 + c->side];
    c->peer_bell = c->fds[2 - c->side];
}

static size_t ring_total(uint32_t n)
{
    return OFF_SLOTS + 2 * (size_t)n * PLX_RING_SLOT;
}

plx_chan *plx_chan_ring_create(unsigned n_slots, uint64_t spin_ns, int fds[PLX_RING_FDS])
{
    uint32_t n = MIN_SLOTS;
    if (!n_slots)
        n_slots = PLX_RING_DEFAULT_SLOTS;
    if (n_slots > MAX_SLOTS) {
        errno = EINVAL;
        return NULL;
    }
    while (n < n_slots)
        n <<= 1;
    plx_chan *c = plx_chan_alloc(PLX_CHAN_RING, &ring_ops);
    if (!c)
        return NULL;
    c->n = n;
    c->spin_ns = spin_ns;
    c->map_len = ring_total(n);
    int e = 0;
    c->fds[0] = memfd_create("plexus-ring", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    c->fds[1] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    c->fds[2] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (c->fds[0] < 0 || c->fds[1] < 0 || c->fds[2] < 0 || ftruncate(c->fds[0], (off_t)c->map_len) < 0 ||
        fcntl(c->fds[0], F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
        e = errno;
        goto fail;
    }
    c->map = mmap(NULL, c->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, c->fds[0], 0);
    if (c->map == MAP_FAILED) {
        c->map = NULL;
        e = errno;
        goto fail;
    }
    struct plx_ring_header h = {
        .magic = PLX_RING_MAGIC, .version = PLX_RING_VERSION, .slot_size = PLX_RING_SLOT, .n_slots = n,
        .ring_offset = { OFF_SLOTS, OFF_SLOTS + (uint64_t)n * PLX_RING_SLOT },
        .spin_ns = spin_ns, .total_size = c->map_len,
    };
    memcpy(c->map, &h, sizeof(h));
    c->side = 0;
    ring_bind(c);
    for (int i = 0; i < PLX_RING_FDS; i++)
        fds[i] = c->fds[i];
    return c;
fail:
    plx_chan_close(c);
    errno = e ? e : ENOMEM;
    return NULL;
}

plx_chan *plx_chan_ring_open(const int fds[PLX_RING_FDS], char *err, size_t err_len)
{
    plx_chan *c = plx_chan_alloc(PLX_CHAN_RING, &ring_ops);
    if (!c) {
        for (int i = 0; i < PLX_RING_FDS; i++)
            close(fds[i]);
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    for (int i = 0; i < PLX_RING_FDS; i++)
        c->fds[i] = fds[i];
    struct stat st;
    struct plx_ring_header h;
    if (fstat(fds[0], &st) < 0 || st.st_size < (off_t)sizeof(h) ||
        pread(fds[0], &h, sizeof(h), 0) != (ssize_t)sizeof(h)) {
        snprintf(err, err_len, "the ring descriptor is not a ring memory (size %lld)", (long long)st.st_size);
        goto fail;
    }
    if (h.magic != PLX_RING_MAGIC || h.version != PLX_RING_VERSION || h.slot_size != PLX_RING_SLOT ||
        h.n_slots < MIN_SLOTS || h.n_slots > MAX_SLOTS || (h.n_slots & (h.n_slots - 1)) ||
        h.ring_offset[0] != OFF_SLOTS || h.ring_offset[1] != OFF_SLOTS + (uint64_t)h.n_slots * PLX_RING_SLOT ||
        h.total_size != ring_total(h.n_slots) || (uint64_t)st.st_size < h.total_size) {
        snprintf(err, err_len, "bad ring header (magic %#x version %u slot %u slots %u size %" PRIu64 ")",
                 h.magic, h.version, h.slot_size, h.n_slots, h.total_size);
        goto fail;
    }
    c->n = h.n_slots;
    c->spin_ns = h.spin_ns;
    c->map_len = h.total_size;
    c->map = mmap(NULL, c->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0);
    if (c->map == MAP_FAILED) {
        c->map = NULL;
        snprintf(err, err_len, "cannot map the ring: %s", strerror(errno));
        goto fail;
    }
    c->side = 1;
    ring_bind(c);
    /* Start where the hub's indices are (both zero for a new ring). */
    c->tx_head = __atomic_load_n(c->tx_head_pub, __ATOMIC_ACQUIRE);
    c->rx_tail = __atomic_load_n(c->rx_tail_pub, __ATOMIC_ACQUIRE);
    return c;
fail:
    plx_chan_close(c);
    return NULL;
}

/* ---- ring: records ----------------------------------------------------------------------------------------- */

/* Slots a record of @len payload bytes occupies (its 8-byte header included). */
static uint64_t rec_slots(uint64_t len)
{
    return (8 + len + PLX_RING_SLOT - 1) / PLX_RING_SLOT;
}

/* Ring the peer's bell if it said it sleeps. Called after publishing a head (a frame) or a tail (room). */
static void wake_peer(plx_chan *c)
{
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (__atomic_load_n(c->peer_sleep, __ATOMIC_RELAXED)) {
        uint64_t one = 1;
        if (write(c->peer_bell, &one, sizeof(one)) == (ssize_t)sizeof(one))
            c->st.bells_rung++;
    }
}

static bool rx_pending(plx_chan *c)
{
    return __atomic_load_n(c->rx_head_peer, __ATOMIC_ACQUIRE) != c->rx_tail;
}

/*
 * Take records from the receive ring until one frame is complete (1), the ring is empty (0, a partial frame is
 * kept), or the peer broke the rules (-EPROTO). The frame is in c->asmb until the next call.
 */
static int take_frame(plx_chan *c)
{
    if (c->broken)
        return -EPROTO;
    if (c->asm_complete) {
        if (!c->asm_delivered)
            return 1;       /* taken earlier (a spin, a poll), not handed out yet */
        c->asm_len = 0;
        c->asm_complete = c->asm_delivered = false;
    }
    const char *dir = c->side == 0 ? "device -> hub" : "hub -> device";
    for (;;) {
        uint64_t head = __atomic_load_n(c->rx_head_peer, __ATOMIC_ACQUIRE);
        uint64_t avail = head - c->rx_tail;
        if (avail == 0)
            return 0;
        if (avail > c->n)
            return broken(c, "%s ring: producer index %" PRIu64 " is not within %u slots after the consumer's %"
                          PRIu64, dir, head, c->n, c->rx_tail);
        uint32_t pos = (uint32_t)(c->rx_tail & (c->n - 1));
        const uint8_t *rec = c->rx_slots + (size_t)pos * PLX_RING_SLOT;
        uint32_t len = __atomic_load_n((const uint32_t *)rec, __ATOMIC_RELAXED);
        uint32_t flags = __atomic_load_n((const uint32_t *)rec + 1, __ATOMIC_RELAXED);
        if (flags & ~(PLX_RING_REC_MORE | PLX_RING_REC_PAD))
            return broken(c, "%s ring: record at slot %u has unknown flags %#x", dir, pos, flags);
        uint64_t need;
        if (flags & PLX_RING_REC_PAD) {
            need = c->n - pos;
            if (need > avail)
                return broken(c, "%s ring: padding at slot %u runs past the published records", dir, pos);
        } else {
            need = rec_slots(len);
            if (need > c->n - pos || need > avail)
                return broken(c, "%s ring: record of %u bytes at slot %u runs past %s", dir, len, pos,
                              need > avail ? "the published records" : "the end of the ring");
            if (c->asm_len + len > PLX_MAX_FRAME)
                return broken(c, "%s ring: frame longer than %u bytes", dir, PLX_MAX_FRAME);
            if (c->asm_len + len > c->asm_cap) {
                size_t cap = c->asm_cap ? c->asm_cap : 256;
                while (cap < c->asm_len + len)
                    cap *= 2;
                uint8_t *b = realloc(c->asmb, cap);
                if (!b)
                    return -ENOMEM;
                c->asmb = b;
                c->asm_cap = cap;
            }
            if (len)
                memcpy(c->asmb + c->asm_len, rec + 8, len);
            c->asm_len += len;
        }
        c->rx_tail += need;
        __atomic_store_n(c->rx_tail_pub, c->rx_tail, __ATOMIC_RELEASE);
        wake_peer(c);
        if (!(flags & (PLX_RING_REC_PAD | PLX_RING_REC_MORE))) {
            c->asm_complete = true;
            c->st.frames_received++;
            return 1;
        }
    }
}

/* Move every complete frame waiting in the receive ring to the backlog (while this side waits for room). */
static int drain_to_backlog(plx_chan *c)
{
    for (;;) {
        int r = take_frame(c);
        if (r <= 0)
            return r;
        if (c->bl_bytes + c->asm_len > BACKLOG_MAX)
            return broken(c, "the peer sent %zu bytes while not reading", c->bl_bytes + c->asm_len);
        struct frame_node *f = malloc(sizeof(*f) + c->asm_len);
        if (!f)
            return -ENOMEM;
        c->asm_delivered = true;
        f->next = NULL;
        f->len = c->asm_len;
        if (c->asm_len)
            memcpy(f->data, c->asmb, c->asm_len);
        if (c->bl_tail)
            c->bl_tail->next = f;
        else
            c->bl_head = f;
        c->bl_tail = f;
        c->bl_bytes += f->len;
    }
}

/* Free slots of the transmit ring, or -EPROTO. */
static int64_t tx_room(plx_chan *c)
{
    uint64_t tail = __atomic_load_n(c->tx_tail_peer, __ATOMIC_ACQUIRE);
    uint64_t used = c->tx_head - tail;
    if (used > c->n) {
        broken(c, "%s ring: consumer index %" PRIu64 " is not within %u slots before the producer's %" PRIu64,
               c->side == 0 ? "hub -> device" : "device -> hub", tail, c->n, c->tx_head);
        return -EPROTO;
    }
    return (int64_t)(c->n - used);
}

/*
 * The hub's side found its peer waiting on the CPU it spins on: the two would hand that CPU back and forth
 * (a round trip of two context switches) while another CPU may be idle, and the scheduler does not separate
 * spinning tasks quickly. Step off that CPU once (affinity without it, then the old affinity back: the kernel
 * moves the thread at once and leaves it there). At most every 10 ms; never on the device side, whose sandbox
 * may not allow it. True if it moved.
 */
static bool move_off_cpu(plx_chan *c, int cpu, uint64_t now)
{
    if (c->side != 0 || now - c->last_move_ns < 10000000u)
        return false;
    c->last_move_ns = now;
    cpu_set_t orig, m;
    if (sched_getaffinity(0, sizeof(orig), &orig) < 0)
        return false;
    m = orig;
    CPU_CLR(cpu, &m);
    if (CPU_COUNT(&m) == 0 || sched_setaffinity(0, sizeof(m), &m) < 0)
        return false;
    sched_setaffinity(0, sizeof(orig), &orig);
    c->st.moves++;
    return true;
}

/* Look at @ready for the spin budget (or until the deadline): its answer, or 0 when the budget ran out. */
static int ring_spin(plx_chan *c, int (*ready)(plx_chan *), uint64_t deadline)
{
    uint64_t t0 = mono_ns();
    int cpu = sched_getcpu();
    __atomic_store_n(c->my_cpu, (uint32_t)(cpu + 1), __ATOMIC_RELAXED);
    for (unsigned i = 1;; i++) {
        int r = ready(c);
        if (r)
            return r;
        if ((i & 15) == 0) {
            uint64_t t = mono_ns();
            if (t - t0 >= c->spin_ns || t >= deadline)
                return 0;
            if (t - t0 > SPIN_PAUSE_NS) {
                if (cpu >= 0 && __atomic_load_n(c->peer_cpu, __ATOMIC_RELAXED) == (uint32_t)(cpu + 1) &&
                    move_off_cpu(c, cpu, t))
                    cpu = sched_getcpu();
                sched_yield();      /* more busy sides than cores: let the peer run */
            }
        }
        cpu_relax();
    }
}

/*
 * Wait until @ready says so (1), the deadline passes (-EAGAIN), the peer goes (-EPIPE) or an error. Spins for
 * the budget, then sleeps on the bell with the sleep flag raised; the flag is raised before the last look, so a
 * wake-up cannot be lost between the look and the sleep.
 */
static int ring_wait(plx_chan *c, int (*ready)(plx_chan *), uint64_t deadline)
{
    int r = ring_spin(c, ready, deadline);
    if (r)
        return r;
    for (;;) {
        __atomic_store_n(c->my_sleep, 1, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        r = ready(c);
        if (r) {
            __atomic_store_n(c->my_sleep, 0, __ATOMIC_RELAXED);
            return r;
        }
        uint64_t now = mono_ns();
        if (now >= deadline) {
            __atomic_store_n(c->my_sleep, 0, __ATOMIC_RELAXED);
            return -EAGAIN;
        }
        int ms = deadline == UINT64_MAX ? -1 : (int)((deadline - now + 999999) / 1000000);
        struct pollfd p[2] = { { .fd = c->my_bell, .events = POLLIN }, { .fd = c->peer_fd, .events = POLLIN } };
        int pr = poll(p, c->peer_fd >= 0 ? 2 : 1, ms);
        int pe = errno;
        c->st.sleeps++;
        __atomic_store_n(c->my_sleep, 0, __ATOMIC_RELAXED);
        if (p[0].revents & POLLIN) {
            uint64_t v;
            if (read(c->my_bell, &v, sizeof(v)) < 0) {
                /* another wake-up consumed it: nothing lost, the condition is looked at again */
            }
        }
        if (pr < 0 && pe == EINTR)
            return -EINTR;
        if (pr > 0 && c->peer_fd >= 0 && p[1].revents) {
            r = ready(c);
            return r ? r : -EPIPE;
        }
    }
}

static int ready_frame(plx_chan *c)
{
    if (c->bl_head)
        return 1;
    return take_frame(c);
}

static int ready_room(plx_chan *c)
{
    int64_t room = tx_room(c);
    if (room < 0)
        return (int)room;
    if ((uint64_t)room >= c->room_need)
        return 1;
    /* Keep taking the peer's frames: it may be waiting for room itself. */
    int r = drain_to_backlog(c);
    return r < 0 ? r : 0;
}

static uint64_t deadline_after(int timeout_ms)
{
    return timeout_ms < 0 ? UINT64_MAX : mono_ns() + (uint64_t)timeout_ms * 1000000u;
}

/* Room for @need slots in the transmit ring. */
static int wait_room(plx_chan *c, uint64_t need, int flags, uint64_t *deadline)
{
    int64_t room = tx_room(c);
    if (room < 0)
        return (int)room;
    if ((uint64_t)room >= need)
        return 0;
    c->st.full_waits++;
    if (flags & PLX_CHAN_DONTWAIT)
        return -EAGAIN;
    if (!*deadline)
        *deadline = deadline_after(c->send_timeout_ms);
    for (;;) {
        c->room_need = need;
        int r = ring_wait(c, ready_room, *deadline);
        if (r == 1)
            return 0;
        if (r == -EAGAIN)
            return -ETIMEDOUT;
        if (r != -EINTR)
            return r;
    }
}

static void put_record(plx_chan *c, const void *data, uint32_t len, uint32_t flags)
{
    uint8_t *rec = c->tx_slots + (size_t)(c->tx_head & (c->n - 1)) * PLX_RING_SLOT;
    uint32_t hdr[2] = { len, flags };
    memcpy(rec, hdr, sizeof(hdr));
    if (len)
        memcpy(rec + 8, data, len);
    c->tx_head += rec_slots(len);
}

static int ring_send(plx_chan *c, const void *buf, size_t len, int flags)
{
    if (c->broken)
        return -EPROTO;
    if (len > PLX_MAX_FRAME)
        return -EMSGSIZE;
    /* Records of at most a quarter of the ring, so a long frame streams while the peer takes it. */
    const size_t piece_max = (size_t)c->n / 4 * PLX_RING_SLOT - 8;
    const uint8_t *p = buf;
    size_t left = len;
    uint64_t deadline = 0;
    bool first = true;
    do {
        size_t piece = left < piece_max ? left : piece_max;
        uint64_t need = rec_slots(piece);
        uint64_t pos = c->tx_head & (c->n - 1);
        uint64_t contig = c->n - pos;
        int r = wait_room(c, need > contig ? need + contig : need, first ? flags : 0, &deadline);
        if (r < 0)
            return r;
        first = false;
        if (need > contig) {       /* records never wrap: pad to the start */
            uint32_t pad[2] = { 0, PLX_RING_REC_PAD };
            memcpy(c->tx_slots + pos * PLX_RING_SLOT, pad, sizeof(pad));
            c->tx_head += contig;
        }
        left -= piece;
        put_record(c, p, (uint32_t)piece, left ? PLX_RING_REC_MORE : 0);
        p += piece;
        __atomic_store_n(c->tx_head_pub, c->tx_head, __ATOMIC_RELEASE);
        wake_peer(c);
    } while (left);
    c->st.frames_sent++;
    return 0;
}

static int ring_recv(plx_chan *c, const void **data, size_t *len, int timeout_ms)
{
    free(c->delivered);
    c->delivered = NULL;
    int r = ready_frame(c);
    if (r == 0 && timeout_ms != 0)
        r = ring_wait(c, ready_frame, deadline_after(timeout_ms));
    if (r < 0)
        return r;
    if (r == 0)
        return -EAGAIN;
    if (c->bl_head) {
        struct frame_node *f = c->bl_head;
        c->bl_head = f->next;
        if (!c->bl_head)
            c->bl_tail = NULL;
        c->bl_bytes -= f->len;
        c->delivered = f;
        *data = f->data;
        *len = f->len;
        return 0;
    }
    *data = c->asmb ? c->asmb : (const void *)"";     /* an empty first frame: still a valid pointer */
    *len = c->asm_len;
    c->asm_delivered = true;
    return 0;
}

/* ---- the transport's side of the interface ---------------------------------------------------------------- */

static int ring_chan_spin(plx_chan *c)
{
    return ring_spin(c, ready_frame, UINT64_MAX);
}

static int ring_poll_fd(const plx_chan *c)
{
    return c->my_bell;
}

/* A frame (or a damaged ring, which the next receive reports) is there to take. */
static bool ring_ready(plx_chan *c)
{
    return c->bl_head || c->broken || (c->asm_complete && !c->asm_delivered) || rx_pending(c);
}

static bool ring_poll_prepare(plx_chan *c)
{
    if (c->bl_head || c->broken || (c->asm_complete && !c->asm_delivered))
        return true;
    __atomic_store_n(c->my_sleep, 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return rx_pending(c);
}

/* The bell only says "look": what decides is whether a frame is there (a peer may ring when nothing is). */
static bool ring_poll_done(plx_chan *c, short revents)
{
    __atomic_store_n(c->my_sleep, 0, __ATOMIC_RELAXED);
    uint64_t v;
    if ((revents & POLLIN) && read(c->my_bell, &v, sizeof(v)) < 0) {
        /* someone else took it: fine */
    }
    return (revents & POLLIN) && ring_ready(c);
}

static int ring_peer_poll_fd(const plx_chan *c)
{
    return c->peer_fd;
}

static bool ring_peer_gone(plx_chan *c)
{
    if (c->peer_fd < 0)
        return false;
    struct pollfd p = { .fd = c->peer_fd, .events = POLLIN };
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR | POLLIN));
}

static const char *ring_strerror(const plx_chan *c, int r)
{
    if (r == -EPROTO && c->err[0])
        return c->err;
    return strerror(-r);
}

static const char *ring_endpoint(const plx_chan *c)
{
    (void)c;
    return "ring";
}

static void ring_close(plx_chan *c)
{
    if (c->map)
        munmap(c->map, c->map_len);
    for (int i = 0; i < PLX_RING_FDS; i++)
        if (c->fds[i] >= 0)
            close(c->fds[i]);
    while (c->bl_head) {
        struct frame_node *f = c->bl_head;
        c->bl_head = f->next;
        free(f);
    }
    free(c->delivered);
    free(c->asmb);
}

static const plx_chan_ops ring_ops = {
    .send = ring_send,
    .recv = ring_recv,
    .spin = ring_chan_spin,
    .poll_fd = ring_poll_fd,
    .poll_prepare = ring_poll_prepare,
    .poll_done = ring_poll_done,
    .peer_poll_fd = ring_peer_poll_fd,
    .peer_gone = ring_peer_gone,
    .strerror = ring_strerror,
    .endpoint = ring_endpoint,
    .close = ring_close,
};
