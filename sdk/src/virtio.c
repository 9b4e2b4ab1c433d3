/*
 * The virtio-mmio transport (version 2) of a plexus device: the register window as a SHADOW region kept current
 * on every change (so the guest's reads never wait for this process), feature negotiation, status and reset,
 * the configuration space, queue set-up and notifications, and the interrupt. Built on the public SDK only.
 */
#define _GNU_SOURCE
#include "plexus/virtio.h"

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "virtq.h"

/* Register offsets (virtio 1.x, "MMIO Device Register Layout"). */
enum {
    REG_MAGIC = 0x000,
    REG_VERSION = 0x004,
    REG_DEVICE_ID = 0x008,
    REG_VENDOR_ID = 0x00c,
    REG_DEVICE_FEATURES = 0x010,
    REG_DEVICE_FEATURES_SEL = 0x014,
    REG_DRIVER_FEATURES = 0x020,
    REG_DRIVER_FEATURES_SEL = 0x024,
    REG_QUEUE_SEL = 0x030,
    REG_QUEUE_NUM_MAX = 0x034,
    REG_QUEUE_NUM = 0x038,
    REG_QUEUE_READY = 0x044,
    REG_QUEUE_NOTIFY = 0x050,
    REG_INTERRUPT_STATUS = 0x060,
    REG_INTERRUPT_ACK = 0x064,
    REG_STATUS = 0x070,
    REG_QUEUE_DESC_LOW = 0x080,
    REG_QUEUE_DESC_HIGH = 0x084,
    REG_QUEUE_DRIVER_LOW = 0x090,
    REG_QUEUE_DRIVER_HIGH = 0x094,
    REG_QUEUE_DEVICE_LOW = 0x0a0,
    REG_QUEUE_DEVICE_HIGH = 0x0a4,
    REG_SHM_LEN_LOW = 0x0b0,
    REG_SHM_BASE_HIGH = 0x0bc,
    REG_CONFIG_GENERATION = 0x0fc,
    REG_CONFIG = 0x100,
};

#define MAGIC 0x74726976u       /* "virt" */
#define INT_USED 1u
#define INT_CONFIG 2u
#define LAYER_FEATURES (PLX_VIRTIO_F_BIT(PLX_VIRTIO_F_VERSION_1) | PLX_VIRTIO_F_BIT(PLX_VIRTIO_F_INDIRECT_DESC) |  \
                        PLX_VIRTIO_F_BIT(PLX_VIRTIO_F_EVENT_IDX))
/* Bits a device may not offer: transport features this layer does not implement. */
#define RESERVED_FEATURES (((UINT64_C(1) << 14) - 1) << 24)

/* What outlives a device process (plain data in the SDK's state block). */
struct vstate {
    uint32_t status, isr, generation;
    uint32_t isr_fresh;         /* events raised since the driver last read InterruptStatus */
    uint32_t device_features_sel, driver_features_sel, queue_sel;
    uint64_t driver_features;
    virtq_state q[PLX_VIRTIO_MAX_QUEUES];
    uint8_t config[PLX_VIRTIO_CONFIG_MAX];
};

struct vreq {
    plx_virtio_req pub;     /* first: the device holds &pub */
    plx_virtio *vio;
    uint64_t epoch;
    struct vreq *prev, *next;
    uint64_t *in_addr;      /* guest addresses of pub.in[] */
};

struct vqueue {
    virtq q;
    bool started;
    struct iovec *iov;      /* scratch for one chain, queue-size entries */
    uint64_t *addr;
};

struct plx_virtio {
    plx_dev *dev;
    const plx_virtio_ops *ops;
    void *opaque;
    struct vstate *st;
    struct vqueue q[PLX_VIRTIO_MAX_QUEUES];
    uint64_t offered;       /* device features with the layer's */
    uint64_t epoch;         /* +1 per reset: requests of an older epoch are dropped */
    struct vreq live;       /* requests handed out and not completed (list head) */
    bool dispatching;       /* inside request(): interrupts wait for the end of the queue's drain */
    uint32_t held_used;     /* queues with used buffers pushed while dispatching */
    bool running;           /* the run loop has started (messages to the hub may be sent) */
    bool line;              /* the IRQ line's level as last sent */
    int deferred_fd;        /* eventfd: work for the run loop's first turn after a restart, or -1 */
};

