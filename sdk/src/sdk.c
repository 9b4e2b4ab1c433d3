/*
 * The device side of the plexus protocol (docs/protocol.md): connection, handshake, RAM and shadow mappings,
 * and the single-threaded run loop that dispatches hub messages to the device's callbacks.
 */
#define _GNU_SOURCE
#include "plexus/sdk.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "plexus/handshake.h"
#include "plexus/wire.h"
#include "sandbox.h"

#define RECV_IDLE_MS 500    /* how often an idle device checks that the hub is still there */

struct ram_map {
    uint64_t base, size;
    uint8_t *ptr;           /* NULL: not mapped, DMA by message */
    size_t map_len;
    bool readonly;
};

struct shadow_map {
    uint8_t *map;           /* whole mapping, header first */
    size_t map_len;
    uint8_t *data;
    uint64_t size;
    struct plx_shadow_header *hdr;
};

struct watch {
    int fd;
    void (*cb)(void *opaque, int fd);
    void *opaque;
};

struct plx_timer {
    plx_dev *dev;
    void (*cb)(void *opaque);
    void *opaque;
    uint32_t id;
    uint64_t generation;
    bool armed;
};

/* A frame that arrived while a DMA reply was awaited; handled by the run loop afterwards. */
struct pending {
    struct pending *next;
    size_t len;
    uint8_t data[];
};

struct batched {
    uint64_t seq, addr, data;
    uint32_t region, size;
};

struct plx_dev {
    const plx_device_ops *ops;
    void *opaque;
    char *name;
    plx_chan *chan;
    bool ring;                  /* the channel is a shared-memory ring; fdsock's hang-up says the hub is gone */
    plx_wire wire;
    int fdsock;                 /* UNIX socket that carries SCM_RIGHTS fds, or -1 */
    bool connected, initialized;
    uint64_t now;

    char **prop_values;         /* configured value per declared prop, or NULL */

    struct ram_map *ram;
    unsigned n_ram;
    struct shadow_map *shadows; /* one per declared region (unused unless SHADOW) */
    unsigned n_shadows;
    int8_t *irq_level;

    plx_timer **timers;
    unsigned n_timers;

    struct watch *watches;
    unsigned n_watches, cap_watches;
    struct pollfd *items;
    unsigned cap_items;

    struct pending *pend_head, *pend_tail;
    struct batched *batch;
    size_t batch_cap;
    struct plx_state_header *state_hdr;     /* hub-owned state block, or NULL */
    void *state_own;                        /* the state when there is no block */
    bool state_claimed;
    bool sandbox;
    char *sandbox_policy;
    char **sandbox_allow;
    size_t n_sandbox_allow;
    uint64_t dma_seq;
    uint32_t max_dma_len;
    bool lockstep;              /* Config.lockstep: the hub grants time */
    uint64_t next_event;        /* lockstep: plx_set_next_event() */
    uint64_t access_busy;       /* lockstep: plx_set_access_busy() for the reply being built */
    bool stop;
    int status;
    int epfd;                   /* plx_dev_open(): the poll descriptor (epoll) handed to the caller's loop */
    int kickfd;                 /* eventfd in that set: work is already there */
    bool heap;                  /* allocated by plx_dev_open(): dev_free() frees it */
};

/* ---- small helpers ---------------------------------------------------------------------------------------- */

static const char *dev_label(plx_dev *dev)
{
    if (dev->name && dev->name[0])
        return dev->name;
    return dev->ops && dev->ops->model ? dev->ops->model : "device";
}

static int send_env(plx_dev *dev, Plx__Envelope *env)
{
    return plx_wire_send(&dev->wire, env, 0);
}

/* Records with nowhere else to go (no hub yet, or no more) go to the program's handler; none: dropped. */
static plx_log_handler *log_handler;
static void *log_handler_opaque;

PLX_EXPORT void
plx_set_log_handler(plx_log_handler *fn, void *opaque)
{
    log_handler = fn;
    log_handler_opaque = opaque;
}

static void stderr_handler(void *opaque, int level, const char *device, const char *text)
{
    (void)opaque;
    (void)level;
    fprintf(stderr, "%s: %s\n", device, text);
}

static void local_log(plx_dev *dev, int level, const char *text)
{
    if (log_handler)
        log_handler(log_handler_opaque, level, dev ? dev_label(dev) : "plexus-sdk", text);
}

