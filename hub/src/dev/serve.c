/*
 * What a device sends: IRQ changes, DMA by message, timers, log records, Goodbye; served from
 * hub_devmgr_poll() and while the hub waits for one of its answers (also here).
 */
#define _GNU_SOURCE
#include "dev/serve.h"

#include <ctype.h>
#include <poll.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dev/link.h"
#include "dev/output.h"

/* ---- timers ---------------------------------------------------------------------------------------------- */

static void timer_cb(void *opaque)
{
    hub_timer *t = opaque;
    hub_device *d = t->d;
    if (d->failed)
        return;
    Plx__TimerFire f = PLX__TIMER_FIRE__INIT;
    f.id = t->id;
    f.deadline_ns = vclock_now(d->m->env.clock);   /* inside a vtimer callback: the deadline */
    t->fired = true;
    t->fired_at = f.deadline_ns;
    f.generation = t->generation;
    /* Shadow reads after this fire must see its effects, as they see posted writes. */
    f.seq = d->inc.last_posted = ++d->inc.seq;
    Plx__Envelope env = PLX__ENVELOPE__INIT;
    env.msg_case = PLX__ENVELOPE__MSG_TIMER_FIRE;
    env.timer_fire = &f;
    uint64_t t0 = hub_dev_now_ns();
    if (hub_dev_send(d, &env) < 0)
        return;
    /*
     * Wait until the callback ran, so that what it does (IRQ changes, DMA, new timers) happens at this virtual
     * time and not whenever the hub next polls: device timing stays a function of virtual time, lockstep or
     * not (hub_dev::timers_run_on_virtual_time, and the RTL accelerator's completion interrupt, depend on it).
     * Not from inside another wait on the same device (it could not answer). If the device dies meanwhile the
     * wait ends at once (its pidfd); it is restarted from the poll path, never from here.
     */
    bool waited = (d->inc.capabilities & PLX_CAP_TIMER_DONE) && !d->inc.in_wait && !d->dma_depth;
    if (waited)
        hub_dev_wait_timer_done(d, f.seq);
    hub_dev_observe(d->m, timer, d->name, t->id, waited ? hub_dev_now_ns() - t0 : 0, f.deadline_ns);
}

static void timer_arm(hub_device *d, const Plx__TimerArm *a)
{
    if (a->id >= PLX_MAX_TIMERS) {
        hub_dev_complain(d, "TimerArm with id %u (limit %u) dropped", a->id, PLX_MAX_TIMERS);
        return;
    }
    if (a->id >= d->inc.n_timers) {
        unsigned n = a->id + 8 < PLX_MAX_TIMERS ? a->id + 8 : PLX_MAX_TIMERS;
        hub_timer **t = realloc(d->inc.timers, sizeof(*t) * n);
        if (!t)
            return;
        memset(t + d->inc.n_timers, 0, sizeof(*t) * (n - d->inc.n_timers));
        d->inc.timers = t;
        d->inc.n_timers = n;
    }
    hub_timer *t = d->inc.timers[a->id];
    if (!t) {
        t = calloc(1, sizeof(*t));
        if (!t)
            return;
        t->d = d;
        t->id = a->id;
        vtimer_init(&t->vt, d->m->env.clock, timer_cb, t);
        d->inc.timers[a->id] = t;
    }
    t->generation = a->generation;
    if (t->fired && a->deadline_ns <= t->fired_at && !d->inc.rearm_warned) {
        d->inc.rearm_warned = true;
        hub_dev_log(d->m, d->name, PLX_LOG_WARNING, "timer %u armed again for %" PRIu64 " ns, when it last fired (or "
                    "before): it fires at most once per advance of virtual time, 1 ns later", a->id, a->deadline_ns);
    }
    vtimer_mod(&t->vt, a->deadline_ns);
}

static void timer_cancel(hub_device *d, const Plx__TimerCancel *c)
{
    if (c->id < d->inc.n_timers && d->inc.timers[c->id])
        vtimer_del(&d->inc.timers[c->id]->vt);
}

/* ---- messages a device sends on its own ------------------------------------------------------------------ */