/* ---- the process's device table ----------------------------------------------------------------------------- */

static const char *const irq_names[] = { "irq" };

static struct {
    plx_device_ops ops;
    plx_region_info region;
    const plx_virtio_ops *vops;
} host;

/* ---- shadow image ------------------------------------------------------------------------------------------- */

static uint32_t reg_value(plx_virtio *v, uint64_t off)
{
    struct vstate *st = v->st;
    switch (off) {
    case REG_MAGIC: return MAGIC;
    case REG_VERSION: return 2;
    case REG_DEVICE_ID: return v->ops->device_id;
    case REG_VENDOR_ID: return v->ops->vendor_id ? v->ops->vendor_id : PLX_VIRTIO_VENDOR_ID;
    case REG_DEVICE_FEATURES:
        return st->device_features_sel < 2 ? (uint32_t)(v->offered >> (32 * st->device_features_sel)) : 0;
    case REG_QUEUE_NUM_MAX: return st->queue_sel < v->ops->n_queues ? v->ops->queue_size : 0;
    case REG_QUEUE_READY: return st->queue_sel < v->ops->n_queues ? st->q[st->queue_sel].ready : 0;
    case REG_INTERRUPT_STATUS: return st->isr;
    case REG_STATUS: return st->status;
    case REG_CONFIG_GENERATION: return st->generation;
    default:
        /* No shared memory regions: their length and base read as all ones. */
        if (off >= REG_SHM_LEN_LOW && off <= REG_SHM_BASE_HIGH)
            return UINT32_MAX;
        return 0;
    }
}

static uint32_t config_word(plx_virtio *v, unsigned off)
{
    uint32_t w = 0;
    for (unsigned i = 0; i < 4 && off + i < v->ops->config_size; i++)
        w |= (uint32_t)v->st->config[off + i] << (8 * i);
    return w;
}

static void publish_reg(plx_virtio *v, uint64_t off)
{
    plx_shadow_store(v->dev, 0, off, reg_value(v, off), 4);
}

static void publish_config(plx_virtio *v)
{
    for (unsigned off = 0; off < v->ops->config_size; off += 4)
        plx_shadow_store(v->dev, 0, REG_CONFIG + off, config_word(v, off), 4);
}

/* Every readable register (the selected queue's and feature word's included) and the configuration space. */
static void publish_all(plx_virtio *v)
{
    static const uint16_t regs[] = {
        REG_MAGIC, REG_VERSION, REG_DEVICE_ID, REG_VENDOR_ID, REG_DEVICE_FEATURES, REG_QUEUE_NUM_MAX,
        REG_QUEUE_READY, REG_INTERRUPT_STATUS, REG_STATUS, REG_SHM_LEN_LOW, REG_SHM_LEN_LOW + 4,
        REG_SHM_LEN_LOW + 8, REG_SHM_BASE_HIGH, REG_CONFIG_GENERATION,
    };
    for (size_t i = 0; i < sizeof(regs) / sizeof(regs[0]); i++)
        publish_reg(v, regs[i]);
    publish_config(v);
}

/* ---- interrupts --------------------------------------------------------------------------------------------- */

static void set_line(plx_virtio *v, bool level)
{
    if (!v->running)
        return;
    v->line = level;
    plx_irq_set(v->dev, 0, level);
}

static void update_irq(plx_virtio *v)
{
    set_line(v, v->st->isr != 0);
}

/* A new event, or one the driver has read the status of since: the line goes (back) up. */
static void raise_interrupt(plx_virtio *v, uint32_t bits)
{
    v->st->isr_fresh |= bits;
    if ((v->st->isr & bits) == bits && v->line)
        return;
    v->st->isr |= bits;
    publish_reg(v, REG_INTERRUPT_STATUS);
    set_line(v, true);
}

/*
 * InterruptACK is posted: it reaches the device after events the driver has not seen yet may have set the same
 * bit again (a chain completed after the driver read the status, while its handler was already past the used
 * ring). Such a bit stays set, and the line up, so that the driver is interrupted for it; clearing it would
 * lose that completion (Linux hung on a journal write that way). Bits that only carry events the driver read
 * are cleared.
 */
