/* The device's API (plexus/sdk.h): logging, properties, DMA, IRQs, virtual time, shadow pages, fd watches, the
 * state block. */
#define _GNU_SOURCE
#include "dev.h"

#include <ctype.h>
#include <stdatomic.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- small helpers ---------------------------------------------------------------------------------------- */

const char *sdk_dev_label(plx_dev *dev)
{
    if (dev->name && dev->name[0])
        return dev->name;
    return dev->ops && dev->ops->model ? dev->ops->model : "device";
}

int sdk_send_env(plx_dev *dev, Plx__Envelope *env)
{
    if (dev->n_written)
        sdk_dma_flush(dev);     /* what the device wrote is known to the hub before it hears anything else */
    return plx_wire_send(&dev->wire, env, 0);
}

void sdk_dma_flush(plx_dev *dev)
{
    unsigned n = dev->n_written;
    dev->n_written = 0;
    if (!n || !dev->connected)
        return;
    Plx__DmaRange r[PLX_MAX_DMA_RANGES], *rp[PLX_MAX_DMA_RANGES];
    for (unsigned i = 0; i < n; i++) {
        plx__dma_range__init(&r[i]);
        r[i].addr = dev->written[i].addr;
        r[i].len = dev->written[i].len;
        rp[i] = &r[i];
    }
    Plx__DmaWritten w = PLX__DMA_WRITTEN__INIT;
    w.n_ranges = n;
    w.ranges = rp;
    Plx__Envelope env = PLX__ENVELOPE__INIT;
    env.msg_case = PLX__ENVELOPE__MSG_DMA_WRITTEN;
    env.dma_written = &w;
    plx_wire_send(&dev->wire, &env, 0);
}

/* Guest RAM [@addr, +@len) was written through the mapping: note it (merged with the last range it touches). */
static void note_written(plx_dev *dev, uint64_t addr, uint64_t len)
{
    if (!len || !(dev->hub_caps & PLX_CAP_DMA_WRITTEN))
        return;
    if (dev->n_written) {
        uint64_t *a = &dev->written[dev->n_written - 1].addr, *l = &dev->written[dev->n_written - 1].len;
        if (addr <= *a + *l && *a <= addr + len) {
            uint64_t end = addr + len > *a + *l ? addr + len : *a + *l;
            *a = addr < *a ? addr : *a;
            *l = end - *a;
            return;
        }
    }
    if (dev->n_written == PLX_MAX_DMA_RANGES)
        sdk_dma_flush(dev);
    dev->written[dev->n_written].addr = addr;
    dev->written[dev->n_written++].len = len;
}

