/*
 * Proxy io regions: the MemoryRegionOps of every region a device declares. The memory API has already split
 * and widened the guest access to the device's impl rules; here it becomes an MmioRead/MmioWrite on the
 * device's channel, a posted write, or a load from the region's shadow page.
 */
#define _GNU_SOURCE
#include "dev/proxy.h"

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <string.h>

#include "dev/link.h"
#include "dev/lockstep.h"
#include "dev/serve.h"
#include "dev/replay.h"

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
        if (!d->inc.dma_self_logged) {
            d->inc.dma_self_logged = true;
            hub_dev_log(d->m, d->name, PLX_LOG_WARNING,
                        "access to the device's registers while it waits for its own DMA: bus error");
        }
        return "busy";
    }
    return NULL;
}

/* Shadow reads must see every posted write sent before them: wait until the device published it. */
static int wait_shadow(hub_device *d, hub_region *r)
{
    uint64_t deadline = 0;
    unsigned spins = 0;
    while (__atomic_load_n(&r->shadow_hdr->applied_seq, __ATOMIC_ACQUIRE) < d->inc.last_posted) {
        if (hub_dev_drain(d) && d->failed)
            return -EIO;
        if (d->failed)
            return -EIO;
        if (++spins < 64) {
            sched_yield();
            continue;
        }
        uint64_t now = hub_dev_now_ms();
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

/* Out of line: the shadow read above stays a small function. */
static MemTxResult proxy_read_slow(hub_region *r, hwaddr addr, uint64_t *data, unsigned size) __attribute__((noinline));

static MemTxResult proxy_read(void *opaque, hwaddr addr, uint64_t *data, unsigned size, MemTxAttrs attrs)
{
    hub_region *r = opaque;
    hub_device *d = r->dev;
    /* The hot path (a guest polling a status register): a shadow page that is up to date. */
    if (__builtin_expect(r->shadow_data != NULL, 1) && !d->failed && !d->dma_depth && !d->inc.batch.n &&
        !d->m->env.event_log &&
        __atomic_load_n(&r->shadow_hdr->applied_seq, __ATOMIC_ACQUIRE) >= d->inc.last_posted &&
        addr < r->size && size <= r->size - addr && !in_read_through(r, addr, size)) {
        *data = shadow_load(r->shadow_data + addr, size);
        d->stats.shadow_reads++;
        return MEMTX_OK;
    }
    return proxy_read_slow(r, addr, data, size);
}

/* The reply to a lockstep device's access carried the bus time it took: the guest's clock pays it. */
static void charge_busy(hub_device *d, const hub_dev_reply *o)
{
    if (!d->lockstep)
        return;
    uint64_t busy = o->busy_ns;
    if (busy > PLX_MAX_BUSY_NS) {       /* one access cannot push the guest's time far */
        if (!d->inc.busy_capped)
            hub_dev_log(d->m, d->name, PLX_LOG_WARNING, "an access it said kept its bus busy %" PRIu64 " ns: "
                        "charged %u ns (limit PLX_MAX_BUSY_NS)", busy, PLX_MAX_BUSY_NS);
        d->inc.busy_capped = true;
        busy = PLX_MAX_BUSY_NS;
    }
    if (busy && d->m->env.charge)
        d->m->env.charge(d->m->env.charge_opaque, busy);
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
        if (d->inc.capabilities & PLX_CAP_SYNC) {
            /* The writes applied and what they caused (IRQ changes, timers armed) in, on every transport. */
            if (hub_dev_sync(d) < 0) {
                *data = ones(size);
                return MEMTX_ERROR;
            }
        } else {
            if (d->inc.batch.n)
                hub_dev_flush(d);
            if (__atomic_load_n(&r->shadow_hdr->applied_seq, __ATOMIC_ACQUIRE) < d->inc.last_posted) {
                if (wait_shadow(d, r) < 0) {
                    *data = ones(size);
                    return MEMTX_ERROR;
                }
                hub_dev_confirm(d, d->inc.last_posted + 1);
            }
        }
        *data = shadow_load(r->shadow_data + addr, size);
        d->stats.shadow_reads++;
        hub_dev_event(d, "read %s+0x%" PRIx64 "/%u = 0x%" PRIx64 " shadow", r->name, (uint64_t)addr, size, *data);
        return MEMTX_OK;
    }
    Plx__MmioRead rd = PLX__MMIO_READ__INIT;
    rd.seq = ++d->inc.seq;
    rd.region = r->index;
    rd.addr = addr;
    rd.size = size;
    Plx__Envelope env = PLX__ENVELOPE__INIT;
    env.msg_case = PLX__ENVELOPE__MSG_READ;
    env.read = &rd;
    d->stats.sync_reads++;
    hub_dev_reply o = { 0 };
    hub_dev_lockstep_touch(d);
    int wr = hub_dev_send(d, &env);
    if (wr == 0) {
        wr = hub_dev_wait_reply(d, rd.seq, &o, "a read");
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

/*
 * The device failed and will be restarted: the access waits for the new process if whoever makes it can abandon
 * it and make it again later (the CPU, for its own loads and stores; never a device's DMA, or an access while
 * the hub waits on a device). The restart itself happens in the next hub_devmgr_poll(), not here.
 */
static bool defer(hub_device *d)
{
    hub_devmgr *m = d->m;
    if (!hub_dev_restartable(d) || m->nest || !m->env.defer_access || !m->env.defer_access(m->env.defer_opaque))
        return false;
    m->restart_wanted = true;
    return true;
}

static MemTxResult proxy_read_slow(hub_region *r, hwaddr addr, uint64_t *data, unsigned size)
{
    hub_device *d = r->dev;
    if (d->failed && defer(d)) {
        *data = ones(size);     /* abandoned: nobody sees it */
        return MEMTX_OK;
    }
    MemTxResult res = read_once(r, addr, data, size);
    if (res == MEMTX_ERROR && d->failed && defer(d))
        res = MEMTX_OK;
    return res;
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
    if (posted && d->inc.batch.buf) {
        /* Held until the next message to the device, a poll, or the guest looking at interrupt state; each write
         * carries the time of its instruction (the frame: the first write's). */
        uint64_t now = vclock_now(m->env.clock);
        if (!d->inc.batch.n)
            d->inc.batch_time = now;
        d->inc.last_posted = ++d->inc.seq;
        hub_dev_log_posted(d, d->inc.seq, r->index, addr, size, data & ones(size));
        plx_wire_batch_add(&d->inc.wire, &d->inc.batch, d->inc.seq, r->index, addr, size, data & ones(size), now);
        if (d->inc.batch.n == PLX_WIRE_BATCH_MAX)
            hub_dev_flush(d);
        d->stats.posted_writes++;
        return d->failed ? MEMTX_ERROR : MEMTX_OK;
    }
    Plx__MmioWrite wr = PLX__MMIO_WRITE__INIT;
    wr.seq = ++d->inc.seq;
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
        d->inc.last_posted = wr.seq;
        d->stats.posted_writes++;
        return MEMTX_OK;
    }
    d->stats.sync_writes++;
    hub_dev_reply o = { 0 };
    int wres = hub_dev_wait_reply(d, wr.seq, &o, "a write");
    if (wres < 0)
        return MEMTX_ERROR;
    hub_dev_confirm(d, wr.seq);
    if (o.res != MEMTX_OK)
        hub_dev_event(d, "write %s+0x%" PRIx64 " answered%s", r->name, (uint64_t)addr, memtx_word(o.res));
    charge_busy(d, &o);
    return o.res;
}

/* As for reads; a posted write that was taken is in the device's replay log and goes to the new process. */
static MemTxResult proxy_write(void *opaque, hwaddr addr, uint64_t data, unsigned size, MemTxAttrs attrs)
{
    hub_region *r = opaque;
    hub_device *d = r->dev;
    if (d->failed && defer(d))
        return MEMTX_OK;
    bool taken = !d->failed && !d->dma_depth;
    MemTxResult res = write_once(r, addr, data, size);
    if (res == MEMTX_ERROR && taken && d->failed && hub_dev_restartable(d) &&
        (r->kind != PLX__REGION_KIND__REGION_IO || defer(d)))
        res = MEMTX_OK;
    return res;
}

/*
 * Posted writes complete for the guest when they are taken, but the guest must never see interrupt state older
 * than them: before it looks (hub_devmgr_sync), the device applies every request still unanswered and the hub
 * serves what that made the device send, up to the Sync's answer that comes after it on the ordered channel.
 */
int
hub_dev_sync(hub_device *d)
{
    if (d->failed)
        return -EIO;
    if (d->lockstep || d->inc.in_wait || (!d->inc.batch.n && d->inc.answered >= d->inc.last_posted))
        return 0;
    if (!(d->inc.capabilities & PLX_CAP_SYNC)) {
        /* it cannot say when it is done: what it sent so far is what there is */
        hub_dev_flush(d);
        hub_dev_drain(d);
        return 0;
    }
    Plx__Sync s = PLX__SYNC__INIT;
    s.seq = ++d->inc.seq;
    Plx__Envelope env = PLX__ENVELOPE__INIT;
    env.msg_case = PLX__ENVELOPE__MSG_SYNC;
    env.sync = &s;
    d->stats.syncs++;
    hub_dev_reply o = { 0 };
    if (hub_dev_send(d, &env) < 0 || hub_dev_wait_reply(d, s.seq, &o, "a sync") < 0)
        return -EIO;
    hub_dev_confirm(d, s.seq);
    hub_dev_event(d, "sync");
    return 0;
}

void
hub_dev_proxy_set_ops(MemoryRegionOps *ops)
{
    ops->read_with_attrs = proxy_read;
    ops->write_with_attrs = proxy_write;
}