static void acknowledge(plx_virtio *v, uint32_t bits)
{
    v->st->isr &= ~(bits & ~v->st->isr_fresh);
    publish_reg(v, REG_INTERRUPT_STATUS);
    update_irq(v);
}

static void used_interrupt(plx_virtio *v, unsigned qi)
{
    if (v->q[qi].started && virtq_need_interrupt(&v->q[qi].q))
        raise_interrupt(v, INT_USED);
}

/* ---- status ------------------------------------------------------------------------------------------------- */

static bool driver_running(plx_virtio *v)
{
    return (v->st->status & (PLX_VIRTIO_STATUS_DRIVER_OK | PLX_VIRTIO_STATUS_NEEDS_RESET)) ==
           PLX_VIRTIO_STATUS_DRIVER_OK;
}

static void vneeds_reset(plx_virtio *v, const char *fmt, va_list ap)
{
    struct vstate *st = v->st;
    if (st->status & PLX_VIRTIO_STATUS_NEEDS_RESET)
        return;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    plx_log(v->dev, PLX_LOG_ERR, "virtio: %s; device needs reset", msg);
    st->status |= PLX_VIRTIO_STATUS_NEEDS_RESET;
    publish_reg(v, REG_STATUS);
    if (st->status & PLX_VIRTIO_STATUS_DRIVER_OK)
        raise_interrupt(v, INT_CONFIG);
}

PLX_EXPORT void
plx_virtio_needs_reset(plx_virtio *v, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vneeds_reset(v, fmt, ap);
    va_end(ap);
}