/* A record of the SDK itself that stays in this process (about the connection, or before it is up). */
static void sdk_log(plx_dev *dev, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void sdk_log(plx_dev *dev, int level, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    local_log(dev, level, buf);
}

static void vlog_record(plx_dev *dev, int level, const char *fmt, va_list ap)
{
    char buf[1024];
    vsnprintf(buf, sizeof(buf), fmt, ap);
    if (!dev || !dev->connected) {
        local_log(dev, level, buf);
        return;
    }
    Plx__Log lg = PLX__LOG__INIT;
    lg.level = (uint32_t)level;
    lg.text = buf;
    Plx__Envelope env = PLX__ENVELOPE__INIT;
    env.msg_case = PLX__ENVELOPE__MSG_LOG;
    env.log = &lg;
    if (send_env(dev, &env) < 0)
        local_log(dev, level, buf);
}

PLX_EXPORT void
plx_log(plx_dev *dev, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog_record(dev, level, fmt, ap);
    va_end(ap);
}

static void send_error(plx_dev *dev, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void send_error(plx_dev *dev, int code, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    local_log(dev, PLX_LOG_ERR, buf);
    if (!dev->chan)
        return;
    Plx__Error er = PLX__ERROR__INIT;
    er.code = (uint32_t)code;
    er.text = buf;
    Plx__Envelope env = PLX__ENVELOPE__INIT;
    env.msg_case = PLX__ENVELOPE__MSG_ERROR;
    env.error = &er;
    send_env(dev, &env);
}

/* ---- properties ------------------------------------------------------------------------------------------ */

static int prop_index(plx_dev *dev, const char *name)
{
    for (unsigned i = 0; i < dev->ops->n_props; i++)
        if (dev->ops->props[i].name && strcmp(dev->ops->props[i].name, name) == 0)
            return (int)i;
    return -1;
}

PLX_EXPORT const char *
plx_dev_prop(plx_dev *dev, const char *name)
{
    int i = name ? prop_index(dev, name) : -1;
    if (i < 0)
        return NULL;
    if (dev->prop_values && dev->prop_values[i])
        return dev->prop_values[i];
    return dev->ops->props[i].default_value;
}

PLX_EXPORT int
plx_dev_prop_u64(plx_dev *dev, const char *name, uint64_t *out)
{
    const char *v = plx_dev_prop(dev, name);
    if (!v) {
        plx_log(dev, PLX_LOG_ERR, "property '%s' is %s", name ? name : "(null)",
                name && prop_index(dev, name) >= 0 ? "not set" : "not declared");
        return -EINVAL;
    }
    while (isspace((unsigned char)*v))
        v++;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 0);
    if (errno || end == v || *v == '-') {
        plx_log(dev, PLX_LOG_ERR, "property '%s': '%s' is not an unsigned number", name, v);
        return -EINVAL;
    }
    unsigned shift = 0;
    switch (*end) {
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    default: break;
    }
    while (isspace((unsigned char)*end))
        end++;
    if (*end || (shift && x > (UINT64_MAX >> shift))) {
        plx_log(dev, PLX_LOG_ERR, "property '%s': '%s' is not an unsigned number", name, v);
        return -EINVAL;
    }
    *out = (uint64_t)x << shift;
    return 0;
}

PLX_EXPORT const char *
plx_dev_name(plx_dev *dev)
{
    return dev->name ? dev->name : "";
}

PLX_EXPORT void *
plx_dev_opaque(plx_dev *dev)
{
    return dev->opaque;
}

PLX_EXPORT void
plx_dev_stop(plx_dev *dev, int status)
{
    dev->stop = true;
    dev->status = status;
}

PLX_EXPORT uint64_t
plx_now(plx_dev *dev)
{
    return dev->now;
}

/* ---- run loop pieces ------------------------------------------------------------------------------------- */

static void handle_env(plx_dev *dev, Plx__Envelope *env);
static bool hub_gone(plx_dev *dev);

/* Receive until a DmaReply with @seq arrives; frames of other kinds are queued for the run loop. */
static int await_dma_reply(plx_dev *dev, uint64_t seq, Plx__Envelope **out)
{
    for (;;) {
        const void *data;
        size_t len;
        int r = plx_chan_recv(dev->chan, &data, &len, RECV_IDLE_MS);
        if (r == -EINTR)
            continue;
        if (r == -EAGAIN) {     /* the receive timeout: is the hub still there? */
            if (hub_gone(dev))
                return -EIO;
            continue;
        }
        if (r < 0)
            return -EIO;
        /* A decoded envelope owns its bytes (protobuf-c and the fixed layouts copy them): only a frame kept for
         * the run loop needs a copy, since the channel's buffer lasts until its next call. */
        Plx__Envelope *env;
        if (plx_wire_decode(&dev->wire, data, len, &env) < 0)
            continue;
        if (env->now_ns > dev->now)
            dev->now = env->now_ns;
        if (env->msg_case == PLX__ENVELOPE__MSG_DMA_REPLY && env->dma_reply->seq == seq) {
            *out = env;
            return 0;
        }
        plx_wire_release(&dev->wire);
        struct pending *p = malloc(sizeof(*p) + len);
        if (!p)
            return -ENOMEM;
        p->next = NULL;
        p->len = len;
        memcpy(p->data, data, len);
        if (dev->pend_tail)
            dev->pend_tail->next = p;
        else
            dev->pend_head = p;
        dev->pend_tail = p;
    }
}

static int dma_message(plx_dev *dev, uint64_t addr, void *rbuf, const void *wbuf, size_t len)
{
    if (!dev->connected)
        return -EIO;
    size_t chunk_max = dev->max_dma_len ? dev->max_dma_len : PLX_MAX_DMA;
    size_t done = 0;
    while (done < len) {
        size_t n = len - done < chunk_max ? len - done : chunk_max;
        Plx__DmaRequest rq = PLX__DMA_REQUEST__INIT;
        rq.seq = ++dev->dma_seq;
        rq.addr = addr + done;
        rq.len = (uint32_t)n;
        if (wbuf) {
            rq.write = true;
            rq.data.data = (uint8_t *)wbuf + done;
            rq.data.len = n;
        }
        Plx__Envelope env = PLX__ENVELOPE__INIT;
        env.msg_case = PLX__ENVELOPE__MSG_DMA;
        env.dma = &rq;
        if (send_env(dev, &env) < 0)
            return -EIO;
        Plx__Envelope *rep;
        int r = await_dma_reply(dev, rq.seq, &rep);
        if (r < 0)
            return r;
        Plx__DmaReply *dr = rep->dma_reply;
        if (dr->result != PLX__MEM_TX__MEMTX_OK) {
            plx_wire_release(&dev->wire);
            return -EFAULT;
        }
        if (rbuf) {
            if (dr->data.len != n) {
                plx_wire_release(&dev->wire);
                return -EIO;
            }
            memcpy((uint8_t *)rbuf + done, dr->data.data, n);
        }
        plx_wire_release(&dev->wire);
        done += n;
    }
    return 0;
}

static struct ram_map *ram_lookup(plx_dev *dev, uint64_t addr, size_t len)
{
    for (unsigned i = 0; i < dev->n_ram; i++) {
        struct ram_map *r = &dev->ram[i];
        if (r->ptr && addr >= r->base && addr - r->base <= r->size && len <= r->size - (addr - r->base))
            return r;
    }
    return NULL;
}

PLX_EXPORT void *
plx_dma_map(plx_dev *dev, uint64_t addr, size_t len, bool write)
{
    struct ram_map *r = ram_lookup(dev, addr, len);
    if (!r || (write && r->readonly))
        return NULL;
    return r->ptr + (addr - r->base);
}

PLX_EXPORT int
plx_dma_read(plx_dev *dev, uint64_t addr, void *buf, size_t len)
{
    if (len == 0)
        return 0;
    struct ram_map *r = ram_lookup(dev, addr, len);
    if (r) {
        memcpy(buf, r->ptr + (addr - r->base), len);
        return 0;
    }
    return dma_message(dev, addr, buf, NULL, len);
}

PLX_EXPORT int
plx_dma_write(plx_dev *dev, uint64_t addr, const void *buf, size_t len)
{
    if (len == 0)
        return 0;
    struct ram_map *r = ram_lookup(dev, addr, len);
    if (r) {
        if (r->readonly)
            return -EACCES;
        memcpy(r->ptr + (addr - r->base), buf, len);
        return 0;
    }
    return dma_message(dev, addr, NULL, buf, len);
}

/* ---- IRQ ------------------------------------------------------------------------------------------------- */

static void send_irq(plx_dev *dev, unsigned line, Plx__IrqOp op, int level, uint64_t at_ns)
{
    Plx__Irq irq = PLX__IRQ__INIT;
    irq.line = line;
    irq.op = op;
    irq.level = level ? 1 : 0;
    irq.at_ns = at_ns;
    Plx__Envelope env = PLX__ENVELOPE__INIT;
    env.msg_case = PLX__ENVELOPE__MSG_IRQ;
    env.irq = &irq;
    send_env(dev, &env);
}

PLX_EXPORT void
plx_irq_set_at(plx_dev *dev, unsigned line, int level, uint64_t at_ns)
{
    if (line >= dev->ops->n_irqs || !dev->connected)
        return;
    level = level ? 1 : 0;
    if (dev->irq_level[line] == level)
        return;
    dev->irq_level[line] = (int8_t)level;
    send_irq(dev, line, PLX__IRQ_OP__IRQ_SET, level, at_ns);
}

PLX_EXPORT void
plx_irq_set(plx_dev *dev, unsigned line, int level)
{
    plx_irq_set_at(dev, line, level, 0);
}

PLX_EXPORT void
plx_set_next_event(plx_dev *dev, uint64_t ns)
{
    dev->next_event = ns;
}

PLX_EXPORT bool
plx_dev_lockstep(plx_dev *dev)
{
    return dev->lockstep;
}

PLX_EXPORT void
plx_set_access_busy(plx_dev *dev, uint64_t ns)
{
    dev->access_busy = ns;
}

/* TimeGrant: advance the device's own time to @until, then say so. */
static void time_grant(plx_dev *dev, uint64_t until)
{
    if (until > dev->now)
        dev->now = until;
    if (dev->ops->version >= 2 && dev->ops->advance)
        dev->ops->advance(dev->opaque, until);
    Plx__TimeReached tr = PLX__TIME_REACHED__INIT;
    tr.now_ns = until;
    tr.next_event_ns = dev->next_event;
    Plx__Envelope env = PLX__ENVELOPE__INIT;
    env.msg_case = PLX__ENVELOPE__MSG_TIME_REACHED;
    env.time_reached = &tr;
    send_env(dev, &env);
}

PLX_EXPORT void
plx_irq_pulse(plx_dev *dev, unsigned line)
{
    if (line >= dev->ops->n_irqs || !dev->connected)
        return;
    dev->irq_level[line] = 0;
    send_irq(dev, line, PLX__IRQ_OP__IRQ_PULSE, 1, 0);
}

/* ---- timers ---------------------------------------------------------------------------------------------- */

PLX_EXPORT plx_timer *
plx_timer_new(plx_dev *dev, void (*cb)(void *opaque), void *opaque)
{
    unsigned id;
    for (id = 0; id < dev->n_timers; id++)
        if (!dev->timers[id])
            break;
    if (id == dev->n_timers) {
        plx_timer **t = realloc(dev->timers, sizeof(*t) * (dev->n_timers + 8));
        if (!t)
            return NULL;
        memset(t + dev->n_timers, 0, sizeof(*t) * 8);
        dev->timers = t;
        dev->n_timers += 8;
    }
    plx_timer *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->dev = dev;
    t->cb = cb;
    t->opaque = opaque;
    t->id = id;
    dev->timers[id] = t;
    return t;
}

PLX_EXPORT void
plx_timer_mod(plx_timer *t, uint64_t deadline_ns)
{
    plx_dev *dev = t->dev;
    t->generation++;
    t->armed = true;
    Plx__TimerArm ta = PLX__TIMER_ARM__INIT;
    ta.id = t->id;
    ta.deadline_ns = deadline_ns;
    ta.generation = t->generation;
    Plx__Envelope env = PLX__ENVELOPE__INIT;
    env.msg_case = PLX__ENVELOPE__MSG_TIMER_ARM;
    env.timer_arm = &ta;
    send_env(dev, &env);
}

PLX_EXPORT void
plx_timer_del(plx_timer *t)
{
    if (!t->armed)
        return;
    t->armed = false;
    t->generation++;
    Plx__TimerCancel tc = PLX__TIMER_CANCEL__INIT;
    tc.id = t->id;
    Plx__Envelope env = PLX__ENVELOPE__INIT;
    env.msg_case = PLX__ENVELOPE__MSG_TIMER_CANCEL;
    env.timer_cancel = &tc;
    send_env(t->dev, &env);
}

PLX_EXPORT void
plx_timer_free(plx_timer *t)
{
    if (!t)
        return;
    if (t->dev->connected)
        plx_timer_del(t);
    t->dev->timers[t->id] = NULL;
    free(t);
}

static void timer_fire(plx_dev *dev, const Plx__TimerFire *f)
{
    if (f->id >= dev->n_timers || !dev->timers[f->id])
        return;
    plx_timer *t = dev->timers[f->id];
    if (!t->armed || t->generation != f->generation)
        return;     /* re-armed or cancelled after the hub sent this */
    t->armed = false;
    dev->now = f->deadline_ns;
    t->cb(t->opaque);
}

/* ---- shadow pages ---------------------------------------------------------------------------------------- */

PLX_EXPORT void *
plx_shadow(plx_dev *dev, unsigned region)
{
    if (region >= dev->n_shadows)
        return NULL;
    return dev->shadows[region].data;
}

PLX_EXPORT void
plx_shadow_store(plx_dev *dev, unsigned region, uint64_t offset, uint64_t value, unsigned size)
{
    if (region >= dev->n_shadows || !dev->shadows[region].data)
        return;
    struct shadow_map *s = &dev->shadows[region];
    if ((size != 1 && size != 2 && size != 4 && size != 8) || offset > s->size || size > s->size - offset)
        return;
    uint8_t *p = s->data + offset;
    if ((offset & (size - 1)) == 0) {
        switch (size) {
        case 1: __atomic_store_n(p, (uint8_t)value, __ATOMIC_RELEASE); return;
        case 2: __atomic_store_n((uint16_t *)p, htole16((uint16_t)value), __ATOMIC_RELEASE); return;
        case 4: __atomic_store_n((uint32_t *)p, htole32((uint32_t)value), __ATOMIC_RELEASE); return;
        case 8: __atomic_store_n((uint64_t *)p, htole64(value), __ATOMIC_RELEASE); return;
        }
    }
    for (unsigned i = 0; i < size; i++)
        __atomic_store_n(p + i, (uint8_t)(value >> (8 * i)), __ATOMIC_RELAXED);
    atomic_thread_fence(memory_order_release);
}

static void publish_applied(plx_dev *dev, uint64_t seq)
{
    if (dev->state_hdr)
        __atomic_store_n(&dev->state_hdr->applied_seq, seq, __ATOMIC_RELEASE);
    for (unsigned i = 0; i < dev->n_shadows; i++)
        if (dev->shadows[i].hdr)
            __atomic_store_n(&dev->shadows[i].hdr->applied_seq, seq, __ATOMIC_RELEASE);
}

/* ---- fd watches ------------------------------------------------------------------------------------------ */

static int watch_add(plx_dev *dev, int fd);

PLX_EXPORT int
plx_dev_watch_fd(plx_dev *dev, int fd, void (*cb)(void *opaque, int fd), void *opaque)
{
    if (fd < 0)
        return -EINVAL;
    for (unsigned i = 0; i < dev->n_watches; i++) {
        if (dev->watches[i].fd != fd)
            continue;
        if (!cb) {
            dev->watches[i] = dev->watches[--dev->n_watches];
            if (dev->epfd >= 0)
                epoll_ctl(dev->epfd, EPOLL_CTL_DEL, fd, NULL);
        } else {
            dev->watches[i].cb = cb;
            dev->watches[i].opaque = opaque;
        }
        return 0;
    }
    if (!cb)
        return 0;
    if (dev->n_watches == dev->cap_watches) {
        unsigned cap = dev->cap_watches ? dev->cap_watches * 2 : 4;
        struct watch *w = realloc(dev->watches, sizeof(*w) * cap);
        if (!w)
            return -ENOMEM;
        dev->watches = w;
        dev->cap_watches = cap;
    }
    if (dev->epfd >= 0) {
        int r = watch_add(dev, fd);
        if (r < 0)
            return r;
    }
    dev->watches[dev->n_watches++] = (struct watch){ .fd = fd, .cb = cb, .opaque = opaque };
    return 0;
}

/* ---- MMIO ------------------------------------------------------------------------------------------------ */

static bool access_ok(plx_dev *dev, uint32_t region, uint64_t addr, uint32_t size)
{
    if (region >= dev->ops->n_regions)
        return false;
    if (size != 1 && size != 2 && size != 4 && size != 8)
        return false;
    uint64_t rsize = dev->ops->regions[region].size;
    return addr < rsize && size <= rsize - addr;
}

static void reply(plx_dev *dev, uint64_t seq, uint64_t data, Plx__MemTx result)
{
    Plx__MmioReply rp = PLX__MMIO_REPLY__INIT;
    rp.seq = seq;
    rp.data = data;
    rp.result = result;
    rp.busy_ns = dev->access_busy;
    dev->access_busy = 0;
    if (dev->lockstep)
        rp.next_event_ns = dev->next_event;
    Plx__Envelope env = PLX__ENVELOPE__INIT;
    env.msg_case = PLX__ENVELOPE__MSG_REPLY;
    env.reply = &rp;
    send_env(dev, &env);
}

static void mmio_read(plx_dev *dev, const Plx__MmioRead *rd)
{
    uint64_t seq = rd->seq;
    dev->access_busy = 0;
    if (!access_ok(dev, rd->region, rd->addr, rd->size)) {
        plx_log(dev, PLX_LOG_WARNING, "read of %u bytes at 0x%" PRIx64 " outside region %u", rd->size, rd->addr,
                rd->region);
        reply(dev, seq, UINT64_MAX, PLX__MEM_TX__MEMTX_DECODE_ERROR);
        return;
    }
    const plx_region_ops *ops = dev->ops->regions[rd->region].ops;
    uint32_t size = rd->size;
    uint64_t addr = rd->addr;
    /* The callback may DMA by message, which reuses the decode arena: nothing of *rd is used after it. */
    uint64_t v = ops && ops->read ? ops->read(dev->opaque, addr, size) : 0;
    if (size < 8)
        v &= (UINT64_C(1) << (8 * size)) - 1;
    reply(dev, seq, v, PLX__MEM_TX__MEMTX_OK);
}

static void mmio_write(plx_dev *dev, uint64_t seq, uint32_t region, uint64_t addr, uint32_t size, uint64_t data,
                       bool posted)
{
    dev->access_busy = 0;
    if (!access_ok(dev, region, addr, size)) {
        plx_log(dev, PLX_LOG_WARNING, "write of %u bytes at 0x%" PRIx64 " outside region %u", size, addr, region);
        publish_applied(dev, seq);
        if (!posted)
            reply(dev, seq, 0, PLX__MEM_TX__MEMTX_DECODE_ERROR);
        return;
    }
    const plx_region_ops *ops = dev->ops->regions[region].ops;
    if (size < 8)
        data &= (UINT64_C(1) << (8 * size)) - 1;
    if (dev->state_hdr)
        __atomic_store_n(&dev->state_hdr->applying_seq, seq, __ATOMIC_RELEASE);
    if (ops && ops->write)
        ops->write(dev->opaque, addr, data, size);
    publish_applied(dev, seq);
    if (!posted)
        reply(dev, seq, 0, PLX__MEM_TX__MEMTX_OK);
}

static void handle_env(plx_dev *dev, Plx__Envelope *env)
{
    if (env->now_ns > dev->now)
        dev->now = env->now_ns;
    switch (env->msg_case) {
    case PLX__ENVELOPE__MSG_READ:
        mmio_read(dev, env->read);
        break;
    case PLX__ENVELOPE__MSG_WRITE: {
        const Plx__MmioWrite *w = env->write;
        mmio_write(dev, w->seq, w->region, w->addr, w->size, w->data, w->posted);
        break;
    }
    case PLX__ENVELOPE__MSG_WRITE_BATCH: {
        /* Copy first: a write callback may DMA by message, which reuses the decode arena. */
        size_t n = env->write_batch->n_writes;
        if (n > dev->batch_cap) {
            struct batched *b = realloc(dev->batch, sizeof(*b) * n);
            if (!b)
                break;
            dev->batch = b;
            dev->batch_cap = n;
        }
        for (size_t i = 0; i < n; i++) {
            const Plx__MmioWrite *w = env->write_batch->writes[i];
            dev->batch[i] = (struct batched){ w->seq, w->addr, w->data, w->region, w->size };
        }
        for (size_t i = 0; i < n && !dev->stop; i++) {
            struct batched *b = &dev->batch[i];
            mmio_write(dev, b->seq, b->region, b->addr, b->size, b->data, true);
        }
        break;
    }
    case PLX__ENVELOPE__MSG_TIMER_FIRE: {
        Plx__TimerFire f = *env->timer_fire;
        timer_fire(dev, &f);
        if (f.seq) {
            publish_applied(dev, f.seq);
            Plx__TimerDone td = PLX__TIMER_DONE__INIT;
            td.seq = f.seq;
            Plx__Envelope out = PLX__ENVELOPE__INIT;
            out.msg_case = PLX__ENVELOPE__MSG_TIMER_DONE;
            out.timer_done = &td;
            send_env(dev, &out);
        }
        break;
    }
    case PLX__ENVELOPE__MSG_RESET: {
        uint64_t seq = env->reset->seq;
        for (unsigned i = 0; i < dev->ops->n_irqs; i++)
            dev->irq_level[i] = -1;
        if (dev->ops->reset)
            dev->ops->reset(dev->opaque);
        if (seq)
            publish_applied(dev, seq);
        break;
    }
    case PLX__ENVELOPE__MSG_SHUTDOWN:
        plx_dev_stop(dev, 0);
        break;
    case PLX__ENVELOPE__MSG_TIME_GRANT:
        time_grant(dev, env->time_grant->until_ns);
        break;
    case PLX__ENVELOPE__MSG_ERROR:
        sdk_log(dev, PLX_LOG_ERR, "hub reports: %s", env->error->text ? env->error->text : "");
        break;
    default:
        plx_log(dev, PLX_LOG_WARNING, "unexpected %s message from the hub ignored",
                plx_wire_msg_name(env->msg_case));
        break;
    }
}

static int serve_socket(plx_dev *dev)
{
    for (;;) {
        while (dev->pend_head && !dev->stop) {
            struct pending *p = dev->pend_head;
            dev->pend_head = p->next;
            if (!dev->pend_head)
                dev->pend_tail = NULL;
            Plx__Envelope *env;
            if (plx_wire_decode(&dev->wire, p->data, p->len, &env) == 0) {
                handle_env(dev, env);
                plx_wire_release(&dev->wire);
            }
            free(p);
        }
        if (dev->stop)
            return 0;
        Plx__Envelope *env;
        int r = plx_wire_recv(&dev->wire, &env, 0);
        if (r == -EAGAIN)
            return 0;
        if (r == -EBADMSG) {
            plx_log(dev, PLX_LOG_WARNING, "undecodable frame from the hub dropped");
            continue;
        }
        if (r == -EINTR)
            continue;
        if (r < 0)
            return r;
        handle_env(dev, env);
        plx_wire_release(&dev->wire);
    }
}

/* True if the connection to the hub is gone: the ring's fd socket hung up, or ZeroMQ saw it disconnect. */
static bool hub_gone(plx_dev *dev)
{
    if (dev->ring && dev->fdsock < 0)
        return true;
    return plx_chan_peer_gone(dev->chan);
}

static int run_loop(plx_dev *dev)
{
    while (!dev->stop) {
        if (dev->pend_head) {
            if (serve_socket(dev) < 0)
                return -EIO;
            continue;
        }
        if (dev->n_watches == 0) {
            /* Only the hub to listen to: block in the receive itself, as cheap as a round trip gets. The
             * receive timeout (RECV_IDLE_MS) lets the idle loop notice a hub that went away. */
            Plx__Envelope *env;
            int r = plx_wire_recv(&dev->wire, &env, RECV_IDLE_MS);
            if (r == 0) {
                handle_env(dev, env);
                plx_wire_release(&dev->wire);
                if (serve_socket(dev) < 0)
                    return -EIO;
            } else if (r == -EAGAIN) {
                if (hub_gone(dev))
                    return -ECONNRESET;
            } else if (r == -EPIPE) {
                return -ECONNRESET;
            } else if (r == -EBADMSG) {
                plx_log(dev, PLX_LOG_WARNING, "undecodable frame from the hub dropped");
            } else if (r != -EINTR) {
                return -EIO;
            }
            continue;
        }
        unsigned n = 1 + dev->n_watches;
        if (n > dev->cap_items) {
            struct pollfd *it = realloc(dev->items, sizeof(*it) * n);
            if (!it)
                return -ENOMEM;
            dev->items = it;
            dev->cap_items = n;
        }
        /* On the ring, the next request usually comes within the spin budget: look for it before sleeping in a
         * poll that a bell would have to end (the watched descriptors wait that long at most). */
        bool have = dev->ring && plx_chan_spin(dev->chan) != 0;
        dev->items[0] = (struct pollfd){ .fd = plx_chan_poll_fd(dev->chan), .events = POLLIN };
        have |= plx_chan_poll_prepare(dev->chan);
        for (unsigned i = 0; i < dev->n_watches; i++)
            dev->items[1 + i] = (struct pollfd){ .fd = dev->watches[i].fd, .events = POLLIN };
        /* Whether the hub is gone is looked at when the loop is idle, not on every wake-up (latency). */
        int ready = poll(dev->items, n, have ? 0 : RECV_IDLE_MS);
        int e = errno;
        bool frame = plx_chan_poll_done(dev->chan, ready > 0 ? dev->items[0].revents : 0);
        dev->items[0].revents = 0;
        if (have || frame) {
            dev->items[0].revents = POLLIN;
            ready = ready < 0 ? 1 : ready + 1;
        }
        if (ready < 0) {
            if (e == EINTR)
                continue;
            return -EIO;
        }
        if (ready == 0) {
            if (hub_gone(dev))
                return -ECONNRESET;
            continue;
        }
        if (dev->items[0].revents & POLLIN)
            if (serve_socket(dev) < 0)
                return -EIO;
        /* Watches may change from inside callbacks: look each fd up again before calling it. */
        for (unsigned i = 1; i < n && !dev->stop; i++) {
            if (!(dev->items[i].revents & (POLLIN | POLLERR | POLLHUP)))
                continue;
            int fd = dev->items[i].fd;
            for (unsigned j = 0; j < dev->n_watches; j++) {
                if (dev->watches[j].fd == fd) {
                    dev->watches[j].cb(dev->watches[j].opaque, fd);
                    break;
                }
            }
        }
    }
    return 0;
}

/* ---- connection and handshake ---------------------------------------------------------------------------- */

static const char *arg_value(int argc, char **argv, const char *key)
{
    size_t kl = strlen(key);
    for (int i = 1; i < argc; i++)
        if (strncmp(argv[i], key, kl) == 0 && argv[i][kl] == '=')
            return argv[i] + kl + 1;
    return NULL;
}

/* Attach mode: ask the hub's attach socket for our channel; the socket then stays open to carry the fds. */
static int attach(plx_dev *dev, const char *path, char *endpoint, size_t ep_len)
{
    if (!dev->name || !dev->name[0]) {
        sdk_log(dev, PLX_LOG_ERR, "attach needs the device name (--plexus-name= or " PLX_ENV_DEVICE_NAME ")");
        return -EINVAL;
    }
    char err[300];
    int r = plx_hs_attach(path, dev->name, 30000, endpoint, ep_len, &dev->fdsock, err, sizeof(err));
    if (r < 0)
        sdk_log(dev, PLX_LOG_ERR, "%s", err);
    return r;
}

static int fd_for(Plx__FdKind kind, int32_t num, const int *passed, unsigned n_passed, bool *owned)
{
    *owned = true;
    if (kind == PLX__FD_KIND__FD_INHERITED) {
        return num >= 0 ? num : -1;
    }
    if (kind == PLX__FD_KIND__FD_PASSED && num >= 0 && (unsigned)num < n_passed) {
        *owned = false;     /* closed with the batch */
        return passed[num];
    }
    return -1;
}

static int send_hello_declare(plx_dev *dev)
{
    const plx_device_ops *ops = dev->ops;
    Plx__Hello h;
    plx_hs_hello_init(&h, PLX_CAPS_SDK | (dev->fdsock >= 0 ? PLX_CAP_RING : 0), dev->name, ops->model);
    Plx__Envelope env = PLX__ENVELOPE__INIT;
    env.msg_case = PLX__ENVELOPE__MSG_HELLO;
    env.hello = &h;
    if (send_env(dev, &env) < 0)
        return -EIO;

    Plx__RegionDecl *rd = calloc(ops->n_regions ? ops->n_regions : 1, sizeof(*rd));
    Plx__RegionDecl **rdp = calloc(ops->n_regions ? ops->n_regions : 1, sizeof(*rdp));
    Plx__AccessRules *ar = calloc(2 * (ops->n_regions ? ops->n_regions : 1), sizeof(*ar));
    unsigned n_rt = 0;
    for (unsigned i = 0; i < ops->n_regions; i++)
        n_rt += ops->regions[i].n_read_through;
    Plx__Range *rt = calloc(n_rt ? n_rt : 1, sizeof(*rt));
    Plx__Range **rtp = calloc(n_rt ? n_rt : 1, sizeof(*rtp));
    Plx__PropDecl *pd = calloc(ops->n_props ? ops->n_props : 1, sizeof(*pd));
    Plx__PropDecl **pdp = calloc(ops->n_props ? ops->n_props : 1, sizeof(*pdp));
    int ret = -ENOMEM;
    if (!rd || !rdp || !ar || !rt || !rtp || !pd || !pdp)
        goto out;
    unsigned k = 0;
    for (unsigned i = 0; i < ops->n_regions; i++) {
        const plx_region_info *ri = &ops->regions[i];
        plx__region_decl__init(&rd[i]);
        rd[i].name = (char *)(ri->name ? ri->name : "");
        rd[i].size = ri->size;
        rd[i].kind = (Plx__RegionKind)ri->kind;
        if (ri->ops) {
            rd[i].endianness = ri->ops->endianness == PLX_BIG_ENDIAN ? PLX__ENDIAN__BIG : PLX__ENDIAN__LITTLE;
            plx__access_rules__init(&ar[2 * i]);
            ar[2 * i].min_access_size = ri->ops->valid.min_access_size;
            ar[2 * i].max_access_size = ri->ops->valid.max_access_size;
            ar[2 * i].unaligned = ri->ops->valid.unaligned;
            plx__access_rules__init(&ar[2 * i + 1]);
            ar[2 * i + 1].min_access_size = ri->ops->impl.min_access_size;
            ar[2 * i + 1].max_access_size = ri->ops->impl.max_access_size;
            ar[2 * i + 1].unaligned = ri->ops->impl.unaligned;
            rd[i].valid = &ar[2 * i];
            rd[i].impl = &ar[2 * i + 1];
            rd[i].has_read = ri->ops->read != NULL;
            rd[i].has_write = ri->ops->write != NULL;
        }
        rd[i].read_through = &rtp[k];
        rd[i].n_read_through = ri->n_read_through;
        for (unsigned j = 0; j < ri->n_read_through; j++, k++) {
            plx__range__init(&rt[k]);
            rt[k].offset = ri->read_through[j].offset;
            rt[k].len = ri->read_through[j].len;
            rtp[k] = &rt[k];
        }
        rdp[i] = &rd[i];
    }
    for (unsigned i = 0; i < ops->n_props; i++) {
        plx__prop_decl__init(&pd[i]);
        pd[i].name = (char *)(ops->props[i].name ? ops->props[i].name : "");
        pd[i].has_default = ops->props[i].default_value != NULL;
        pd[i].default_value = (char *)(ops->props[i].default_value ? ops->props[i].default_value : "");
        pd[i].description = (char *)(ops->props[i].description ? ops->props[i].description : "");
        pdp[i] = &pd[i];
    }
    Plx__Declare d = PLX__DECLARE__INIT;
    if (ops->version >= 3 && ops->dt_node)
        d.dt_node = (char *)ops->dt_node;
    d.n_regions = ops->n_regions;
    d.regions = rdp;
    d.n_irqs = ops->n_irqs;
    d.irqs = (char **)ops->irq_names;
    d.n_props = ops->n_props;
    d.props = pdp;
    env.msg_case = PLX__ENVELOPE__MSG_DECLARE;
    env.declare = &d;
    ret = send_env(dev, &env) < 0 ? -EIO : 0;
out:
    free(rd);
    free(rdp);
    free(ar);
    free(rt);
    free(rtp);
    free(pd);
    free(pdp);
    return ret;
}

/* Wait for one envelope from the hub during the handshake. */
static int handshake_recv(plx_dev *dev, Plx__Envelope **out, Plx__Envelope__MsgCase want, int timeout_ms)
{
    Plx__Envelope *env;
    int r;
    do {
        r = plx_wire_recv(&dev->wire, &env, timeout_ms);
    } while (r == -EINTR);
    if (r == -EAGAIN || r == -EPIPE) {
        sdk_log(dev, PLX_LOG_ERR, "the hub did not answer the handshake");
        return -ETIMEDOUT;
    }
    if (r < 0) {
        sdk_log(dev, PLX_LOG_ERR, "bad handshake frame from the hub");
        return -EPROTO;
    }
    if (env->msg_case == PLX__ENVELOPE__MSG_ERROR) {
        sdk_log(dev, PLX_LOG_ERR, "hub refused the device: %s", env->error->text ? env->error->text : "");
        return -ECONNREFUSED;
    }
    if (env->msg_case != want) {
        sdk_log(dev, PLX_LOG_ERR, "expected %s from the hub, got %s", plx_wire_msg_name(want),
                plx_wire_msg_name(env->msg_case));
        return -EPROTO;
    }
    dev->now = env->now_ns;
    *out = env;
    return 0;
}

static int apply_config(plx_dev *dev, const Plx__Config *cfg)
{
    const plx_device_ops *ops = dev->ops;
    if (cfg->name && cfg->name[0] && (!dev->name || strcmp(dev->name, cfg->name) != 0)) {
        free(dev->name);
        dev->name = strdup(cfg->name);
        if (!dev->name)
            return -ENOMEM;
    }
    dev->max_dma_len = cfg->max_dma_len;
    dev->lockstep = cfg->lockstep;
    if (cfg->sandbox && cfg->sandbox->enabled) {
        dev->sandbox = true;
        dev->sandbox_policy = strdup(cfg->sandbox->policy ? cfg->sandbox->policy : "");
        dev->sandbox_allow = calloc(cfg->sandbox->n_allow ? cfg->sandbox->n_allow : 1, sizeof(char *));
        if (!dev->sandbox_policy || !dev->sandbox_allow)
            return -ENOMEM;
        for (size_t i = 0; i < cfg->sandbox->n_allow; i++) {
            if (!(dev->sandbox_allow[i] = strdup(cfg->sandbox->allow[i])))
                return -ENOMEM;
            dev->n_sandbox_allow++;
        }
    }
    for (size_t i = 0; i < cfg->n_props; i++) {
        int k = prop_index(dev, cfg->props[i]->key);
        if (k < 0) {
            send_error(dev, EINVAL, "unknown property '%s' (model %s)", cfg->props[i]->key,
                       ops->model ? ops->model : "?");
            return -EINVAL;
        }
        free(dev->prop_values[k]);
        dev->prop_values[k] = strdup(cfg->props[i]->value);
        if (!dev->prop_values[k])
            return -ENOMEM;
    }

    int passed[PLX_MAX_PASSED_FDS];
    unsigned n_passed = cfg->n_passed_fds;
    if (n_passed) {
        int r = plx_hs_recv_fds(dev->fdsock, passed, n_passed, -1);
        if (r < 0) {
            send_error(dev, -r, "did not receive the %u file descriptors the hub announced: %s", n_passed,
                       strerror(-r));
            return r;
        }
    }

    int ret = 0;
    dev->ram = calloc(cfg->n_ram ? cfg->n_ram : 1, sizeof(*dev->ram));
    if (!dev->ram) {
        ret = -ENOMEM;
        goto out;
    }
    long page = sysconf(_SC_PAGESIZE);
    for (size_t i = 0; i < cfg->n_ram; i++) {
        const Plx__RamGrant *g = cfg->ram[i];
        struct ram_map *m = &dev->ram[dev->n_ram++];
        m->base = g->guest_base;
        m->size = g->size;
        m->readonly = g->readonly;
        bool owned;
        int fd = fd_for(g->fd_kind, g->fd, passed, n_passed, &owned);
        if (fd < 0)
            continue;
        if (g->fd_offset % (uint64_t)page == 0 && g->size > 0) {
            void *p = mmap(NULL, g->size, PROT_READ | (g->readonly ? 0 : PROT_WRITE), MAP_SHARED, fd,
                           (off_t)g->fd_offset);
            if (p != MAP_FAILED) {
                m->ptr = p;
                m->map_len = g->size;
            } else {
                plx_log(dev, PLX_LOG_WARNING, "cannot map RAM block '%s' (%s): DMA into it goes by message",
                        g->name, strerror(errno));
            }
        }
        if (owned)
            close(fd);
    }

    dev->n_shadows = ops->n_regions;
    dev->shadows = calloc(ops->n_regions ? ops->n_regions : 1, sizeof(*dev->shadows));
    if (!dev->shadows) {
        ret = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < cfg->n_shadows; i++) {
        const Plx__ShadowGrant *g = cfg->shadows[i];
        if (g->region >= ops->n_regions || ops->regions[g->region].kind != PLX_REGION_SHADOW ||
            dev->shadows[g->region].map) {
            send_error(dev, EPROTO, "shadow grant for region %u is invalid", g->region);
            ret = -EPROTO;
            goto out;
        }
        bool owned;
        int fd = fd_for(g->fd_kind, g->fd, passed, n_passed, &owned);
        uint64_t rsize = ops->regions[g->region].size;
        if (fd < 0 || g->data_offset < sizeof(struct plx_shadow_header) || g->data_offset > g->map_size ||
            rsize > g->map_size - g->data_offset) {
            send_error(dev, EPROTO, "shadow grant for region '%s' has no usable fd or bad sizes",
                       ops->regions[g->region].name);
            ret = -EPROTO;
            goto out;
        }
        void *p = mmap(NULL, g->map_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        int e = errno;
        if (owned)
            close(fd);
        if (p == MAP_FAILED) {
            send_error(dev, e, "cannot map the shadow page of region '%s': %s", ops->regions[g->region].name,
                       strerror(e));
            ret = -e;
            goto out;
        }
        struct shadow_map *s = &dev->shadows[g->region];
        s->map = p;
        s->map_len = g->map_size;
        s->hdr = p;
        s->data = (uint8_t *)p + g->data_offset;
        s->size = rsize;
    }
    /* A SHADOW region without a page (tcp, or no fd channel) is served by round trips: plx_shadow() is NULL
     * and plx_shadow_store() does nothing, so the read callback must answer every offset. */
out:
    for (unsigned i = 0; i < n_passed; i++)
        close(passed[i]);
    return ret;
}

static int validate_ops(const plx_device_ops *ops)
{
    if (!ops) {
        sdk_log(NULL, PLX_LOG_ERR, "no device ops");
        return -EINVAL;
    }
    if (ops->version < 1 || ops->version > PLX_DEVICE_OPS_VERSION) {
        sdk_log(NULL, PLX_LOG_ERR, "device ops version %u, this SDK speaks 1 to %u", ops->version,
                PLX_DEVICE_OPS_VERSION);
        return -EINVAL;
    }
    if ((ops->n_regions && !ops->regions) || (ops->n_irqs && !ops->irq_names) || (ops->n_props && !ops->props)) {
        sdk_log(NULL, PLX_LOG_ERR, "%s: a declared array is NULL", ops->model ? ops->model : "device");
        return -EINVAL;
    }
    return 0;
}

PLX_EXPORT void *
plx_dev_state(plx_dev *dev, size_t size, bool *restored)
{
    if (restored)
        *restored = false;
    if (!size || size > PLX_STATE_MAX) {
        errno = EINVAL;
        return NULL;
    }
    struct plx_state_header *h = dev->state_hdr;
    if (!h) {
        if (!dev->state_own)
            dev->state_own = calloc(1, PLX_STATE_MAX);
        return dev->state_own;
    }
    uint8_t *data = (uint8_t *)h + PLX_STATE_HEADER_SIZE;
    if (dev->state_claimed && h->size == size)
        return data;
    dev->state_claimed = true;
    if (h->magic == PLX_STATE_MAGIC && h->version == PLX_STATE_VERSION && h->size == size) {
        if (restored)
            *restored = true;
        return data;
    }
    memset(data, 0, PLX_STATE_BLOCK_SIZE - PLX_STATE_HEADER_SIZE);
    h->size = size;
    h->version = PLX_STATE_VERSION;
    __atomic_store_n(&h->magic, PLX_STATE_MAGIC, __ATOMIC_RELEASE);
    return data;
}

static void dev_free(plx_dev *dev)
{
    if (dev->state_hdr)
        munmap(dev->state_hdr, PLX_STATE_BLOCK_SIZE);
    dev->state_hdr = NULL;
    free(dev->state_own);
    dev->state_own = NULL;
    if (dev->prop_values) {
        for (unsigned i = 0; i < dev->ops->n_props; i++)
            free(dev->prop_values[i]);
        free(dev->prop_values);
    }
    for (unsigned i = 0; i < dev->n_ram; i++)
        if (dev->ram[i].ptr)
            munmap(dev->ram[i].ptr, dev->ram[i].map_len);
    free(dev->ram);
    for (unsigned i = 0; i < dev->n_shadows; i++)
        if (dev->shadows[i].map)
            munmap(dev->shadows[i].map, dev->shadows[i].map_len);
    free(dev->shadows);
    for (unsigned i = 0; i < dev->n_timers; i++)
        free(dev->timers[i]);
    free(dev->timers);
    while (dev->pend_head) {
        struct pending *p = dev->pend_head;
        dev->pend_head = p->next;
        free(p);
    }
    free(dev->watches);
    free(dev->items);
    free(dev->batch);
    for (size_t i = 0; i < dev->n_sandbox_allow; i++)
        free(dev->sandbox_allow[i]);
    free(dev->sandbox_allow);
    free(dev->sandbox_policy);
    free(dev->irq_level);
    plx_wire_fini(&dev->wire);
    plx_chan_close(dev->chan);
    if (dev->fdsock >= 0)
        close(dev->fdsock);
    free(dev->name);
    if (dev->epfd >= 0)
        close(dev->epfd);
    if (dev->kickfd >= 0)
        close(dev->kickfd);
    if (dev->heap)
        free(dev);
}

/* The hub's Config says the channel moves to the shared-memory ring: its descriptors are the first message on
 * the fd socket. The ZeroMQ socket is closed; the fd socket stays open: its hang-up says the hub is gone. */
static int move_to_ring(plx_dev *dev)
{
    char err[300];
    plx_chan *ring = plx_hs_ring_accept(dev->fdsock, 30000, err, sizeof(err));
    if (!ring) {
        sdk_log(dev, PLX_LOG_ERR, "%s", err);
        return -EPROTO;
    }
    plx_chan_set_peer_fd(ring, dev->fdsock);
    plx_chan_close(dev->chan);  /* the last ZeroMQ channel: its context and I/O thread end */
    dev->chan = ring;
    plx_wire_set_chan(&dev->wire, ring);    /* the Config being applied stays decoded in the wire's arena */
    dev->ring = true;
    return 0;
}

/* The handshake's channel: a ZeroMQ socket connected to @endpoint. */
static int connect_hub(plx_dev *dev, const char *endpoint)
{
    char err[300];
    dev->chan = plx_chan_zmq_connect(endpoint, RECV_IDLE_MS, err, sizeof(err));
    if (!dev->chan) {
        sdk_log(dev, PLX_LOG_ERR, "%s", err);
        return -EIO;
    }
    plx_wire_init(&dev->wire, dev->chan);
    return 0;
}

/*
 * Everything before the run loop: arguments and environment, connection, handshake, init(), the sandbox,
 * Ready. 0, or -1 with the reason logged (and, once connected, sent to the hub).
 */
static int dev_setup(plx_dev *dev, int argc, char **argv)
{
    const plx_device_ops *ops = dev->ops;
    /* ZeroMQ writes to its sockets without MSG_NOSIGNAL: a hub that went away must be an error the run loop
     * sees, not a SIGPIPE that ends the device. Writes to a closed stdout fail with EPIPE the same way. */
    signal(SIGPIPE, SIG_IGN);

    const char *endpoint = arg_value(argc, argv, "--plexus-endpoint");
    if (!endpoint)
        endpoint = getenv(PLX_ENV_ENDPOINT);
    const char *attach_path = arg_value(argc, argv, "--plexus-attach");
    if (!attach_path)
        attach_path = getenv(PLX_ENV_ATTACH);
    const char *name = arg_value(argc, argv, "--plexus-name");
    if (!name)
        name = getenv(PLX_ENV_DEVICE_NAME);
    if (name && !(dev->name = strdup(name)))
        return -1;
    const char *fdsock = getenv(PLX_ENV_FD_SOCKET);
    if (fdsock && *fdsock) {
        char *end;
        long v = strtol(fdsock, &end, 10);
        if (*end == 0 && v >= 0 && v < INT32_MAX) {
            dev->fdsock = (int)v;
            fcntl(dev->fdsock, F_SETFD, FD_CLOEXEC);
        }
    }
    unsetenv(PLX_ENV_FD_SOCKET);
    const char *statefd = getenv(PLX_ENV_STATE_FD);
    if (statefd && *statefd) {
        char *end;
        long v = strtol(statefd, &end, 10);
        if (*end == 0 && v > 2 && v < INT32_MAX) {
            void *p = mmap(NULL, PLX_STATE_BLOCK_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, (int)v, 0);
            if (p != MAP_FAILED)
                dev->state_hdr = p;
            close((int)v);
        }
    }
    unsetenv(PLX_ENV_STATE_FD);

    dev->prop_values = calloc(ops->n_props ? ops->n_props : 1, sizeof(char *));
    dev->irq_level = malloc(ops->n_irqs ? ops->n_irqs : 1);
    if (!dev->prop_values || !dev->irq_level)
        return -1;
    memset(dev->irq_level, 0, ops->n_irqs ? ops->n_irqs : 1);

    char ep[512];
    if (!endpoint && attach_path) {
        if (attach(dev, attach_path, ep, sizeof(ep)) < 0)
            return -1;
        endpoint = ep;
    }
    if (!endpoint) {
        sdk_log(dev, PLX_LOG_ERR, "no hub to talk to: set " PLX_ENV_ENDPOINT " (or --plexus-endpoint=), or "
                PLX_ENV_ATTACH " and " PLX_ENV_DEVICE_NAME);
        return -1;
    }

    if (connect_hub(dev, endpoint) < 0)
        return -1;

    if (send_hello_declare(dev) < 0)
        return -1;
    Plx__Envelope *env;
    if (handshake_recv(dev, &env, PLX__ENVELOPE__MSG_HELLO, 30000) < 0)
        return -1;
    uint32_t minor;
    char why[200];
    if (plx_hs_hello_check(env->hello, &minor, why, sizeof(why)) < 0) {
        sdk_log(dev, PLX_LOG_ERR, "the hub's %s", why);
        return -1;
    }
    plx_wire_release(&dev->wire);
    if (handshake_recv(dev, &env, PLX__ENVELOPE__MSG_CONFIG, 30000) < 0)
        return -1;
    dev->connected = true;
    if (env->config->ring && move_to_ring(dev) < 0) {
        plx_wire_release(&dev->wire);
        return -1;
    }
    if (apply_config(dev, env->config) < 0) {
        plx_wire_release(&dev->wire);
        return -1;
    }
    plx_wire_release(&dev->wire);
    if (dev->fdsock >= 0 && !dev->sandbox && !dev->ring) {
        close(dev->fdsock);
        dev->fdsock = -1;
    }

    if (ops->init) {
        int r = ops->init(dev, &dev->opaque);
        if (r < 0) {
            send_error(dev, -r, "init failed: %s", strerror(-r));
            return -1;
        }
    }
    dev->initialized = true;
    if (dev->sandbox) {
        /* The fd socket stays open: the sandbox reports a denied call on it. */
        char why[256];
        if (plx_sandbox_apply(dev->sandbox_policy, dev->sandbox_allow, dev->n_sandbox_allow, dev->fdsock, why,
                              sizeof(why)) < 0) {
            send_error(dev, EPERM, "%s", why);
            return -1;
        }
    }
    Plx__Ready rdy = PLX__READY__INIT;
    Plx__Envelope renv = PLX__ENVELOPE__INIT;
    renv.msg_case = PLX__ENVELOPE__MSG_READY;
    renv.ready = &rdy;
    if (send_env(dev, &renv) < 0)
        return -1;

    return 0;
}

/* fini(), Goodbye (if the hub is still there), free. */
static void dev_finish(plx_dev *dev, int status)
{
    if (dev->initialized && dev->ops->fini)
        dev->ops->fini(dev->opaque);
    dev->initialized = false;
    if (dev->connected && dev->chan) {
        Plx__Goodbye gb = PLX__GOODBYE__INIT;
        gb.status = status;
        Plx__Envelope genv = PLX__ENVELOPE__INIT;
        genv.msg_case = PLX__ENVELOPE__MSG_GOODBYE;
        genv.goodbye = &gb;
        plx_wire_send(&dev->wire, &genv, PLX_CHAN_DONTWAIT);
    }
    dev_free(dev);
}

PLX_EXPORT int
plx_dev_main(const plx_device_ops *ops, int argc, char **argv)
{
    if (!log_handler)
        plx_set_log_handler(stderr_handler, NULL);     /* a program's default: its standard error */
    if (validate_ops(ops) < 0)
        return 2;
    plx_dev devs = { .ops = ops, .fdsock = -1, .epfd = -1, .kickfd = -1, .next_event = PLX_NEVER }, *dev = &devs;
    int status = 1;
    if (dev_setup(dev, argc, argv) == 0) {
        int r = run_loop(dev);
        status = r < 0 ? 1 : dev->status;
        if (r < 0) {
            sdk_log(dev, PLX_LOG_ERR, "lost the connection to the hub");
            dev->connected = false;     /* nobody to say Goodbye to */
        }
    }
    dev_finish(dev, status);
    return status;
}

/* ---- a run loop owned by the caller ---------------------------------------------------------------------- */

static void arm(plx_dev *dev);

static int watch_add(plx_dev *dev, int fd)
{
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
    if (epoll_ctl(dev->epfd, EPOLL_CTL_ADD, fd, &ev) == 0 || errno == EEXIST)
        return 0;
    return -errno;
}

PLX_EXPORT plx_dev *
plx_dev_open(const plx_device_ops *ops, int argc, char **argv)
{
    if (validate_ops(ops) < 0)
        return NULL;
    plx_dev *dev = calloc(1, sizeof(*dev));
    if (!dev)
        return NULL;
    *dev = (plx_dev){ .ops = ops, .fdsock = -1, .epfd = -1, .kickfd = -1, .next_event = PLX_NEVER, .heap = true };
    if (dev_setup(dev, argc, argv) < 0)
        goto fail;
    dev->epfd = epoll_create1(EPOLL_CLOEXEC);
    int chan_fd = plx_chan_poll_fd(dev->chan), peer_fd = plx_chan_peer_poll_fd(dev->chan);
    if (dev->epfd < 0 || chan_fd < 0 || watch_add(dev, chan_fd) < 0 || (peer_fd >= 0 && watch_add(dev, peer_fd) < 0)) {
        send_error(dev, EIO, "cannot set up the poll descriptor: %s", strerror(errno));
        goto fail;
    }
    dev->kickfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (dev->kickfd < 0 || watch_add(dev, dev->kickfd) < 0)
        goto fail;
    for (unsigned i = 0; i < dev->n_watches; i++)
        if (watch_add(dev, dev->watches[i].fd) < 0)
            goto fail;
    arm(dev);
    return dev;
fail:
    dev_finish(dev, 1);
    return NULL;
}

PLX_EXPORT int
plx_dev_get_poll_fd(plx_dev *dev)
{
    return dev->epfd;
}

/* Make the poll descriptor readable: there is work (a frame already in the ring, frames kept during DMA). */
static void kick(plx_dev *dev)
{
    uint64_t one = 1;
    if (write(dev->kickfd, &one, sizeof(one)) < 0) {
        /* the counter is already non-zero: readable anyway */
    }
}

/* Before the caller waits: the channel is armed (a ring side says it sleeps, so the next frame rings its bell),
 * and if work is already there the descriptor is made readable at once. */
static void arm(plx_dev *dev)
{
    if (plx_chan_poll_prepare(dev->chan) || dev->pend_head)
        kick(dev);
}

PLX_EXPORT int
plx_dev_dispatch(plx_dev *dev, int timeout_ms)
{
    struct epoll_event evs[16];
    int chan_fd = plx_chan_poll_fd(dev->chan), peer_fd = plx_chan_peer_poll_fd(dev->chan);
    int n = epoll_wait(dev->epfd, evs, 16, timeout_ms);
    if (n < 0 && errno != EINTR)
        return -EIO;
    short chan_rev = 0;
    bool peer = false;
    for (int i = 0; i < n; i++) {
        int fd = evs[i].data.fd;
        if (fd == chan_fd) {
            chan_rev = POLLIN;
        } else if (fd == dev->kickfd) {
            uint64_t v;
            if (read(dev->kickfd, &v, sizeof(v)) < 0) {
                /* taken already */
            }
        } else if (fd == peer_fd) {
            peer = true;
        }
    }
    plx_chan_poll_done(dev->chan, chan_rev);       /* the arm() of the previous call, or of plx_dev_open() */
    /* Whatever the descriptor said, take what the channel holds: a receive that finds nothing is cheap. */
    if (serve_socket(dev) < 0) {
        dev->connected = false;
        return -ECONNRESET;
    }
    /* Watches may change from inside callbacks: look each fd up again before calling it. */
    for (int i = 0; i < n && !dev->stop; i++) {
        int fd = evs[i].data.fd;
        if (fd == chan_fd || fd == peer_fd || fd == dev->kickfd)
            continue;
        for (unsigned j = 0; j < dev->n_watches; j++) {
            if (dev->watches[j].fd == fd) {
                dev->watches[j].cb(dev->watches[j].opaque, fd);
                break;
            }
        }
    }
    if (dev->stop)
        return 1;
    if ((peer || n <= 0) && hub_gone(dev)) {
        dev->connected = false;
        return -ECONNRESET;
    }
    arm(dev);
    return 0;
}

PLX_EXPORT int
plx_dev_close(plx_dev *dev)
{
    if (!dev)
        return 0;
    int status = dev->stop ? dev->status : 0;
    dev_finish(dev, status);
    return status;
}