static void serve_irq(hub_device *d, const Plx__Irq *irq)
{
    if (irq->line >= d->n_irqs) {
        hub_dev_complain(d, "Irq on line %u, but the device declared %u lines: dropped", irq->line, d->n_irqs);
        return;
    }
    if (irq->op != PLX__IRQ_OP__IRQ_SET && irq->op != PLX__IRQ_OP__IRQ_PULSE) {
        hub_dev_complain(d, "Irq with unknown op %d dropped", (int)irq->op);
        return;
    }
    unsigned hub_irq = d->irq_map[irq->line];
    if (hub_irq == HUB_IRQ_UNMAPPED) {
        if (!d->irq_unmapped_logged) {
            d->irq_unmapped_logged = true;
            hub_dev_log(d->m, d->name, PLX_LOG_WARNING, "IRQ line %u (%s) is not connected in the machine: ignored",
                        irq->line,
                        d->irq_names[irq->line]);
        }
        return;
    }
    d->stats.irq_events++;
    if (irq->at_ns)
        hub_dev_event(d, "irq %u %s at %" PRIu64, irq->line,
                      irq->op == PLX__IRQ_OP__IRQ_PULSE ? "pulse" : irq->level ? "1" : "0", irq->at_ns);
    else
        hub_dev_event(d, "irq %u %s", irq->line, irq->op == PLX__IRQ_OP__IRQ_PULSE ? "pulse" : irq->level ? "1" : "0");
    if (!d->m->env.set_irq)
        return;
    if (irq->op == PLX__IRQ_OP__IRQ_PULSE) {
        d->irq_level[irq->line] = 0;
        d->m->env.set_irq(d->m->env.irq_opaque, hub_irq, 1);
        d->m->env.set_irq(d->m->env.irq_opaque, hub_irq, 0);
    } else {
        d->irq_level[irq->line] = irq->level ? 1 : 0;
        d->m->env.set_irq(d->m->env.irq_opaque, hub_irq, irq->level ? 1 : 0);
    }
}

/* Whether [addr, addr+len) lies inside one RAM block granted to @d: its DMA windows. */
static bool in_dma_window(const hub_device *d, uint64_t addr, uint64_t len)
{
    const hub_devmgr *m = d->m;
    for (size_t i = 0; i < m->env.n_ram; i++) {
        const hub_ram_block *b = &m->env.ram[i];
        if ((!d->dma_window || d->dma_window[i]) && addr >= b->base && addr - b->base <= b->size &&
            len <= b->size - (addr - b->base))
            return true;
    }
    return false;
}

/* Guest RAM a device wrote: the memory API's dirty log, then the machine (the CPU's translated code). */
static void ram_written(hub_device *d, uint64_t addr, uint64_t len)
{
    hub_devmgr *m = d->m;
    MemoryRegionSection sec = memory_region_find(m->env.sysmem, addr, len);
    if (sec.mr) {
        if (memory_region_is_ram(sec.mr))
            memory_region_set_dirty(sec.mr, sec.offset_within_region, len);
        memory_region_unref(sec.mr);
    }
    if (m->env.ram_written)
        m->env.ram_written(m->env.ram_written_opaque, addr, len);
}

/* DmaWritten: ranges inside the device's RAM grants are acted on; the others are the device's error, logged. */
static void serve_dma_written(hub_device *d, const Plx__DmaWritten *w)
{
    if (w->n_ranges > PLX_MAX_DMA_RANGES) {
        hub_dev_complain(d, "DmaWritten with %zu ranges (at most %u): dropped", w->n_ranges, PLX_MAX_DMA_RANGES);
        return;
    }
    for (size_t i = 0; i < w->n_ranges; i++) {
        uint64_t addr = w->ranges[i]->addr, len = w->ranges[i]->len;
        if (!len || addr + len < addr || !in_dma_window(d, addr, len)) {
            d->stats.dma_refused++;
            if (d->stats.dma_refused <= 8)
                hub_dev_log(d->m, d->name, PLX_LOG_WARNING, "reported a write to 0x%" PRIx64 "+0x%" PRIx64
                            " outside its RAM grants: ignored", addr, len);
            continue;
        }
        d->stats.dma_written++;
        hub_dev_event(d, "dma written 0x%" PRIx64 "+0x%" PRIx64, addr, len);
        ram_written(d, addr, len);
    }
}