static void needs_reset(plx_virtio *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void needs_reset(plx_virtio *v, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vneeds_reset(v, fmt, ap);
    va_end(ap);
}

/* ---- queues ------------------------------------------------------------------------------------------------- */

static void *map_guest(void *ctx, uint64_t addr, uint64_t len, bool write)
{
    plx_virtio *v = ctx;
    if (len > SIZE_MAX)
        return NULL;
    return plx_dma_map(v->dev, addr, (size_t)len, write);
}

static int queue_start(plx_virtio *v, unsigned qi)
{
    struct vqueue *vq = &v->q[qi];
    char err[256];
    vq->q.indirect = v->st->driver_features & PLX_VIRTIO_F_BIT(PLX_VIRTIO_F_INDIRECT_DESC);
    vq->q.event_idx = v->st->driver_features & PLX_VIRTIO_F_BIT(PLX_VIRTIO_F_EVENT_IDX);
    if (virtq_start(&vq->q, err, sizeof(err)) < 0) {
        needs_reset(v, "queue %u: %s", qi, err);
        return -EINVAL;
    }
    vq->started = true;
    return 0;
}

static void queue_stop(plx_virtio *v, unsigned qi)
{
    virtq_stop(&v->q[qi].q);
    v->q[qi].started = false;
}

static struct vreq *make_req(plx_virtio *v, unsigned qi, const virtq_chain *c)
{
    unsigned n = c->n_out + c->n_in;
    struct vreq *r = malloc(sizeof(*r) + n * (sizeof(struct iovec) + sizeof(uint64_t)));
    if (!r)
        return NULL;
    struct iovec *iov = (struct iovec *)(r + 1);
    r->in_addr = (uint64_t *)(iov + n);
    memcpy(iov, c->iov, n * sizeof(*iov));
    memcpy(r->in_addr, c->addr + c->n_out, c->n_in * sizeof(uint64_t));
    r->pub = (plx_virtio_req){
        .queue = qi, .head = c->head, .n_out = c->n_out, .n_in = c->n_in, .out = iov, .in = iov + c->n_out,
        .out_len = c->out_len, .in_len = c->in_len,
    };
    r->vio = v;
    r->epoch = v->epoch;
    r->next = v->live.next;
    r->prev = &v->live;
    v->live.next->prev = r;
    v->live.next = r;
    return r;
}

static void hand_out(plx_virtio *v, unsigned qi, const virtq_chain *c)
{
    struct vreq *r = make_req(v, qi, c);
    if (!r) {
        needs_reset(v, "queue %u: out of memory for a request", qi);
        return;
    }
    v->ops->request(v->opaque, &r->pub);
}

static void flush_held(plx_virtio *v)
{
    uint32_t held = v->held_used;
    v->held_used = 0;
    for (unsigned qi = 0; held; qi++, held >>= 1)
        if (held & 1)
            used_interrupt(v, qi);
}

/* The device wrote the first @written bytes of the chain's device-writable buffers: tell the hub (batched by the
 * SDK, sent before the interrupt), so that the guest CPU does not run stale code from those pages. */
static void report_written(plx_virtio *v, const struct vreq *r, uint32_t written)
{
    for (unsigned i = 0; i < r->pub.n_in && written; i++) {
        size_t n = r->pub.in[i].iov_len < written ? r->pub.in[i].iov_len : written;
        plx_dma_written(v->dev, r->in_addr[i], n);
        written -= (uint32_t)n;
    }
}

/* The used ring (and avail_event in it) changed: for the hub's dirty log. */
static void report_ring(plx_virtio *v, unsigned qi)
{
    const virtq_state *st = &v->st->q[qi];
    plx_dma_written(v->dev, st->device, 6 + 8 * (size_t)st->num);
}

/* Take every available chain of queue @qi and hand each to the device. */
static void process_queue(plx_virtio *v, unsigned qi)
{
    struct vqueue *vq = &v->q[qi];
    if (qi >= v->ops->n_queues || !vq->started || !driver_running(v) || v->dispatching)
        return;
    virtq_chain c = { .iov = vq->iov, .addr = vq->addr };
    char err[256];
    v->dispatching = true;
    for (;;) {
        int r;
        while ((r = virtq_pop(&vq->q, &c, err, sizeof(err))) > 0) {
            hand_out(v, qi, &c);
            if (!driver_running(v) || !vq->started)
                goto out;
        }
        if (r < 0) {
            needs_reset(v, "queue %u: %s", qi, err);
            break;
        }
        bool more = virtq_arm_notify(&vq->q);
        if (vq->q.event_idx)
            report_ring(v, qi);
        if (!more)
            break;
    }
out:
    v->dispatching = false;
    flush_held(v);
}

static void process_all(plx_virtio *v)
{
    for (unsigned qi = 0; qi < v->ops->n_queues; qi++)
        process_queue(v, qi);
}

PLX_EXPORT void
plx_virtio_complete(plx_virtio_req *req, uint32_t written)
{
    struct vreq *r = (struct vreq *)req;
    plx_virtio *v = r->vio;
    unsigned qi = req->queue;
    r->prev->next = r->next;
    r->next->prev = r->prev;
    if (r->epoch == v->epoch && v->q[qi].started && !(v->st->status & PLX_VIRTIO_STATUS_NEEDS_RESET)) {
        if (written > req->in_len)
            written = req->in_len > UINT32_MAX ? UINT32_MAX : (uint32_t)req->in_len;
        report_written(v, r, written);
        virtq_push(&v->q[qi].q, req->head, written);
        report_ring(v, qi);
        if (v->dispatching)
            v->held_used |= 1u << qi;
        else
            used_interrupt(v, qi);
    }
    free(r);
}

/* ---- reset -------------------------------------------------------------------------------------------------- */

static void do_reset(plx_virtio *v)
{
    struct vstate *st = v->st;
    v->epoch++;     /* first: what the device completes from inside reset() is dropped */
    if (v->ops->reset)
        v->ops->reset(v->opaque);
    for (unsigned qi = 0; qi < v->ops->n_queues; qi++)
        queue_stop(v, qi);
    memset(st->q, 0, sizeof(st->q));
    st->status = 0;
    st->isr = st->isr_fresh = 0;
    st->driver_features = 0;
    st->device_features_sel = st->driver_features_sel = st->queue_sel = 0;
    update_irq(v);
    publish_all(v);
}

static bool features_acceptable(plx_virtio *v, uint64_t f)
{
    if (f & ~v->offered) {
        plx_log(v->dev, PLX_LOG_WARNING, "virtio: the driver accepted features 0x%" PRIx64 " the device did not offer",
                f & ~v->offered);
        return false;
    }
    if (!(f & PLX_VIRTIO_F_BIT(PLX_VIRTIO_F_VERSION_1))) {
        plx_log(v->dev, PLX_LOG_WARNING, "virtio: the driver did not accept VIRTIO_F_VERSION_1 (legacy drivers are "
                "not supported)");
        return false;
    }
    return !v->ops->features_ok || v->ops->features_ok(v->opaque, f);
}

static void write_status(plx_virtio *v, uint32_t val)
{
    struct vstate *st = v->st;
    if (val == 0) {
        do_reset(v);
        return;
    }
    uint32_t old = st->status;
    uint32_t now = (val & 0xff & ~PLX_VIRTIO_STATUS_NEEDS_RESET) | (old & PLX_VIRTIO_STATUS_NEEDS_RESET);
    if ((now & PLX_VIRTIO_STATUS_FEATURES_OK) && !(old & PLX_VIRTIO_STATUS_FEATURES_OK) &&
        !features_acceptable(v, st->driver_features))
        now &= ~PLX_VIRTIO_STATUS_FEATURES_OK;
    st->status = now;
    publish_reg(v, REG_STATUS);
    if ((now & PLX_VIRTIO_STATUS_DRIVER_OK) && !(old & PLX_VIRTIO_STATUS_DRIVER_OK))
        process_all(v);     /* chains made available before DRIVER_OK */
}

/* ---- the register window ------------------------------------------------------------------------------------ */

static void run_deferred(plx_virtio *v);

/*
 * InterruptStatus is the one register read by a round trip: its read lowers the line (the bits stay until
 * InterruptACK). The driver reads it first in its interrupt handler, and the hub applies the lowered line before
 * the read completes, so the interrupt controller's completion that ends the handler finds the line low. Were
 * the line to wait for the posted InterruptACK, the controller would see it still high and interrupt again for
 * nothing (twice per request, measured with Linux). An event after the read raises the line again.
 */
static const struct plx_range read_through[] = { { REG_INTERRUPT_STATUS, 4 } };

static uint64_t regs_read(void *opaque, uint64_t addr, unsigned size)
{
    plx_virtio *v = opaque;
    uint64_t val;
    if (addr >= REG_INTERRUPT_STATUS && addr < REG_INTERRUPT_STATUS + 4) {
        v->st->isr_fresh = 0;       /* what is set now, the driver has seen */
        if (v->line)
            set_line(v, false);
    }
    if (addr >= REG_CONFIG) {
        unsigned off = (unsigned)(addr - REG_CONFIG);
        val = config_word(v, off);      /* the bytes past the end of the configuration read 0 */
    } else {
        val = (uint64_t)reg_value(v, addr & ~(uint64_t)3) >> (8 * (addr & 3));
    }
    return size < 8 ? val & ((UINT64_C(1) << (8 * size)) - 1) : val;
}

static void queue_reg_write(plx_virtio *v, uint64_t addr, uint32_t val)
{
    struct vstate *st = v->st;
    unsigned qi = st->queue_sel;
    if (qi >= v->ops->n_queues)
        return;
    virtq_state *q = &st->q[qi];
    if (addr == REG_QUEUE_READY) {
        if ((val & 1) && !q->ready) {
            q->ready = 1;
            if (queue_start(v, qi) == 0)
                process_queue(v, qi);
        } else if (!(val & 1) && q->ready) {
            q->ready = 0;
            queue_stop(v, qi);
        }
        publish_reg(v, REG_QUEUE_READY);
        return;
    }
    if (q->ready)
        return;     /* the driver may not change a live queue */
    switch (addr) {
    case REG_QUEUE_NUM: q->num = val; break;
    case REG_QUEUE_DESC_LOW: q->desc = (q->desc & ~(uint64_t)UINT32_MAX) | val; break;
    case REG_QUEUE_DESC_HIGH: q->desc = (q->desc & UINT32_MAX) | (uint64_t)val << 32; break;
    case REG_QUEUE_DRIVER_LOW: q->driver = (q->driver & ~(uint64_t)UINT32_MAX) | val; break;
    case REG_QUEUE_DRIVER_HIGH: q->driver = (q->driver & UINT32_MAX) | (uint64_t)val << 32; break;
    case REG_QUEUE_DEVICE_LOW: q->device = (q->device & ~(uint64_t)UINT32_MAX) | val; break;
    case REG_QUEUE_DEVICE_HIGH: q->device = (q->device & UINT32_MAX) | (uint64_t)val << 32; break;
    default: break;
    }
}

static void config_write(plx_virtio *v, unsigned off, uint64_t data, unsigned size)
{
    if (!v->ops->config_write || off >= v->ops->config_size || size > v->ops->config_size - off)
        return;
    for (unsigned i = 0; i < size; i++)
        v->st->config[off + i] = (uint8_t)(data >> (8 * i));
    v->ops->config_write(v->opaque, off, size);
    publish_config(v);
}

static void regs_write(void *opaque, uint64_t addr, uint64_t data, unsigned size)
{
    plx_virtio *v = opaque;
    struct vstate *st = v->st;
    if (!v->running)
        run_deferred(v);
    if (addr >= REG_CONFIG) {
        config_write(v, (unsigned)(addr - REG_CONFIG), data, size);
        return;
    }
    if (size != 4 || (addr & 3))
        return;     /* control registers take aligned 32-bit writes only */
    uint32_t val = (uint32_t)data;
    switch (addr) {
    case REG_QUEUE_NOTIFY:
        process_queue(v, val);
        return;
    case REG_INTERRUPT_ACK:
        acknowledge(v, val);
        return;
    case REG_STATUS:
        write_status(v, val);
        return;
    case REG_DEVICE_FEATURES_SEL:
        st->device_features_sel = val;
        publish_reg(v, REG_DEVICE_FEATURES);
        return;
    case REG_DRIVER_FEATURES:
        if (!(st->status & PLX_VIRTIO_STATUS_FEATURES_OK) && st->driver_features_sel < 2) {
            unsigned sh = 32 * st->driver_features_sel;
            st->driver_features = (st->driver_features & ~((uint64_t)UINT32_MAX << sh)) | (uint64_t)val << sh;
        }
        return;
    case REG_DRIVER_FEATURES_SEL:
        st->driver_features_sel = val;
        return;
    case REG_QUEUE_SEL:
        st->queue_sel = val;
        publish_reg(v, REG_QUEUE_NUM_MAX);
        publish_reg(v, REG_QUEUE_READY);
        return;
    default:
        queue_reg_write(v, addr, val);
        return;
    }
}

static const plx_region_ops regs_ops = {
    .read = regs_read,
    .write = regs_write,
    .endianness = PLX_LITTLE_ENDIAN,
    .valid = { .min_access_size = 1, .max_access_size = 8 },
    .impl = { .min_access_size = 1, .max_access_size = 4 },
};

/* ---- configuration ------------------------------------------------------------------------------------------ */

PLX_EXPORT plx_dev *
plx_virtio_dev(plx_virtio *v)
{
    return v->dev;
}

PLX_EXPORT void *
plx_virtio_config(plx_virtio *v)
{
    return v->st->config;
}

PLX_EXPORT int
plx_virtio_offer(plx_virtio *v, uint64_t features)
{
    if (features & (RESERVED_FEATURES | LAYER_FEATURES))
        return -EINVAL;
    v->offered = features | LAYER_FEATURES;
    publish_reg(v, REG_DEVICE_FEATURES);
    return 0;
}

PLX_EXPORT uint64_t
plx_virtio_features(plx_virtio *v)
{
    return v->st->status & PLX_VIRTIO_STATUS_FEATURES_OK ? v->st->driver_features : 0;
}

PLX_EXPORT void
plx_virtio_config_changed(plx_virtio *v)
{
    /* Odd while the bytes change: a driver that reads the generation around its reads sees a difference. */
    v->st->generation++;
    publish_reg(v, REG_CONFIG_GENERATION);
    publish_config(v);
    v->st->generation++;
    publish_reg(v, REG_CONFIG_GENERATION);
    if (v->st->status & PLX_VIRTIO_STATUS_DRIVER_OK)
        raise_interrupt(v, INT_CONFIG);
}

/* Copy between @buf and the bytes of @iov from @offset on: to the buffers if @to_iov. Bytes copied. */
static size_t iov_copy(const struct iovec *iov, unsigned n, size_t offset, void *buf, size_t len, bool to_iov)
{
    size_t done = 0;
    for (unsigned i = 0; i < n && done < len; i++) {
        size_t l = iov[i].iov_len;
        if (offset >= l) {
            offset -= l;
            continue;
        }
        size_t k = l - offset < len - done ? l - offset : len - done;
        uint8_t *at = (uint8_t *)iov[i].iov_base + offset;
        if (to_iov)
            memcpy(at, (const uint8_t *)buf + done, k);
        else
            memcpy((uint8_t *)buf + done, at, k);
        done += k;
        offset = 0;
    }
    return done;
}

PLX_EXPORT size_t
plx_virtio_req_read(const plx_virtio_req *req, size_t offset, void *buf, size_t len)
{
    return iov_copy(req->out, req->n_out, offset, buf, len, false);
}

PLX_EXPORT size_t
plx_virtio_req_write(const plx_virtio_req *req, size_t offset, const void *buf, size_t len)
{
    return iov_copy(req->in, req->n_in, offset, (void *)buf, len, true);
}

/* ---- life cycle --------------------------------------------------------------------------------------------- */

/* The first turn of the run loop after a restart: raise what the old process had raised, hand the requests it
 * held to the device again, and take what arrived meanwhile. (Before Ready the hub takes no interrupt.) */
static void run_deferred(plx_virtio *v)
{
    v->running = true;
    if (v->deferred_fd >= 0) {
        plx_dev_watch_fd(v->dev, v->deferred_fd, NULL, NULL);
        close(v->deferred_fd);
        v->deferred_fd = -1;
    }
    update_irq(v);
    if (!driver_running(v))
        return;
    char err[256];
    for (unsigned qi = 0; qi < v->ops->n_queues; qi++) {
        struct vqueue *vq = &v->q[qi];
        virtq_chain c = { .iov = vq->iov, .addr = vq->addr };
        for (unsigned head = 0; vq->started && head < vq->q.st->num; head++) {
            if (!virtq_inflight(vq->q.st, head))
                continue;
            if (virtq_walk(&vq->q, (uint16_t)head, &c, err, sizeof(err)) < 0) {
                needs_reset(v, "queue %u: %s", qi, err);
                return;
            }
            hand_out(v, qi, &c);
            if (!driver_running(v))
                return;
        }
    }
    process_all(v);
}

static void on_deferred(void *opaque, int fd)
{
    (void)fd;
    run_deferred(opaque);
}

/* A restarted process: map the running queues again and reconcile their state with the rings. */
static void restore(plx_virtio *v)
{
    char err[256];
    for (unsigned qi = 0; qi < v->ops->n_queues; qi++) {
        if (!v->st->q[qi].ready || queue_start(v, qi) < 0)
            continue;
        if (virtq_recover(&v->q[qi].q, err, sizeof(err)) < 0)
            needs_reset(v, "queue %u: %s", qi, err);
    }
    v->deferred_fd = eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK);
    if (v->deferred_fd < 0 || plx_dev_watch_fd(v->dev, v->deferred_fd, on_deferred, v) < 0)
        plx_log(v->dev, PLX_LOG_WARNING, "virtio: cannot schedule the restart's catch-up; it waits for the next "
                "register write");
}

