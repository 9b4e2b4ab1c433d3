/*
 * Split virtqueues from the device's side. The rings live in guest RAM that the driver writes concurrently, so
 * every field is read once into a local copy before it is checked and used, and nothing read from the guest is
 * trusted: indices are bounded, addresses and lengths go through the map function (the device's grants).
 */
#define _GNU_SOURCE
#include "virtq.h"

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define DESC_F_NEXT 1u
#define DESC_F_WRITE 2u
#define DESC_F_INDIRECT 4u
#define AVAIL_F_NO_INTERRUPT 1u
#define DESC_SIZE 16u

struct desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags, next;
};

/* Ring fields: the rings are checked to be aligned, so 16-bit loads and stores are single accesses. */
static inline uint16_t ld16(const uint8_t *p, int order)
{
    return le16toh(__atomic_load_n((const uint16_t *)p, order));
}

static inline void st16(uint8_t *p, uint16_t v, int order)
{
    __atomic_store_n((uint16_t *)p, htole16(v), order);
}

static inline void st32(uint8_t *p, uint32_t v)
{
    __atomic_store_n((uint32_t *)p, htole32(v), __ATOMIC_RELAXED);
}

/* Layout of the three parts for @num entries (used_event and avail_event included: with event index). */
static size_t avail_size(uint32_t num) { return 6 + 2 * (size_t)num; }
static size_t used_size(uint32_t num) { return 6 + 8 * (size_t)num; }

static uint8_t *avail_idx(virtq *q) { return q->avail + 2; }
static uint8_t *avail_ring(virtq *q, uint16_t pos) { return q->avail + 4 + 2 * (size_t)(pos % q->st->num); }
static uint8_t *used_event(virtq *q) { return q->avail + 4 + 2 * (size_t)q->st->num; }
static uint8_t *used_idx(virtq *q) { return q->used + 2; }
static uint8_t *used_elem(virtq *q, uint16_t pos) { return q->used + 4 + 8 * (size_t)(pos % q->st->num); }
static uint8_t *avail_event(virtq *q) { return q->used + 4 + 8 * (size_t)q->st->num; }

static void set_inflight(virtq_state *st, unsigned head, bool on)
{
    if (on)
        st->inflight[head / 64] |= UINT64_C(1) << (head % 64);
    else
        st->inflight[head / 64] &= ~(UINT64_C(1) << (head % 64));
}

/* Ordering of the state block's words for a process that may be killed between any two stores: the compiler
 * must not move them (the CPU keeps a thread's stores in order for a reader that looks after its death). */
static inline void state_barrier(void)
{
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
}

int
virtq_start(virtq *q, char *err, size_t errlen)
{
    virtq_state *st = q->st;
    uint32_t n = st->num;
    if (n == 0 || n > PLX_VIRTIO_QUEUE_SIZE_MAX || (n & (n - 1))) {
        snprintf(err, errlen, "queue size %" PRIu32 " is not a power of 2 up to %u", n, PLX_VIRTIO_QUEUE_SIZE_MAX);
        return -EINVAL;
    }
    if (st->desc % 16 || st->driver % 2 || st->device % 4) {
        snprintf(err, errlen, "misaligned ring (descriptors 0x%" PRIx64 ", available 0x%" PRIx64 ", used 0x%" PRIx64
                 ")", st->desc, st->driver, st->device);
        return -EINVAL;
    }
    uint8_t *d = q->map(q->map_ctx, st->desc, (uint64_t)n * DESC_SIZE, false);
    uint8_t *a = q->map(q->map_ctx, st->driver, avail_size(n), false);
    uint8_t *u = q->map(q->map_ctx, st->device, used_size(n), true);
    if (!d || !a || !u) {
        snprintf(err, errlen, "%s ring at 0x%" PRIx64 " is not in guest RAM granted to the device",
                 !d ? "descriptor" : !a ? "available" : "used", !d ? st->desc : !a ? st->driver : st->device);
        return -EFAULT;
    }
    q->desc = d;
    q->avail = a;
    q->used = u;
    return 0;
}

void
virtq_stop(virtq *q)
{
    q->desc = q->avail = q->used = NULL;
}