static void serve_dma(hub_device *d, const Plx__DmaRequest *rq)
{
    hub_devmgr *m = d->m;
    Plx__DmaReply rp = PLX__DMA_REPLY__INIT;
    rp.seq = rq->seq;
    rp.result = PLX__MEM_TX__MEMTX_ERROR;
    uint64_t t0 = 0;        /* when the access began (0: refused before it) */
    if (rq->len > PLX_MAX_DMA || (rq->write && rq->data.len != rq->len) ||
        (!rq->write && rq->data.len != 0) || rq->addr + rq->len < rq->addr) {
        hub_dev_complain(d, "malformed DmaRequest (addr 0x%" PRIx64 ", len %u, %zu data bytes) refused",
                         rq->addr, rq->len, rq->data.len);
    } else if (!m->env.as) {
        hub_dev_complain(d, "DMA by message without an address space: refused");
    } else if (!in_dma_window(d, rq->addr, rq->len)) {
        d->stats.dma_refused++;
        if (d->stats.dma_refused <= 8)
            hub_dev_log(m, d->name, PLX_LOG_WARNING, "DMA %s 0x%" PRIx64 "+0x%x outside its RAM grants: refused%s",
                        rq->write ? "write to" : "read from", rq->addr, rq->len,
                        d->stats.dma_refused == 8 ? " (further refusals are counted, not logged)" : "");
    } else {
        uint64_t addr = rq->addr;
        uint32_t len = rq->len;
        bool write = rq->write;
        MemTxResult res;
        t0 = hub_dev_now_ns();
        d->dma_depth++;
        m->nest++;
        if (write) {
            res = address_space_write(m->env.as, addr, MEMTXATTRS_UNSPECIFIED, rq->data.data, (int)len);
            if (res == MEMTX_OK && m->env.ram_written)
                m->env.ram_written(m->env.ram_written_opaque, addr, len);      /* the write marked the dirty log */
        } else {
            /* Per device: serving this read may serve another device's DMA (nested accesses). */
            if (len > d->dma_cap) {
                uint8_t *b = realloc(d->dma_buf, len);
                if (!b) {
                    d->dma_depth--;
                    m->nest--;
                    goto reply;
                }
                d->dma_buf = b;
                d->dma_cap = len;
            }
            res = address_space_read(m->env.as, addr, MEMTXATTRS_UNSPECIFIED, d->dma_buf, (int)len);
        }
        d->dma_depth--;
        m->nest--;
        d->stats.dma_messages++;
        if (res == MEMTX_OK) {
            rp.result = PLX__MEM_TX__MEMTX_OK;
            if (!write) {
                rp.data.data = d->dma_buf;
                rp.data.len = len;
            }
        } else {
            rp.result = (res & MEMTX_DECODE_ERROR) ? PLX__MEM_TX__MEMTX_DECODE_ERROR : PLX__MEM_TX__MEMTX_ERROR;
        }
    }
reply:;
    hub_dev_event(d, "dma %s 0x%" PRIx64 "+0x%x%s", rq->write ? "write" : "read", rq->addr, rq->len,
                  rp.result == PLX__MEM_TX__MEMTX_OK ? "" : " refused");
    hub_dev_observe(m, dma, d->name, rq->addr, rq->len, rq->write, rp.result == PLX__MEM_TX__MEMTX_OK,
                    t0 ? hub_dev_now_ns() - t0 : 0, vclock_now(m->env.clock));
    Plx__Envelope env = PLX__ENVELOPE__INIT;
    env.msg_case = PLX__ENVELOPE__MSG_DMA_REPLY;
    env.dma_reply = &rp;
    hub_dev_send(d, &env);
}

void
hub_dev_serve_log(hub_device *d, const Plx__Log *lg)
{
    const char *s = lg->text ? lg->text : "";
    hub_dev_output_text(d, lg->level > PLX_LOG_DEBUG ? PLX_LOG_DEBUG : (int)lg->level, s, strlen(s));
}

/* The guest's output through the console device, and room for more keyboard input. */
static void serve_console(hub_device *d, const Plx__ConsoleOutput *co)
{
    if (!d->console) {
        if (!d->inc.console_warned)
            hub_dev_complain(d, "ConsoleOutput, but the device is not the console: dropped");
        d->inc.console_warned = true;
        return;
    }
    if (co->data.len && d->m->env.console_output)
        d->m->env.console_output(d->m->env.console_opaque, co->data.data, co->data.len);
    uint64_t room = (uint64_t)d->inc.console_room + co->input_room;
    d->inc.console_room = room > HUB_CONSOLE_ROOM_MAX ? HUB_CONSOLE_ROOM_MAX : (uint32_t)room;
}