static void virtio_free(plx_virtio *v)
{
    while (v->live.next != &v->live) {
        struct vreq *r = v->live.next;
        v->live.next = r->next;
        free(r);
    }
    for (unsigned qi = 0; qi < PLX_VIRTIO_MAX_QUEUES; qi++) {
        free(v->q[qi].iov);
        free(v->q[qi].addr);
    }
    if (v->deferred_fd >= 0)
        close(v->deferred_fd);
    free(v);
}

static int virtio_init(plx_dev *dev, void **opaque)
{
    const plx_virtio_ops *ops = host.vops;
    plx_virtio *v = calloc(1, sizeof(*v));
    if (!v)
        return -ENOMEM;
    v->dev = dev;
    v->ops = ops;
    v->deferred_fd = -1;
    v->live.next = v->live.prev = &v->live;
    v->offered = ops->features | LAYER_FEATURES;
    bool restored = false;
    v->st = plx_dev_state(dev, sizeof(struct vstate), &restored);
    if (!v->st) {
        free(v);
        return -ENOMEM;
    }
    for (unsigned qi = 0; qi < ops->n_queues; qi++) {
        v->q[qi].q.st = &v->st->q[qi];
        v->q[qi].q.map = map_guest;
        v->q[qi].q.map_ctx = v;
        v->q[qi].iov = calloc(ops->queue_size, sizeof(struct iovec));
        v->q[qi].addr = calloc(ops->queue_size, sizeof(uint64_t));
        if (!v->q[qi].iov || !v->q[qi].addr) {
            virtio_free(v);
            return -ENOMEM;
        }
    }
    uint8_t before[PLX_VIRTIO_CONFIG_MAX];
    memcpy(before, v->st->config, sizeof(before));
    int r = ops->init ? ops->init(v, &v->opaque) : 0;
    if (r < 0) {
        virtio_free(v);
        return r;
    }
    if (restored) {
        if (memcmp(before, v->st->config, ops->config_size) != 0)
            plx_virtio_config_changed(v);
        restore(v);
    }
    publish_all(v);
    *opaque = v;
    return 0;
}

