/*
 * Proxy io regions: the MemoryRegionOps of every region a device declares. The memory API has already split
 * and widened the guest access to the device's impl rules; here it becomes an MmioRead/MmioWrite on the
 * device's channel, a posted write, or a load from the region's shadow page.
 */
#define _GNU_SOURCE
#include "dev/devmgr_int.h"

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <string.h>

static uint64_t ones(unsigned size)
{
    return size >= 8 ? UINT64_MAX : (UINT64_C(1) << (8 * size)) - 1;
}

/* Why an access cannot go to the device now; NULL if it can. */
static const char *refuse(hub_device *d)
{
    if (d->failed)
        return "failed";
    if (d->dma_depth) {
        if (!d->dma_self_logged) {
            d->dma_self_logged = true;
            hub_dev_log(d->m, d->name, 4,
                        "access to the device's registers while it waits for its own DMA: bus error");
        }
        return "busy";
    }
    return NULL;
}

/* True (and the device failed) once the deadline of a wait passed. */
static bool wait_expired(hub_device *d, uint64_t *deadline, const char *what)
{
    uint64_t now = hub_now_ms();
    if (!*deadline)
        *deadline = now + d->timeout_ms;
    if (now < *deadline)
        return false;
    hub_dev_fail(d, "no answer to %s within %u ms", what, d->timeout_ms);
    return true;
}

/* What a wait is for: an MmioReply, a TimerDone, or (lockstep) a TimeReached, each matched by @key. */
enum wait_kind { WAIT_REPLY, WAIT_TIMER_DONE, WAIT_REACHED };
struct wait_out {
    uint64_t data;          /* MmioReply.data */
    MemTxResult res;        /* MmioReply.result */
    uint64_t busy_ns;       /* MmioReply.busy_ns */
    uint64_t next_event;    /* MmioReply or TimeReached .next_event_ns (0: not given) */
};

/* Wait for the answer @kind/@key, serving everything else the device sends meanwhile. */
static int wait_for(hub_device *d, enum wait_kind kind, uint64_t key, struct wait_out *out, const char *what)
{
    uint64_t deadline = hub_now_ms() + d->timeout_ms;
    unsigned other = 0;
    for (;;) {
        /* A device flooding other messages must not keep the hub here past the timeout. */
        if (++other % 64 == 0 && wait_expired(d, &deadline, what))
            return -ETIMEDOUT;
        /* Block in the receive itself (the socket's receive timeout is HUB_RECV_SLICE_MS): cheaper than a
         * poll followed by a receive. Between slices: the deadline and the process. */
        Plx__Envelope *env;
        int r = plx_wire_recv(&d->wire, &env, HUB_RECV_SLICE_MS);
        if (r == 0) {
            if (kind == WAIT_TIMER_DONE && env->msg_case == PLX__ENVELOPE__MSG_TIMER_DONE &&
                env->timer_done->seq == key) {
                plx_wire_release(&d->wire);
                return 0;
            }
            if (kind == WAIT_REACHED && env->msg_case == PLX__ENVELOPE__MSG_TIME_REACHED &&
                env->time_reached->now_ns == key) {
                out->next_event = env->time_reached->next_event_ns;
                plx_wire_release(&d->wire);
                return 0;
            }
            if (kind == WAIT_REPLY && env->msg_case == PLX__ENVELOPE__MSG_REPLY && env->reply->seq == key) {
                out->data = env->reply->data;
                out->busy_ns = env->reply->busy_ns;
                out->next_event = env->reply->next_event_ns;
                switch (env->reply->result) {
                case PLX__MEM_TX__MEMTX_OK: out->res = MEMTX_OK; break;
                case PLX__MEM_TX__MEMTX_DECODE_ERROR: out->res = MEMTX_DECODE_ERROR; break;
                default: out->res = MEMTX_ERROR; break;
                }
                plx_wire_release(&d->wire);
                return 0;
            }
            hub_dev_serve(d, env);
            if (d->failed)
                return -EIO;
            continue;
        }
        if (r == -EBADMSG) {
            hub_dev_log(d->m, d->name, 4, "undecodable frame dropped");
            continue;
        }
        if (r == -EINTR)
            continue;
        if (r != -EAGAIN && r != -EPIPE) {
            hub_dev_fail(d, "receive failed: %s", hub_dev_chan_strerror(d, r));
            return -EIO;
        }
        if (wait_expired(d, &deadline, what))
            return -ETIMEDOUT;
        if (d->pidfd >= 0) {
            struct pollfd p = { .fd = d->pidfd, .events = POLLIN };
            /* Frames written just before the process died may still be on their way. */
            if (poll(&p, 1, 0) > 0 && hub_dev_wait(d, 20) != 1 && hub_dev_reap(d))
                return -ECHILD;
        } else if (r == -EPIPE) {
            hub_dev_fail(d, "the device hung up");
            return -EIO;
        }
    }
}

