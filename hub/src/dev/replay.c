/*
 * The posted writes a restartable device has not applied yet, kept in its slot so that a restart delivers them
 * again to the next process (docs/reliability.md).
 */
#define _GNU_SOURCE
#include "dev/replay.h"

#include <inttypes.h>
#include <stdlib.h>

#include "dev/link.h"

/* Seq of the last posted write the device's current process applied, as it published it; 0 if unknown. */
static uint64_t applied_seq(const hub_device *d)
{
    if (d->state_hdr)
        return __atomic_load_n(&d->state_hdr->applied_seq, __ATOMIC_ACQUIRE);
    uint64_t a = 0;
    for (unsigned i = 0; i < d->n_regions; i++)
        if (d->regions[i].shadow_hdr) {
            uint64_t v = __atomic_load_n(&d->regions[i].shadow_hdr->applied_seq, __ATOMIC_ACQUIRE);
            a = v > a ? v : a;
        }
    return a;
}

static void plog_drop_until(hub_device *d, uint64_t seq)
{
    while (d->plog_n && d->plog[d->plog_head].seq <= seq) {
        d->plog_head = (d->plog_head + 1) % HUB_PLOG_MAX;
        d->plog_n--;
    }
}

void
hub_dev_log_posted(hub_device *d, uint64_t seq, uint32_t region, uint64_t addr, uint32_t size, uint64_t data)
{
    if (!d->cfg || !d->max_restarts)
        return;     /* never restarted: nothing to deliver again */
    if (!d->plog && !(d->plog = calloc(HUB_PLOG_MAX, sizeof(*d->plog)))) {
        d->plog_dropped++;
        return;
    }
    plog_drop_until(d, applied_seq(d));
    if (d->plog_n == HUB_PLOG_MAX) {
        d->plog_head = (d->plog_head + 1) % HUB_PLOG_MAX;
        d->plog_n--;
        d->plog_dropped++;
    }
    d->plog[(d->plog_head + d->plog_n++) % HUB_PLOG_MAX] =
        (struct hub_posted){ .seq = seq, .addr = addr, .data = data, .region = region, .size = size };
}

void
hub_dev_confirm(hub_device *d, uint64_t seq)
{
    if (seq)
        plog_drop_until(d, seq - 1);
}

/* Deliver again, to the new process, the posted writes the old one had not applied. */
static void redeliver(hub_device *d, const struct hub_posted *w, unsigned n, uint64_t dropped)
{
    for (unsigned i = 0; i < n && !d->failed; i++) {
        Plx__MmioWrite wr = PLX__MMIO_WRITE__INIT;
        wr.seq = ++d->inc.seq;
        wr.region = w[i].region;
        wr.addr = w[i].addr;
        wr.size = w[i].size;
        wr.data = w[i].data;
        wr.posted = true;
        Plx__Envelope env = PLX__ENVELOPE__INIT;
        env.msg_case = PLX__ENVELOPE__MSG_WRITE;
        env.write = &wr;
        hub_dev_log_posted(d, wr.seq, wr.region, wr.addr, wr.size, wr.data);
        if (hub_dev_send(d, &env) == 0)
            d->inc.last_posted = wr.seq;
    }
    if (n)
        hub_dev_log(d->m, d->name, PLX_LOG_NOTICE,
                    "delivered again %u posted write%s the failed process had not applied", n,
                    n == 1 ? "" : "s");
    if (dropped)
        hub_dev_log(d->m, d->name, PLX_LOG_WARNING,
                    "%" PRIu64 " posted write%s may be lost (more than %u were unconfirmed)",
                    dropped, dropped == 1 ? "" : "s", HUB_PLOG_MAX);
}

void
hub_dev_replay_take(hub_device *d, hub_dev_replay *out)
{
    hub_devmgr *m = d->m;
    /* What the old process applied decides what goes again to the new one; then the block is the new one's. A
     * write whose callback was running when the process died may have taken effect (a byte sent, say): it is
     * not delivered again, and the log says so. */
    uint64_t applied = applied_seq(d), in_doubt = 0;
    plog_drop_until(d, applied);
    if (d->state_hdr) {
        uint64_t applying = __atomic_load_n(&d->state_hdr->applying_seq, __ATOMIC_ACQUIRE);
        if (applying > applied && d->plog_n && d->plog[d->plog_head].seq == applying) {
            const struct hub_posted *w = &d->plog[d->plog_head];
            hub_dev_log(m, d->name, PLX_LOG_WARNING,
                        "a posted write (region %u, offset 0x%" PRIx64 ", %u bytes, 0x%" PRIx64
                        ") was being applied when the process failed; it is not delivered again", w->region,
                        w->addr, w->size, w->data);
            in_doubt = applying;
        }
        __atomic_store_n(&d->state_hdr->applying_seq, 0, __ATOMIC_RELEASE);
    }
    plog_drop_until(d, in_doubt);
    struct hub_posted *pending = NULL;
    unsigned n_pending = d->plog_n;
    if (n_pending && (pending = malloc(n_pending * sizeof(*pending))))
        for (unsigned i = 0; i < n_pending; i++)
            pending[i] = d->plog[(d->plog_head + i) % HUB_PLOG_MAX];
    uint64_t dropped = d->plog_dropped + (pending ? 0 : n_pending);
    d->plog_n = d->plog_head = 0;
    d->plog_dropped = 0;
    if (d->state_hdr) {
        __atomic_store_n(&d->state_hdr->applied_seq, 0, __ATOMIC_RELEASE);
        d->state_hdr->incarnation++;
    }
    *out = (hub_dev_replay){ .w = pending, .n = pending ? n_pending : 0, .dropped = dropped };
}

void
hub_dev_replay_deliver(hub_device *d, hub_dev_replay *rp)
{
    redeliver(d, rp->w, rp->n, rp->dropped);
    free(rp->w);
    *rp = (hub_dev_replay){ 0 };
}

void
hub_dev_replay_keep(hub_device *d, hub_dev_replay *rp)
{
    for (unsigned i = 0; i < rp->n; i++)
        hub_dev_log_posted(d, rp->w[i].seq, rp->w[i].region, rp->w[i].addr, rp->w[i].size, rp->w[i].data);
    d->plog_dropped += rp->dropped;
    free(rp->w);
    *rp = (hub_dev_replay){ 0 };
}