static void read_desc(const uint8_t *p, struct desc *d)
{
    uint8_t b[DESC_SIZE];
    memcpy(b, p, sizeof(b));    /* one read of what the driver may be changing */
    uint64_t addr;
    uint32_t len;
    uint16_t flags, next;
    memcpy(&addr, b, 8);
    memcpy(&len, b + 8, 4);
    memcpy(&flags, b + 12, 2);
    memcpy(&next, b + 14, 2);
    d->addr = le64toh(addr);
    d->len = le32toh(len);
    d->flags = le16toh(flags);
    d->next = le16toh(next);
}

int
virtq_walk(virtq *q, uint16_t head, virtq_chain *c, char *err, size_t errlen)
{
    uint32_t num = q->st->num;
    const uint8_t *table = q->desc;
    uint32_t table_len = num;
    bool indirect = false;
    unsigned count = 0, n = 0;
    uint64_t total = 0;
    uint32_t i = head;

    c->head = head;
    c->n_out = c->n_in = 0;
    c->out_len = c->in_len = 0;
    for (;;) {
        if (i >= table_len) {
            snprintf(err, errlen, "chain %u: next index %" PRIu32 " is outside the %s table (%" PRIu32 " entries)",
                     head, i, indirect ? "indirect" : "descriptor", table_len);
            return -EPROTO;
        }
        struct desc d;
        read_desc(table + (size_t)i * DESC_SIZE, &d);
        if (d.flags & DESC_F_INDIRECT) {
            if (!q->indirect) {
                snprintf(err, errlen, "chain %u: indirect descriptor, but VIRTIO_F_INDIRECT_DESC was not negotiated",
                         head);
                return -EPROTO;
            }
            if (indirect) {
                snprintf(err, errlen, "chain %u: indirect descriptor inside an indirect table", head);
                return -EPROTO;
            }
            if (d.flags & DESC_F_NEXT) {
                snprintf(err, errlen, "chain %u: indirect descriptor %" PRIu32 " also has NEXT", head, i);
                return -EPROTO;
            }
            if (d.len == 0 || d.len % DESC_SIZE || d.len / DESC_SIZE > num) {
                snprintf(err, errlen, "chain %u: indirect table of %" PRIu32 " bytes (a multiple of 16, at most %"
                         PRIu32 " descriptors)", head, d.len, num);
                return -EPROTO;
            }
            table = q->map(q->map_ctx, d.addr, d.len, false);
            if (!table) {
                snprintf(err, errlen, "chain %u: indirect table [0x%" PRIx64 ", +%" PRIu32 ") is not in guest RAM "
                         "granted to the device", head, d.addr, d.len);
                return -EPROTO;
            }
            table_len = d.len / DESC_SIZE;
            indirect = true;
            i = 0;
            continue;
        }
        if (++count > num) {
            snprintf(err, errlen, "chain %u has more than %" PRIu32 " descriptors (the queue size): a loop?", head,
                     num);
            return -EPROTO;
        }
        bool write = d.flags & DESC_F_WRITE;
        if (!write && c->n_in) {
            snprintf(err, errlen, "chain %u: device-readable descriptor after a device-writable one", head);
            return -EPROTO;
        }
        total += d.len;
        if (total > UINT32_MAX) {
            snprintf(err, errlen, "chain %u is longer than 4 GiB", head);
            return -EPROTO;
        }
        if (d.len) {
            void *p = q->map(q->map_ctx, d.addr, d.len, write);
            if (!p) {
                snprintf(err, errlen, "chain %u: %s buffer [0x%" PRIx64 ", +%" PRIu32 ") is not in guest RAM granted "
                         "to the device%s", head, write ? "device-writable" : "device-readable", d.addr, d.len,
                         write ? " for writing" : "");
                return -EPROTO;
            }
            c->iov[n] = (struct iovec){ .iov_base = p, .iov_len = d.len };
            c->addr[n] = d.addr;
            n++;
            if (write) {
                c->n_in++;
                c->in_len += d.len;
            } else {
                c->n_out++;
                c->out_len += d.len;
            }
        }
        if (!(d.flags & DESC_F_NEXT))
            return 0;
        i = d.next;
    }
}