PLX_EXPORT void
plx_dma_written(plx_dev *dev, uint64_t addr, size_t len)
{
    note_written(dev, addr, len);
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

bool sdk_log_handler_set(void)
{
    return log_handler != NULL;
}

void sdk_log_to_stderr(void *opaque, int level, const char *device, const char *text)
{
    (void)opaque;
    (void)level;
    fprintf(stderr, "%s: %s\n", device, text);
}

void sdk_local_log(plx_dev *dev, int level, const char *text)
{
    if (log_handler)
        log_handler(log_handler_opaque, level, dev ? sdk_dev_label(dev) : "plexus-sdk", text);
}

/* A record of the SDK itself that stays in this process (about the connection, or before it is up). */
void sdk_log(plx_dev *dev, int level, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    sdk_local_log(dev, level, buf);
}

static void vlog_record(plx_dev *dev, int level, const char *fmt, va_list ap)
{
    char buf[1024];
    vsnprintf(buf, sizeof(buf), fmt, ap);
    if (!dev || !dev->connected) {
        sdk_local_log(dev, level, buf);
        return;
    }
    Plx__Log lg = PLX__LOG__INIT;
    lg.level = (uint32_t)level;
    lg.text = buf;
    Plx__Envelope env = PLX__ENVELOPE__INIT;
    env.msg_case = PLX__ENVELOPE__MSG_LOG;
    env.log = &lg;
    if (sdk_send_env(dev, &env) < 0)
        sdk_local_log(dev, level, buf);
}

PLX_EXPORT void
plx_log(plx_dev *dev, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog_record(dev, level, fmt, ap);
    va_end(ap);
}

void sdk_send_error(plx_dev *dev, int code, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    sdk_local_log(dev, PLX_LOG_ERR, buf);
    if (!dev->chan)
        return;
    Plx__Error er = PLX__ERROR__INIT;
    er.code = (uint32_t)code;
    er.text = buf;
    Plx__Envelope env = PLX__ENVELOPE__INIT;
    env.msg_case = PLX__ENVELOPE__MSG_ERROR;
    env.error = &er;
    sdk_send_env(dev, &env);
}

/* ---- properties ------------------------------------------------------------------------------------------ */

int sdk_prop_index(plx_dev *dev, const char *name)
{
    for (unsigned i = 0; i < dev->ops->n_props; i++)
        if (dev->ops->props[i].name && strcmp(dev->ops->props[i].name, name) == 0)
            return (int)i;
    return -1;
}

PLX_EXPORT const char *
plx_dev_prop(plx_dev *dev, const char *name)
{
    int i = name ? sdk_prop_index(dev, name) : -1;
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
                name && sdk_prop_index(dev, name) >= 0 ? "not set" : "not declared");
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

/* ---- DMA ------------------------------------------------------------------------------------- */


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
            if (sdk_hub_gone(dev))
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
        if (sdk_send_env(dev, &env) < 0)
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
plx_dma_window_at(plx_dev *dev, uint64_t addr, plx_dma_window *out)
{
    struct ram_map *r = ram_lookup(dev, addr, 1);
    if (!r)
        return -ENOENT;
    *out = (plx_dma_window){ .base = r->base, .size = r->size, .ptr = r->ptr, .readonly = r->readonly };
    return 0;
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
        note_written(dev, addr, len);
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
    sdk_send_env(dev, &env);
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

_Static_assert((int)PLX_ACCESS_OK == (int)PLX__MEM_TX__MEMTX_OK &&
               (int)PLX_ACCESS_ERROR == (int)PLX__MEM_TX__MEMTX_ERROR &&
               (int)PLX_ACCESS_DECODE_ERROR == (int)PLX__MEM_TX__MEMTX_DECODE_ERROR, "access results are MemTx values");

PLX_EXPORT void
plx_set_access_result(plx_dev *dev, enum plx_access_result result)
{
    if (result == PLX_ACCESS_OK || result == PLX_ACCESS_ERROR || result == PLX_ACCESS_DECODE_ERROR)
        dev->access_result = result;
}

/* TimeGrant: advance the device's own time to @until, then say so. */
void sdk_time_grant(plx_dev *dev, uint64_t until)
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
    sdk_send_env(dev, &env);
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
    sdk_send_env(dev, &env);
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
    sdk_send_env(t->dev, &env);
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

void sdk_timer_fire(plx_dev *dev, const Plx__TimerFire *f)
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

/* ---- fd watches ------------------------------------------------------------------------------------------ */


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
        int r = sdk_watch_add(dev, fd);
        if (r < 0)
            return r;
    }
    dev->watches[dev->n_watches++] = (struct watch){ .fd = fd, .cb = cb, .opaque = opaque };
    return 0;
}

PLX_EXPORT int
plx_dev_file(plx_dev *dev, const char *name, bool *readonly)
{
    for (unsigned i = 0; name && i < dev->n_files; i++) {
        if (strcmp(dev->files[i].name, name) == 0) {
            dev->files[i].taken = true;
            if (readonly)
                *readonly = dev->files[i].readonly;
            return dev->files[i].fd;
        }
    }
    return -ENOENT;
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


/* ---- the machine's console ------------------------------------------------------------------------------- */

PLX_EXPORT bool
plx_console_attached(plx_dev *dev)
{
    return dev->console;
}

static int console_send(plx_dev *dev, const void *buf, size_t len, uint32_t room)
{
    if (!dev->console)
        return -ENOTSUP;
    Plx__ConsoleOutput co = PLX__CONSOLE_OUTPUT__INIT;
    co.data.data = (uint8_t *)buf;
    co.data.len = len;
    co.input_room = room;
    Plx__Envelope env = PLX__ENVELOPE__INIT;
    env.msg_case = PLX__ENVELOPE__MSG_CONSOLE_OUTPUT;
    env.console_output = &co;
    return sdk_send_env(dev, &env) < 0 ? -EIO : 0;
}

PLX_EXPORT int
plx_console_write(plx_dev *dev, const void *buf, size_t len)
{
    int r = 0;
    /* In pieces well below the frame limit. */
    for (size_t off = 0; off < len && r == 0; off += 65536)
        r = console_send(dev, (const uint8_t *)buf + off, len - off < 65536 ? len - off : 65536, 0);
    return r;
}

PLX_EXPORT void
plx_console_set_input(plx_dev *dev, void (*cb)(void *opaque, const uint8_t *buf, size_t len), void *opaque)
{
    dev->console_cb = cb;
    dev->console_opaque = opaque;
}

PLX_EXPORT int
plx_console_grant(plx_dev *dev, size_t bytes)
{
    if (!bytes)
        return dev->console ? 0 : -ENOTSUP;
    return console_send(dev, NULL, 0, bytes > UINT32_MAX ? UINT32_MAX : (uint32_t)bytes);
}