/*
 * Act on one message the device sent on its own (not a reply being waited for). Releases the envelope.
 * Called from hub_devmgr_poll() and from inside synchronous waits.
 */
void
hub_dev_serve(hub_device *d, Plx__Envelope *env)
{
    switch (env->msg_case) {
    case PLX__ENVELOPE__MSG_IRQ:
        serve_irq(d, env->irq);
        break;
    case PLX__ENVELOPE__MSG_DMA: {
        /* The reply reuses the wire's buffers; the request stays valid until released below. */
        serve_dma(d, env->dma);
        break;
    }
    case PLX__ENVELOPE__MSG_DMA_WRITTEN:
        serve_dma_written(d, env->dma_written);
        break;
    case PLX__ENVELOPE__MSG_TIMER_ARM:
        timer_arm(d, env->timer_arm);
        break;
    case PLX__ENVELOPE__MSG_TIMER_CANCEL:
        timer_cancel(d, env->timer_cancel);
        break;
    case PLX__ENVELOPE__MSG_LOG:
        hub_dev_serve_log(d, env->log);
        break;
    case PLX__ENVELOPE__MSG_CONSOLE_OUTPUT:
        serve_console(d, env->console_output);
        break;
    case PLX__ENVELOPE__MSG_GOODBYE:
        d->inc.said_goodbye = true;
        if (!d->m->shutting_down)
            hub_dev_fail(d, "device left (Goodbye, status %d)", env->goodbye->status);
        break;
    case PLX__ENVELOPE__MSG_ERROR: {
        /* the device's words: cleaned and limited like its Log lines */
        char text[160];
        const char *t = env->error->text ? env->error->text : "";
        int n = snprintf(text, sizeof(text), "device reports an error: %.120s", t);
        hub_dev_output_text(d, PLX_LOG_ERR, text, n > 0 && (size_t)n < sizeof(text) ? (size_t)n : sizeof(text) - 1);
        break;
    }
    case PLX__ENVELOPE__MSG_REPLY:
        hub_dev_complain(d, "MmioReply with seq %" PRIu64 " that no request is waiting for: dropped",
                         env->reply->seq);
        break;
    case PLX__ENVELOPE__MSG_TIMER_DONE:
        break;      /* for a fire the hub did not wait for (sent from inside another wait) */
    case PLX__ENVELOPE__MSG_TIME_REACHED:
        hub_dev_complain(d, "TimeReached for %" PRIu64 " that no grant is waiting for: dropped",
                         env->time_reached->now_ns);
        break;
    default:
        hub_dev_complain(d, "unexpected %s message after the handshake: dropped", plx_wire_msg_name(env->msg_case));
        break;
    }
    plx_wire_release(&d->inc.wire);
}

void
hub_dev_last_words(hub_device *d)
{
    if (!d->inc.chan)
        return;
    /* ZeroMQ may still be carrying what the process sent last: a moment for it (the ring holds it already). */
    if (!d->inc.ring)
        hub_dev_wait(d, 20);
    for (unsigned n = 0; n < 4096; n++) {
        Plx__Envelope *env;
        int r = plx_wire_recv(&d->inc.wire, &env, 0);
        if (r == -EBADMSG)
            continue;
        if (r < 0)
            break;
        if (env->msg_case == PLX__ENVELOPE__MSG_LOG)
            hub_dev_serve_log(d, env->log);
        else if (env->msg_case == PLX__ENVELOPE__MSG_CONSOLE_OUTPUT)
            serve_console(d, env->console_output);
        plx_wire_release(&d->inc.wire);
    }
}

/* Serve what the device has queued, without blocking, up to a bound (a flooding device must not starve the
 * hub). Returns the number of messages served. */
int
hub_dev_drain(hub_device *d)
{
    int n = 0;
    while ((!d->failed || d->m->shutting_down) && d->inc.chan && n < 4096) {
        Plx__Envelope *env;
        int r = plx_wire_recv(&d->inc.wire, &env, 0);
        if (r == -EAGAIN)
            break;
        if (r == -EINTR)
            continue;
        if (r == -EBADMSG) {
            hub_dev_complain(d, "undecodable frame dropped");
            n++;
            continue;
        }
        if (r < 0) {
            if (r == -EPROTO && !d->failed)
                hub_dev_fail(d, "%s", hub_dev_chan_strerror(d, r));
            break;
        }
        hub_dev_serve(d, env);
        n++;
    }
    return n;
}