int
virtq_pop(virtq *q, virtq_chain *c, char *err, size_t errlen)
{
    virtq_state *st = q->st;
    uint16_t idx = ld16(avail_idx(q), __ATOMIC_ACQUIRE);
    if (idx == st->last_avail)
        return 0;
    if ((uint16_t)(idx - st->last_avail) > st->num) {
        snprintf(err, errlen, "available index %u is %u entries ahead of the device's %u (queue size %" PRIu32 ")",
                 idx, (uint16_t)(idx - st->last_avail), st->last_avail, st->num);
        return -EPROTO;
    }
    uint16_t head = ld16(avail_ring(q, st->last_avail), __ATOMIC_RELAXED);
    if (head >= st->num) {
        snprintf(err, errlen, "available ring entry %u names descriptor %u (queue size %" PRIu32 ")", st->last_avail,
                 head, st->num);
        return -EPROTO;
    }
    if (virtq_inflight(st, head)) {
        snprintf(err, errlen, "chain %u made available again while the device still holds it", head);
        return -EPROTO;
    }
    int r = virtq_walk(q, head, c, err, errlen);
    if (r < 0)
        return r;
    /* Journal, mark, advance, clear: a process killed anywhere in between is recovered by virtq_recover(). */
    st->pop_journal = VIRTQ_JOURNAL | (uint64_t)st->last_avail << 16 | head;
    state_barrier();
    set_inflight(st, head, true);
    state_barrier();
    st->last_avail++;
    state_barrier();
    st->pop_journal = 0;
    return 1;
}

void
virtq_push(virtq *q, uint16_t head, uint32_t len)
{
    virtq_state *st = q->st;
    uint8_t *e = used_elem(q, st->used_idx);
    st32(e, head);
    st32(e + 4, len);
    /* The element before the index (release); then the state, which virtq_recover() reconciles with the ring. */
    st16(used_idx(q), (uint16_t)(st->used_idx + 1), __ATOMIC_RELEASE);
    state_barrier();
    set_inflight(st, head, false);
    state_barrier();
    st->used_idx++;
}

bool
virtq_need_interrupt(virtq *q)
{
    virtq_state *st = q->st;
    /* The used index is published before the driver's suppression is read (the driver does the mirror image). */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (!q->event_idx)
        return !(ld16(q->avail, __ATOMIC_RELAXED) & AVAIL_F_NO_INTERRUPT);
    uint16_t event = ld16(used_event(q), __ATOMIC_RELAXED);
    uint16_t old = st->signalled_used, now = st->used_idx;
    bool valid = st->signalled_valid;
    st->signalled_used = now;
    st->signalled_valid = 1;
    /* Interrupt if the driver's used_event lies in (old, now]: "the entry at used_event was written". */
    return !valid || (uint16_t)(now - event - 1) < (uint16_t)(now - old);
}

bool
virtq_arm_notify(virtq *q)
{
    virtq_state *st = q->st;
    if (q->event_idx)
        st16(avail_event(q), st->last_avail, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return ld16(avail_idx(q), __ATOMIC_ACQUIRE) != st->last_avail;
}

int
virtq_recover(virtq *q, char *err, size_t errlen)
{
    virtq_state *st = q->st;
    if (st->pop_journal & VIRTQ_JOURNAL) {
        uint16_t pos = (uint16_t)(st->pop_journal >> 16), head = (uint16_t)st->pop_journal;
        if (head < st->num && (st->last_avail == pos || st->last_avail == (uint16_t)(pos + 1))) {
            set_inflight(st, head, true);
            st->last_avail = (uint16_t)(pos + 1);
        }
        st->pop_journal = 0;
    }
    uint16_t published = ld16(used_idx(q), __ATOMIC_ACQUIRE);
    if ((uint16_t)(published - st->used_idx) > st->num) {
        snprintf(err, errlen, "used index %u in guest memory is %u entries past the device's %u", published,
                 (uint16_t)(published - st->used_idx), st->used_idx);
        return -EPROTO;
    }
    while (st->used_idx != published) {
        uint32_t id = le32toh(__atomic_load_n((const uint32_t *)used_elem(q, st->used_idx), __ATOMIC_RELAXED));
        if (id < st->num)
            set_inflight(st, id, false);
        st->used_idx++;
    }
    return 0;
}