/* Shadow reads must see every posted write sent before them: wait until the device published it. */
static int wait_shadow(hub_device *d, hub_region *r)
{
    uint64_t deadline = 0;
    unsigned spins = 0;
    while (__atomic_load_n(&r->shadow_hdr->applied_seq, __ATOMIC_ACQUIRE) < d->last_posted) {
        if (hub_dev_drain(d) && d->failed)
            return -EIO;
        if (d->failed)
            return -EIO;
        if (++spins < 64) {
            sched_yield();
            continue;
        }
        uint64_t now = hub_now_ms();
        if (!deadline)
            deadline = now + d->timeout_ms;
        if (now >= deadline) {
            hub_dev_fail(d, "posted writes not applied within %u ms", d->timeout_ms);
            return -ETIMEDOUT;
        }
        if (hub_dev_wait(d, 1) == 2 && hub_dev_reap(d))
            return -ECHILD;
    }
    return 0;
}

static bool in_read_through(const hub_region *r, uint64_t addr, unsigned size)
{
    for (unsigned i = 0; i < r->n_read_through; i++)
        if (addr < r->read_through[i].offset + r->read_through[i].len && addr + size > r->read_through[i].offset)
            return true;
    return false;
}

static uint64_t shadow_load(const uint8_t *p, unsigned size)
{
    if (((uintptr_t)p & (size - 1)) == 0) {
        switch (size) {
        case 1: return __atomic_load_n(p, __ATOMIC_ACQUIRE);
        case 2: return le16toh(__atomic_load_n((const uint16_t *)p, __ATOMIC_ACQUIRE));
        case 4: return le32toh(__atomic_load_n((const uint32_t *)p, __ATOMIC_ACQUIRE));
        case 8: return le64toh(__atomic_load_n((const uint64_t *)p, __ATOMIC_ACQUIRE));
        }
    }
    uint64_t v = 0;
    for (unsigned i = 0; i < size; i++)
        v |= (uint64_t)__atomic_load_n(p + i, __ATOMIC_RELAXED) << (8 * i);
    return v;
}

static MemTxResult proxy_read_slow(hub_region *r, hwaddr addr, uint64_t *data, unsigned size);

static MemTxResult proxy_read(void *opaque, hwaddr addr, uint64_t *data, unsigned size, MemTxAttrs attrs)
{
    hub_region *r = opaque;
    hub_device *d = r->dev;
    /* The hot path (a guest polling a status register): a shadow page that is up to date. */
    if (__builtin_expect(r->shadow_data != NULL, 1) && !d->failed && !d->dma_depth && !d->batch.n &&
        !d->m->env.event_log &&
        __atomic_load_n(&r->shadow_hdr->applied_seq, __ATOMIC_ACQUIRE) >= d->last_posted &&
        addr < r->size && size <= r->size - addr && !in_read_through(r, addr, size)) {
        *data = shadow_load(r->shadow_data + addr, size);
        d->stats.shadow_reads++;
        return MEMTX_OK;
    }
    return proxy_read_slow(r, addr, data, size);
}

int
hub_dev_wait_timer_done(hub_device *d, uint64_t seq)
{
    d->in_wait++;
    int r = wait_for(d, WAIT_TIMER_DONE, seq, NULL, "a timer fire");
    d->in_wait--;
    return r;
}