/* ---- waiting for an answer ---------------------------------------------------------------------------------- */

/* True (and the device failed) once the deadline of a wait passed. */
static bool wait_expired(hub_device *d, uint64_t *deadline, const char *what)
{
    uint64_t now = hub_dev_now_ms();
    if (!*deadline)
        *deadline = now + d->timeout_ms;
    if (now < *deadline)
        return false;
    hub_dev_fail(d, "no answer to %s within %u ms", what, d->timeout_ms);
    return true;
}

/* The device answered request @seq: it handled everything sent before it, in order, and what it sent meanwhile
 * (IRQ changes) came before the answer and has been served. */
static void answered(hub_device *d, uint64_t seq)
{
    if (seq > d->inc.answered)
        d->inc.answered = seq;
}

/* What a wait is for: an MmioReply, a TimerDone, or (lockstep) a TimeReached, each matched by @key. */
enum wait_kind { WAIT_REPLY, WAIT_TIMER_DONE, WAIT_REACHED };

/* Wait for the answer @kind/@key, serving everything else the device sends meanwhile. */
static int wait_for(hub_device *d, enum wait_kind kind, uint64_t key, hub_dev_reply *out, const char *what)
{
    uint64_t deadline = hub_dev_now_ms() + d->timeout_ms;
    unsigned other = 0;
    for (;;) {
        /* A device flooding other messages must not keep the hub here past the timeout. */
        if (++other % 64 == 0 && wait_expired(d, &deadline, what))
            return -ETIMEDOUT;
        /* Block in the receive itself (the socket's receive timeout is HUB_RECV_SLICE_MS): cheaper than a
         * poll followed by a receive. Between slices: the deadline and the process. */
        Plx__Envelope *env;
        int r = plx_wire_recv(&d->inc.wire, &env, HUB_RECV_SLICE_MS);
        if (r == 0) {
            if (kind == WAIT_TIMER_DONE && env->msg_case == PLX__ENVELOPE__MSG_TIMER_DONE &&
                env->timer_done->seq == key) {
                plx_wire_release(&d->inc.wire);
                answered(d, key);
                return 0;
            }
            if (kind == WAIT_REACHED && env->msg_case == PLX__ENVELOPE__MSG_TIME_REACHED &&
                env->time_reached->now_ns == key) {
                out->next_event = env->time_reached->next_event_ns;
                plx_wire_release(&d->inc.wire);
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
                plx_wire_release(&d->inc.wire);
                answered(d, key);
                return 0;
            }
            hub_dev_serve(d, env);
            if (d->failed)
                return -EIO;
            continue;
        }
        if (r == -EBADMSG) {
            hub_dev_complain(d, "undecodable frame dropped");
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
        if (d->inc.pidfd >= 0) {
            struct pollfd p = { .fd = d->inc.pidfd, .events = POLLIN };
            /* Frames written just before the process died may still be on their way. */
            if (poll(&p, 1, 0) > 0 && hub_dev_wait(d, 20) != 1 && hub_dev_reap(d))
                return -ECHILD;
        } else if (r == -EPIPE) {
            hub_dev_fail(d, "the device hung up");
            return -EIO;
        }
    }
}


int
hub_dev_wait_reply(hub_device *d, uint64_t seq, hub_dev_reply *out, const char *what)
{
    d->inc.in_wait++;
    d->m->nest++;
    int r = wait_for(d, WAIT_REPLY, seq, out, what);
    d->inc.in_wait--;
    d->m->nest--;
    return r;
}

int
hub_dev_wait_timer_done(hub_device *d, uint64_t seq)
{
    d->inc.in_wait++;
    d->m->nest++;
    int r = wait_for(d, WAIT_TIMER_DONE, seq, NULL, "a timer fire");
    d->inc.in_wait--;
    d->m->nest--;
    return r;
}

int
hub_dev_wait_reached(hub_device *d, uint64_t until, uint64_t *next_event)
{
    hub_dev_reply o = { 0 };
    d->inc.in_wait++;
    d->m->nest++;
    int r = wait_for(d, WAIT_REACHED, until, &o, "a time grant");
    d->inc.in_wait--;
    d->m->nest--;
    *next_event = o.next_event ? o.next_event : VCLOCK_NEVER;
    return r;
}