static void virtio_reset(void *opaque)
{
    do_reset(opaque);
}

static void virtio_fini(void *opaque)
{
    plx_virtio *v = opaque;
    if (!v)
        return;
    if (v->ops->fini)
        v->ops->fini(v->opaque);
    virtio_free(v);
}

static int check_ops(const plx_virtio_ops *ops)
{
    const char *why = NULL;
    if (!ops)
        why = "no ops";
    else if (ops->version != PLX_VIRTIO_OPS_VERSION)
        why = "ops version is not PLX_VIRTIO_OPS_VERSION";
    else if (!ops->device_id)
        why = "device_id is 0";
    else if (ops->n_queues < 1 || ops->n_queues > PLX_VIRTIO_MAX_QUEUES)
        why = "n_queues is not 1..PLX_VIRTIO_MAX_QUEUES";
    else if (!ops->queue_size || ops->queue_size > PLX_VIRTIO_QUEUE_SIZE_MAX ||
             (ops->queue_size & (ops->queue_size - 1)))
        why = "queue_size is not a power of 2 up to PLX_VIRTIO_QUEUE_SIZE_MAX";
    else if (ops->config_size > PLX_VIRTIO_CONFIG_MAX)
        why = "config_size is larger than PLX_VIRTIO_CONFIG_MAX";
    else if (!ops->request)
        why = "no request callback";
    else if (ops->features & (RESERVED_FEATURES | LAYER_FEATURES))
        why = "features include transport bits (24..37) the layer owns or does not implement";
    else if (ops->n_props && !ops->props)
        why = "n_props without props";
    if (!why)
        return 0;
    fprintf(stderr, "plexus-virtio: %s: %s\n", ops && ops->model ? ops->model : "device", why);
    return -EINVAL;
}

PLX_EXPORT const plx_device_ops *
plx_virtio_device_ops(const plx_virtio_ops *ops)
{
    if (check_ops(ops) < 0)
        return NULL;
    host.vops = ops;
    host.region = (plx_region_info){
        .name = "regs", .size = PLX_VIRTIO_REGION_SIZE, .kind = PLX_REGION_SHADOW, .ops = &regs_ops,
        .read_through = read_through, .n_read_through = 1,
    };
    host.ops = (plx_device_ops){
        .version = PLX_DEVICE_OPS_VERSION, .model = ops->model, .regions = &host.region, .n_regions = 1,
        .irq_names = irq_names, .n_irqs = 1, .props = ops->props, .n_props = ops->n_props,
        .init = virtio_init, .reset = virtio_reset, .fini = virtio_fini, .dt_node = "virtio_mmio",
    };
    return &host.ops;
}

PLX_EXPORT int
plx_virtio_main(const plx_virtio_ops *ops, int argc, char **argv)
{
    const plx_device_ops *dops = plx_virtio_device_ops(ops);
    return dops ? plx_dev_main(dops, argc, argv) : 2;
}