int
hub_dev_wait_reached(hub_device *d, uint64_t until, uint64_t *next_event)
{
    struct wait_out o = { 0 };
    d->in_wait++;
    int r = wait_for(d, WAIT_REACHED, until, &o, "a time grant");
    d->in_wait--;
    *next_event = o.next_event ? o.next_event : VCLOCK_NEVER;
    return r;
}

/* The reply to a lockstep device's access carried the bus time it took: the guest's clock pays it. */
static void charge_busy(hub_device *d, const struct wait_out *o)
{
    if (!d->lockstep)
        return;
    if (o->busy_ns && d->m->env.charge)
        d->m->env.charge(d->m->env.charge_opaque, o->busy_ns);
    hub_dev_lockstep_next(d, o->next_event);
}

static const char *memtx_word(MemTxResult r)
{
    return r == MEMTX_OK ? "" : r == MEMTX_DECODE_ERROR ? " decode-error" : " error";
}

static MemTxResult read_once(hub_region *r, hwaddr addr, uint64_t *data, unsigned size)
{
    hub_device *d = r->dev;
    if (refuse(d) || (size != 1 && size != 2 && size != 4 && size != 8) || addr >= r->size ||
        size > r->size - addr) {
        *data = ones(size);
        return d->failed || d->dma_depth ? MEMTX_ERROR : MEMTX_DECODE_ERROR;
    }
    if (r->shadow_data && !in_read_through(r, addr, size)) {
        if (d->batch.n)
            hub_dev_flush(d);
        if (__atomic_load_n(&r->shadow_hdr->applied_seq, __ATOMIC_ACQUIRE) < d->last_posted) {
            if (wait_shadow(d, r) < 0) {
                *data = ones(size);
                return MEMTX_ERROR;
            }
            hub_dev_confirm(d, d->last_posted + 1);
        }
        *data = shadow_load(r->shadow_data + addr, size);
        d->stats.shadow_reads++;
        hub_dev_event(d, "read %s+0x%" PRIx64 "/%u = 0x%" PRIx64 " shadow", r->name, (uint64_t)addr, size, *data);
        return MEMTX_OK;
    }
    Plx__MmioRead rd = PLX__MMIO_READ__INIT;
    rd.seq = ++d->seq;
    rd.region = r->index;
    rd.addr = addr;
    rd.size = size;
    Plx__Envelope env = PLX__ENVELOPE__INIT;
    env.msg_case = PLX__ENVELOPE__MSG_READ;
    env.read = &rd;
    d->stats.sync_reads++;
    struct wait_out o = { 0 };
    hub_dev_lockstep_touch(d);
    int wr = hub_dev_send(d, &env);
    if (wr == 0) {
        d->in_wait++;
        wr = wait_for(d, WAIT_REPLY, rd.seq, &o, "a read");
        d->in_wait--;
    }
    if (wr < 0) {
        *data = ones(size);
        hub_dev_event(d, "read %s+0x%" PRIx64 "/%u failed", r->name, (uint64_t)addr, size);
        return MEMTX_ERROR;
    }
    hub_dev_confirm(d, rd.seq);
    *data = o.res != MEMTX_OK ? ones(size) : o.data & ones(size);
    hub_dev_event(d, "read %s+0x%" PRIx64 "/%u = 0x%" PRIx64 "%s", r->name, (uint64_t)addr, size, *data,
                  memtx_word(o.res));
    charge_busy(d, &o);
    return o.res;
}

/* A device that fails and will be restarted is waited for: the access goes to the new process. */
static MemTxResult proxy_read_slow(hub_region *r, hwaddr addr, uint64_t *data, unsigned size)
{
    hub_device *d = r->dev;
    if (d->failed)
        hub_dev_await_restart(d);
    MemTxResult res = read_once(r, addr, data, size);
    if (res == MEMTX_ERROR && d->failed && hub_dev_await_restart(d))
        res = read_once(r, addr, data, size);
    return res;
}

/* ---- posted-write batches ---------------------------------------------------------------------------------- */

void
hub_dev_flush(hub_device *d)
{
    if (!d->batch.n)
        return;
    if (d->failed) {
        d->batch.n = 0;
        d->batch.len = 0;
        return;
    }
    int r = plx_wire_batch_send(&d->wire, &d->batch, d->batch_time, 0);
    if (r < 0)
        hub_dev_send_failed(d, r);
}

static MemTxResult write_once(hub_region *r, hwaddr addr, uint64_t data, unsigned size)
{
    hub_device *d = r->dev;
    hub_devmgr *m = d->m;
    if (refuse(d) || (size != 1 && size != 2 && size != 4 && size != 8) || addr >= r->size ||
        size > r->size - addr)
        return d->failed || d->dma_depth ? MEMTX_ERROR : MEMTX_DECODE_ERROR;
    /* A lockstep device acts only when the hub waits on it: its writes are synchronous. */
    bool posted = r->kind != PLX__REGION_KIND__REGION_IO && !d->lockstep;
    hub_dev_event(d, "write %s+0x%" PRIx64 "/%u 0x%" PRIx64 "%s", r->name, (uint64_t)addr, size, data & ones(size),
                  posted ? " posted" : "");
    hub_dev_lockstep_touch(d);
    if (posted && d->batch.buf) {
        uint64_t now = vclock_now(m->env.clock);
        if (d->batch.n && d->batch_time != now)
            hub_dev_flush(d);
        d->batch_time = now;
        d->last_posted = ++d->seq;
        hub_dev_log_posted(d, d->seq, r->index, addr, size, data & ones(size));
        plx_wire_batch_add(&d->wire, &d->batch, d->seq, r->index, addr, size, data & ones(size));
        if (d->batch.n == PLX_WIRE_BATCH_MAX)
            hub_dev_flush(d);
        d->stats.posted_writes++;
        return d->failed ? MEMTX_ERROR : MEMTX_OK;
    }
    Plx__MmioWrite wr = PLX__MMIO_WRITE__INIT;
    wr.seq = ++d->seq;
    wr.region = r->index;
    wr.addr = addr;
    wr.size = size;
    wr.data = data & ones(size);
    wr.posted = posted;
    Plx__Envelope env = PLX__ENVELOPE__INIT;
    env.msg_case = PLX__ENVELOPE__MSG_WRITE;
    env.write = &wr;
    if (posted)
        hub_dev_log_posted(d, wr.seq, wr.region, addr, size, wr.data);
    if (hub_dev_send(d, &env) < 0)
        return MEMTX_ERROR;
    if (posted) {
        d->last_posted = wr.seq;
        d->stats.posted_writes++;
        return MEMTX_OK;
    }
    d->stats.sync_writes++;
    struct wait_out o = { 0 };
    d->in_wait++;
    int wres = wait_for(d, WAIT_REPLY, wr.seq, &o, "a write");
    d->in_wait--;
    if (wres < 0)
        return MEMTX_ERROR;
    hub_dev_confirm(d, wr.seq);
    if (o.res != MEMTX_OK)
        hub_dev_event(d, "write %s+0x%" PRIx64 " answered%s", r->name, (uint64_t)addr, memtx_word(o.res));
    charge_busy(d, &o);
    return o.res;
}

/* As for reads; a posted write that was taken is in the device's log and goes to the new process. */
static MemTxResult proxy_write(void *opaque, hwaddr addr, uint64_t data, unsigned size, MemTxAttrs attrs)
{
    hub_region *r = opaque;
    hub_device *d = r->dev;
    if (d->failed)
        hub_dev_await_restart(d);
    bool taken = !d->failed && !d->dma_depth;
    MemTxResult res = write_once(r, addr, data, size);
    if (res == MEMTX_ERROR && taken && d->failed && hub_dev_await_restart(d))
        res = r->kind != PLX__REGION_KIND__REGION_IO ? MEMTX_OK : write_once(r, addr, data, size);
    return res;
}

void
hub_proxy_init_ops(MemoryRegionOps *ops)
{
    memset(ops, 0, sizeof(*ops));
    ops->read_with_attrs = proxy_read;
    ops->write_with_attrs = proxy_write;
}
