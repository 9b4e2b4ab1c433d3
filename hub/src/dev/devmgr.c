/*
 * Device processes on the hub side: spawn or accept them, handshake (docs/protocol.md), validate what they
 * declare, grant RAM and shadow pages, place their regions as proxy io regions, and serve their messages.
 * Proxy accesses (the MemoryRegionOps of those regions) live in proxy.c.
 */
#define _GNU_SOURCE
#include "dev/devmgr_int.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define SPAWN_HELLO_TIMEOUT_MS 10000
#define SHUTDOWN_GRACE_MS 2000
#define MAX_REGIONS 64
#define MAX_IRQS 1024
#define MAX_PROPS 256
#define MAX_READ_THROUGH HUB_MAX_READ_THROUGH
#define MAX_REGION_SIZE (UINT64_C(1) << 40)
#define MAX_NAME 128

uint64_t
hub_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void
hub_dev_log(hub_devmgr *m, const char *device, int level, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (m->env.log)
        m->env.log(m->env.log_opaque, device, level, buf);
    else
        fprintf(stderr, "plexus: %s: %s\n", device ? device : "devices", buf);
}

void
hub_dev_event_write(hub_device *d, const char *fmt, ...)
{
    FILE *f = d->m->env.event_log;
    va_list ap;
    va_start(ap, fmt);
    fprintf(f, "%" PRIu64 " %s ", vclock_now(d->m->env.clock), d->name);
    vfprintf(f, fmt, ap);
    fputc('\n', f);
    va_end(ap);
}

/* ---- lockstep -------------------------------------------------------------------------------------------- */

static uint64_t quantum(const hub_devmgr *m)
{
    return m->env.quantum_ns ? m->env.quantum_ns : HUB_DEFAULT_QUANTUM_NS;
}

/* The first quantum boundary after @t. */
static uint64_t next_boundary(const hub_devmgr *m, uint64_t t)
{
    uint64_t q = quantum(m);
    return t / q * q + q;
}

void
hub_dev_lockstep_arm(hub_device *d)
{
    vtimer_mod(&d->grant_vt, next_boundary(d->m, vclock_now(d->m->env.clock)));
}

void
hub_dev_lockstep_next(hub_device *d, uint64_t next_event)
{
    if (!d->lockstep || !next_event)
        return;
    uint64_t now = vclock_now(d->m->env.clock);
    if (next_event != VCLOCK_NEVER && next_event > now && next_event < d->grant_vt.deadline)
        vtimer_mod(&d->grant_vt, next_event);   /* the event comes before the next boundary: grant it exactly */
}

/* A grant is due: the device advances to now (a quantum boundary, or the event it announced) and says when it
 * next needs time. Runs inside vclock_advance(): the CPU is stopped at this virtual time meanwhile. */
static void grant_cb(void *opaque)
{
    hub_device *d = opaque;
    if (d->failed)
        return;
    uint64_t now = vclock_now(d->m->env.clock);
    Plx__TimeGrant g = PLX__TIME_GRANT__INIT;
    g.until_ns = now;
    Plx__Envelope env = PLX__ENVELOPE__INIT;
    env.msg_case = PLX__ENVELOPE__MSG_TIME_GRANT;
    env.time_grant = &g;
    uint64_t next = VCLOCK_NEVER;
    if (hub_dev_send(d, &env) < 0 || hub_dev_wait_reached(d, now, &next) < 0)
        return;
    d->stats.grants++;
    /* The device now stands at @now: an event it names at or before it is behind it. */
    bool idle = next == VCLOCK_NEVER || next <= now;
    hub_dev_event(d, "grant next %" PRIu64, idle ? 0 : next);
    if (idle)
        return;     /* nothing until it is accessed */
    uint64_t b = next_boundary(d->m, now);
    vtimer_mod(&d->grant_vt, next < b ? next : b);
}

void
hub_dev_fail(hub_device *d, const char *fmt, ...)
{
    if (d->failed)
        return;
    d->failed = true;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    hub_dev_log(d->m, d->name, 3, "%s; its accesses now fail%s", buf,
                d->cfg && d->restarts < d->max_restarts ? " until it is restarted" : "");
    d->failed_at = hub_now_ms();
    for (unsigned i = 0; i < d->n_timers; i++)
        if (d->timers[i])
            vtimer_del(&d->timers[i]->vt);
    /* Nobody drives its lines any more. */
    for (unsigned i = 0; i < d->n_irqs; i++) {
        if (d->irq_level && d->irq_level[i] > 0) {
            d->irq_level[i] = 0;
            if (d->irq_map[i] != HUB_IRQ_UNMAPPED && d->m->env.set_irq && !d->m->shutting_down)
                d->m->env.set_irq(d->m->env.irq_opaque, d->irq_map[i], 0);
        }
    }
}

/* Reap the process if it exited. Returns true if it is gone. */
bool
hub_dev_reap(hub_device *d)
{
    if (d->pid <= 0)
        return false;
    int st;
    pid_t r = waitpid(d->pid, &st, WNOHANG);
    if (r != d->pid)
        return false;
    d->pid = 0;
    if (d->pidfd >= 0) {
        close(d->pidfd);
        d->pidfd = -1;
    }
    d->exited = true;
    if (WIFSIGNALED(st))
        snprintf(d->exit_desc, sizeof(d->exit_desc), "was killed by signal %d (%s)", WTERMSIG(st),
                 strsignal(WTERMSIG(st)));
    else
        snprintf(d->exit_desc, sizeof(d->exit_desc), "exited with status %d", WEXITSTATUS(st));
    if (d->fdsock >= 0) {
        /* A sandboxed device says on its fd socket which system call ended it. */
        char words[128];
        ssize_t n = recv(d->fdsock, words, sizeof(words) - 1, MSG_DONTWAIT);
        if (n > 0) {
            words[n] = 0;
            for (ssize_t i = 0; i < n; i++)
                if (!isprint((unsigned char)words[i]))
                    words[i] = '?';
            size_t l = strlen(d->exit_desc);
            snprintf(d->exit_desc + l, sizeof(d->exit_desc) - l, " (%s)", words);
        }
    }
    if (!d->m->shutting_down)
        hub_dev_fail(d, "device process %s", d->exit_desc);
    return true;
}

/* ---- sending --------------------------------------------------------------------------------------------- */

int
hub_dev_send(hub_device *d, Plx__Envelope *env)
{
    if (d->batch_n)
        hub_dev_flush(d);
    env->now_ns = vclock_now(d->m->env.clock);
    int r = plx_wire_send(&d->wire, env, 0);
    if (r < 0)
        hub_dev_send_failed(d, r);
    return r;
}

const char *
hub_dev_chan_strerror(hub_device *d, int r)
{
    if (r == -EPROTO && plx_chan_get_kind(d->chan) == PLX_CHAN_RING)
        return plx_chan_error(d->chan);
    if (r == -ETIMEDOUT)
        return "the device takes no frames (its ring stays full)";
    return zmq_strerror(-r);
}

void
hub_dev_send_failed(hub_device *d, int r)
{
    if (d->m->shutting_down || d->failed)
        return;
    if (d->pidfd >= 0) {
        /* Most likely the process died: say so rather than "not connected". */
        struct pollfd p = { .fd = d->pidfd, .events = POLLIN };
        if (poll(&p, 1, 100) > 0 && hub_dev_reap(d))
            return;
    }
    /* ZeroMQ's queue is unbounded: EAGAIN means the device is no longer connected. */
    hub_dev_fail(d, "cannot send to the device: %s", r == -EAGAIN ? "not connected" : hub_dev_chan_strerror(d, r));
}

int
hub_dev_wait(hub_device *d, int timeout_ms)
{
    zmq_pollitem_t it[2];
    bool ready = plx_chan_poll_prepare(d->chan, &it[0]);
    it[1] = (zmq_pollitem_t){ .fd = d->pidfd, .events = ZMQ_POLLIN };
    int n = d->pidfd >= 0 ? 2 : 1;
    int r = zmq_poll(it, n, ready ? 0 : timeout_ms);
    plx_chan_poll_done(d->chan, &it[0]);
    if (r < 0)
        return errno == EINTR ? 0 : -errno;
    if (ready || (it[0].revents & ZMQ_POLLIN))
        return 1;
    return n == 2 && (it[1].revents & ZMQ_POLLIN) ? 2 : 0;
}

static void send_error(hub_device *d, int code, const char *text)
{
    Plx__Error er = PLX__ERROR__INIT;
    er.code = (uint32_t)code;
    er.text = (char *)text;
    Plx__Envelope env = PLX__ENVELOPE__INIT;
    env.msg_case = PLX__ENVELOPE__MSG_ERROR;
    env.error = &er;
    env.now_ns = vclock_now(d->m->env.clock);
    plx_wire_send(&d->wire, &env, PLX_CHAN_DONTWAIT);
}

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
    f.generation = t->generation;
    /* Shadow reads after this fire must see its effects, as they see posted writes. */
    f.seq = d->last_posted = ++d->seq;
    Plx__Envelope env = PLX__ENVELOPE__INIT;
    env.msg_case = PLX__ENVELOPE__MSG_TIMER_FIRE;
    env.timer_fire = &f;
    if (hub_dev_send(d, &env) < 0)
        return;
    /*
     * Wait until the callback ran, so that what it does (IRQ changes, DMA, new timers) happens at this virtual
     * time and not whenever the hub next polls: device timing stays deterministic. Not from inside another
     * wait on the same device (it could not answer).
     */
    if ((d->capabilities & PLX__CAPABILITY__CAP_TIMER_DONE) && !d->in_wait && !d->dma_depth)
        hub_dev_wait_timer_done(d, f.seq);
}

static void timer_arm(hub_device *d, const Plx__TimerArm *a)
{
    if (a->id >= HUB_MAX_TIMERS) {
        hub_dev_log(d->m, d->name, 4, "TimerArm with id %u (limit %u) dropped", a->id, HUB_MAX_TIMERS);
        return;
    }
    if (a->id >= d->n_timers) {
        unsigned n = a->id + 8 < HUB_MAX_TIMERS ? a->id + 8 : HUB_MAX_TIMERS;
        hub_timer **t = realloc(d->timers, sizeof(*t) * n);
        if (!t)
            return;
        memset(t + d->n_timers, 0, sizeof(*t) * (n - d->n_timers));
        d->timers = t;
        d->n_timers = n;
    }
    hub_timer *t = d->timers[a->id];
    if (!t) {
        t = calloc(1, sizeof(*t));
        if (!t)
            return;
        t->d = d;
        t->id = a->id;
        vtimer_init(&t->vt, d->m->env.clock, timer_cb, t);
        d->timers[a->id] = t;
    }
    t->generation = a->generation;
    vtimer_mod(&t->vt, a->deadline_ns);
}

static void timer_cancel(hub_device *d, const Plx__TimerCancel *c)
{
    if (c->id < d->n_timers && d->timers[c->id])
        vtimer_del(&d->timers[c->id]->vt);
}

/* ---- messages a device sends on its own ------------------------------------------------------------------ */

static void serve_irq(hub_device *d, const Plx__Irq *irq)
{
    if (irq->line >= d->n_irqs) {
        hub_dev_log(d->m, d->name, 4, "Irq on line %u, but the device declared %u lines: dropped", irq->line,
                    d->n_irqs);
        return;
    }
    if (irq->op != PLX__IRQ_OP__IRQ_SET && irq->op != PLX__IRQ_OP__IRQ_PULSE) {
        hub_dev_log(d->m, d->name, 4, "Irq with unknown op %d dropped", (int)irq->op);
        return;
    }
    unsigned hub_irq = d->irq_map[irq->line];
    if (hub_irq == HUB_IRQ_UNMAPPED) {
        if (!d->irq_unmapped_logged) {
            d->irq_unmapped_logged = true;
            hub_dev_log(d->m, d->name, 4, "IRQ line %u (%s) is not connected in the machine: ignored", irq->line,
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

static void serve_dma(hub_device *d, const Plx__DmaRequest *rq)
{
    hub_devmgr *m = d->m;
    Plx__DmaReply rp = PLX__DMA_REPLY__INIT;
    rp.seq = rq->seq;
    rp.result = PLX__MEM_TX__MEMTX_ERROR;
    if (rq->len > PLX_WIRE_MAX_DMA || (rq->write && rq->data.len != rq->len) ||
        (!rq->write && rq->data.len != 0) || rq->addr + rq->len < rq->addr) {
        hub_dev_log(m, d->name, 4, "malformed DmaRequest (addr 0x%" PRIx64 ", len %u, %zu data bytes) refused",
                    rq->addr, rq->len, rq->data.len);
    } else if (!m->env.as) {
        hub_dev_log(m, d->name, 4, "DMA by message without an address space: refused");
    } else if (!in_dma_window(d, rq->addr, rq->len)) {
        d->stats.dma_refused++;
        if (d->stats.dma_refused <= 8)
            hub_dev_log(m, d->name, 4, "DMA %s 0x%" PRIx64 "+0x%x outside its RAM grants: refused%s",
                        rq->write ? "write to" : "read from", rq->addr, rq->len,
                        d->stats.dma_refused == 8 ? " (further refusals are counted, not logged)" : "");
    } else {
        uint64_t addr = rq->addr;
        uint32_t len = rq->len;
        bool write = rq->write;
        MemTxResult res;
        d->dma_depth++;
        if (write) {
            res = address_space_write(m->env.as, addr, MEMTXATTRS_UNSPECIFIED, rq->data.data, (int)len);
        } else {
            /* Per device: serving this read may serve another device's DMA (nested accesses). */
            if (len > d->dma_cap) {
                uint8_t *b = realloc(d->dma_buf, len);
                if (!b) {
                    d->dma_depth--;
                    goto reply;
                }
                d->dma_buf = b;
                d->dma_cap = len;
            }
            res = address_space_read(m->env.as, addr, MEMTXATTRS_UNSPECIFIED, d->dma_buf, (int)len);
        }
        d->dma_depth--;
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
    Plx__Envelope env = PLX__ENVELOPE__INIT;
    env.msg_case = PLX__ENVELOPE__MSG_DMA_REPLY;
    env.dma_reply = &rp;
    hub_dev_send(d, &env);
}

static void serve_log(hub_device *d, const Plx__Log *lg)
{
    char text[1024];
    const char *s = lg->text ? lg->text : "";
    size_t i;
    for (i = 0; s[i] && i < sizeof(text) - 1; i++)
        text[i] = (s[i] == '\n' || s[i] == '\t' || isprint((unsigned char)s[i])) ? s[i] : '?';
    text[i] = 0;
    hub_dev_log(d->m, d->name, lg->level > 7 ? 7 : (int)lg->level, "%s", text);
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
    case PLX__ENVELOPE__MSG_TIMER_ARM:
        timer_arm(d, env->timer_arm);
        break;
    case PLX__ENVELOPE__MSG_TIMER_CANCEL:
        timer_cancel(d, env->timer_cancel);
        break;
    case PLX__ENVELOPE__MSG_LOG:
        serve_log(d, env->log);
        break;
    case PLX__ENVELOPE__MSG_GOODBYE:
        d->said_goodbye = true;
        if (!d->m->shutting_down)
            hub_dev_fail(d, "device left (Goodbye, status %d)", env->goodbye->status);
        break;
    case PLX__ENVELOPE__MSG_ERROR:
        hub_dev_log(d->m, d->name, 3, "device reports an error: %s", env->error->text ? env->error->text : "");
        break;
    case PLX__ENVELOPE__MSG_REPLY:
        hub_dev_log(d->m, d->name, 4, "MmioReply with seq %" PRIu64 " that no request is waiting for: dropped",
                    env->reply->seq);
        break;
    case PLX__ENVELOPE__MSG_TIMER_DONE:
        break;      /* for a fire the hub did not wait for (sent from inside another wait) */
    case PLX__ENVELOPE__MSG_TIME_REACHED:
        hub_dev_log(d->m, d->name, 4, "TimeReached for %" PRIu64 " that no grant is waiting for: dropped",
                    env->time_reached->now_ns);
        break;
    default:
        hub_dev_log(d->m, d->name, 4, "unexpected %s message after the handshake: dropped",
                    plx_wire_msg_name(env->msg_case));
        break;
    }
    plx_wire_release(&d->wire);
}

/* Serve what the device has queued, without blocking, up to a bound (a flooding device must not starve the
 * hub). Returns the number of messages served. */
int
hub_dev_drain(hub_device *d)
{
    int n = 0;
    while ((!d->failed || d->m->shutting_down) && n < 4096) {
        Plx__Envelope *env;
        int r = plx_wire_recv(&d->wire, &env, 0);
        if (r == -EAGAIN)
            break;
        if (r == -EINTR)
            continue;
        if (r == -EBADMSG) {
            hub_dev_log(d->m, d->name, 4, "undecodable frame dropped");
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

/* ---- handshake ------------------------------------------------------------------------------------------- */

/* Wait for the next handshake message; Log messages are forwarded meanwhile. */
static int hs_recv(hub_device *d, uint64_t deadline, Plx__Envelope **out, Error **errp, const char *what)
{
    for (;;) {
        Plx__Envelope *env;
        int r = plx_wire_recv(&d->wire, &env, 0);
        if (r == 0) {
            if (env->msg_case == PLX__ENVELOPE__MSG_LOG) {
                serve_log(d, env->log);
                plx_wire_release(&d->wire);
                if (hub_now_ms() >= deadline) {
                    error_setg(errp, "device '%s': no %s within the handshake timeout", d->name, what);
                    return -ETIMEDOUT;
                }
                continue;
            }
            if (env->msg_case == PLX__ENVELOPE__MSG_ERROR) {
                error_setg(errp, "device '%s': %s", d->name, env->error->text ? env->error->text : "error");
                plx_wire_release(&d->wire);
                return -EPROTO;
            }
            *out = env;
            return 0;
        }
        if (r == -EBADMSG) {
            error_setg(errp, "device '%s': undecodable frame while waiting for %s", d->name, what);
            return -EPROTO;
        }
        if (r != -EAGAIN && r != -EINTR) {
            error_setg(errp, "device '%s': receive failed: %s", d->name, hub_dev_chan_strerror(d, r));
            return r;
        }
        uint64_t now = hub_now_ms();
        if (now >= deadline) {
            if (hub_dev_reap(d) || d->exited)
                error_setg(errp, "device '%s': process %s before sending %s", d->name, d->exit_desc, what);
            else
                error_setg(errp, "device '%s': no %s within the handshake timeout", d->name, what);
            return -ETIMEDOUT;
        }
        uint64_t left = deadline - now;
        int w = hub_dev_wait(d, (int)(left > 100 ? 100 : left));
        if (w < 0) {
            error_setg(errp, "device '%s': poll failed: %s", d->name, strerror(-w));
            return -EIO;
        }
        /* Give frames the process wrote before dying a moment to arrive. */
        if (w == 2 && hub_dev_wait(d, 50) != 1 && hub_dev_reap(d)) {
            error_setg(errp, "device '%s': process %s before sending %s", d->name, d->exit_desc, what);
            return -ECHILD;
        }
    }
}

static bool name_ok(const char *s)
{
    if (!s || !s[0] || strlen(s) > MAX_NAME)
        return false;
    for (; *s; s++)
        if (!isprint((unsigned char)*s))
            return false;
    return true;
}

static bool size_ok(uint32_t s)
{
    return s == 0 || s == 1 || s == 2 || s == 4 || s == 8;
}

static int rules_ok(const Plx__AccessRules *r)
{
    if (!r)
        return 1;
    if (!size_ok(r->min_access_size) || !size_ok(r->max_access_size))
        return 0;
    if (r->min_access_size && r->max_access_size && r->min_access_size > r->max_access_size)
        return 0;
    return 1;
}

static int take_declaration(hub_device *d, const Plx__Declare *dc, Error **errp)
{
    if (dc->n_regions > MAX_REGIONS || dc->n_irqs > MAX_IRQS || dc->n_props > MAX_PROPS) {
        error_setg(errp, "device '%s' declares too much (%zu regions, %zu irqs, %zu props; limits %d/%d/%d)",
                   d->name, dc->n_regions, dc->n_irqs, dc->n_props, MAX_REGIONS, MAX_IRQS, MAX_PROPS);
        return -EINVAL;
    }
    d->regions = calloc(dc->n_regions ? dc->n_regions : 1, sizeof(*d->regions));
    d->irq_names = calloc(dc->n_irqs ? dc->n_irqs : 1, sizeof(char *));
    d->irq_map = malloc(sizeof(unsigned) * (dc->n_irqs ? dc->n_irqs : 1));
    d->props = calloc(dc->n_props ? dc->n_props : 1, sizeof(char *));
    d->irq_level = calloc(dc->n_irqs ? dc->n_irqs : 1, 1);
    if (!d->regions || !d->irq_names || !d->irq_map || !d->props || !d->irq_level) {
        error_setg(errp, "device '%s': out of memory", d->name);
        return -ENOMEM;
    }
    for (size_t i = 0; i < dc->n_regions; i++) {
        const Plx__RegionDecl *rd = dc->regions[i];
        hub_region *r = &d->regions[i];
        r->dev = d;
        r->index = (unsigned)i;
        r->shadow_fd = -1;
        d->n_regions++;
        if (!name_ok(rd->name)) {
            error_setg(errp, "device '%s': region %zu has no usable name", d->name, i);
            return -EINVAL;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(d->regions[j].name, rd->name) == 0) {
                error_setg(errp, "device '%s': region '%s' is declared twice", d->name, rd->name);
                return -EINVAL;
            }
        r->name = strdup(rd->name);
        if (!r->name)
            return -ENOMEM;
        if (rd->size == 0 || rd->size > MAX_REGION_SIZE) {
            error_setg(errp, "device '%s': region '%s' has size 0x%" PRIx64 " (must be 1..2^40)", d->name,
                       rd->name, rd->size);
            return -EINVAL;
        }
        r->size = rd->size;
        if (rd->kind != PLX__REGION_KIND__REGION_IO && rd->kind != PLX__REGION_KIND__REGION_POSTED &&
            rd->kind != PLX__REGION_KIND__REGION_SHADOW) {
            error_setg(errp, "device '%s': region '%s' has unknown kind %d", d->name, rd->name, (int)rd->kind);
            return -EINVAL;
        }
        r->kind = rd->kind;
        if (rd->endianness != PLX__ENDIAN__LITTLE && rd->endianness != PLX__ENDIAN__BIG) {
            error_setg(errp, "device '%s': region '%s' has unknown endianness %d", d->name, rd->name,
                       (int)rd->endianness);
            return -EINVAL;
        }
        if (!rules_ok(rd->valid) || !rules_ok(rd->impl)) {
            error_setg(errp, "device '%s': region '%s' has bad access sizes (each of 0, 1, 2, 4, 8; min <= max)",
                       d->name, rd->name);
            return -EINVAL;
        }
        if (rd->n_read_through && rd->kind != PLX__REGION_KIND__REGION_SHADOW) {
            error_setg(errp, "device '%s': region '%s' has read-through ranges but is not a SHADOW region",
                       d->name, rd->name);
            return -EINVAL;
        }
        if (rd->n_read_through > MAX_READ_THROUGH) {
            error_setg(errp, "device '%s': region '%s' has %zu read-through ranges (limit %d)", d->name, rd->name,
                       rd->n_read_through, MAX_READ_THROUGH);
            return -EINVAL;
        }
        for (size_t j = 0; j < rd->n_read_through; j++) {
            const Plx__Range *rg = rd->read_through[j];
            if (rg->len == 0 || rg->offset >= r->size || rg->len > r->size - rg->offset) {
                error_setg(errp, "device '%s': region '%s': read-through range 0x%" PRIx64 "+0x%" PRIx64
                           " is outside the region (size 0x%" PRIx64 ")", d->name, rd->name, rg->offset, rg->len,
                           r->size);
                return -EINVAL;
            }
            r->read_through[j].offset = rg->offset;
            r->read_through[j].len = rg->len;
        }
        r->n_read_through = (unsigned)rd->n_read_through;

        MemoryRegionOps *ops = &r->ops;
        hub_proxy_init_ops(ops);
        ops->endianness = rd->endianness == PLX__ENDIAN__BIG ? DEVICE_BIG_ENDIAN : DEVICE_LITTLE_ENDIAN;
        if (rd->valid) {
            ops->valid.min_access_size = rd->valid->min_access_size;
            ops->valid.max_access_size = rd->valid->max_access_size;
            ops->valid.unaligned = rd->valid->unaligned;
        }
        if (rd->impl) {
            ops->impl.min_access_size = rd->impl->min_access_size;
            ops->impl.max_access_size = rd->impl->max_access_size;
            ops->impl.unaligned = rd->impl->unaligned;
        }
    }
    for (size_t i = 0; i < dc->n_irqs; i++) {
        if (!name_ok(dc->irqs[i])) {
            error_setg(errp, "device '%s': IRQ line %zu has no usable name", d->name, i);
            return -EINVAL;
        }
        d->irq_names[i] = strdup(dc->irqs[i]);
        d->irq_map[i] = HUB_IRQ_UNMAPPED;
        d->n_irqs++;
        if (!d->irq_names[i])
            return -ENOMEM;
    }
    for (size_t i = 0; i < dc->n_props; i++) {
        if (!name_ok(dc->props[i]->name)) {
            error_setg(errp, "device '%s': property %zu has no usable name", d->name, i);
            return -EINVAL;
        }
        d->props[i] = strdup(dc->props[i]->name);
        d->n_props++;
        if (!d->props[i])
            return -ENOMEM;
    }
    return 0;
}

static int check_config(hub_device *d, const hub_device_config *cfg, Error **errp)
{
    hub_devmgr *m = d->m;
    for (size_t i = 0; i < cfg->n_props; i++) {
        bool found = false;
        for (unsigned j = 0; j < d->n_props && !found; j++)
            found = strcmp(d->props[j], cfg->props[i].key) == 0;
        if (!found) {
            char known[512] = "";
            size_t off = 0;
            for (unsigned j = 0; j < d->n_props && off < sizeof(known); j++)
                off += (size_t)snprintf(known + off, sizeof(known) - off, "%s%s", j ? ", " : "", d->props[j]);
            error_setg(errp, "device '%s' (model %s) has no property '%s' (it accepts: %s)", d->name, d->model,
                       cfg->props[i].key, d->n_props ? known : "none");
            return -EINVAL;
        }
    }
    for (size_t i = 0; i < cfg->n_regions; i++) {
        const char *rn = cfg->regions[i].region;
        hub_region *r = NULL;
        if (!rn) {
            r = d->n_regions ? &d->regions[0] : NULL;
        } else {
            for (unsigned j = 0; j < d->n_regions && !r; j++)
                if (strcmp(d->regions[j].name, rn) == 0)
                    r = &d->regions[j];
        }
        if (!r) {
            error_setg(errp, "device '%s' (model %s) declares no region '%s' to place", d->name, d->model,
                       rn ? rn : "(first)");
            return -EINVAL;
        }
        if (r->placed) {
            error_setg(errp, "device '%s': region '%s' is placed twice", d->name, r->name);
            return -EINVAL;
        }
        r->placed = true;
        r->base = cfg->regions[i].base;
        if (r->base + r->size - 1 < r->base) {
            error_setg(errp, "device '%s': region '%s' at 0x%" PRIx64 " wraps around the address space", d->name,
                       r->name, r->base);
            return -EINVAL;
        }
    }
    for (unsigned j = 0; j < d->n_regions; j++)
        if (!d->regions[j].placed) {
            error_setg(errp, "device '%s': region '%s' (size 0x%" PRIx64 ") is not placed in the machine", d->name,
                       d->regions[j].name, d->regions[j].size);
            return -EINVAL;
        }
    for (size_t i = 0; i < cfg->n_irqs; i++) {
        if (cfg->irqs[i].line >= d->n_irqs) {
            error_setg(errp, "device '%s': IRQ line %u is connected, but the device declares %u line%s", d->name,
                       cfg->irqs[i].line, d->n_irqs, d->n_irqs == 1 ? "" : "s");
            return -EINVAL;
        }
        d->irq_map[cfg->irqs[i].line] = cfg->irqs[i].irq;
    }
    for (size_t i = 0; i < cfg->n_ram_grants; i++) {
        bool found = false;
        for (size_t j = 0; j < m->env.n_ram && !found; j++)
            found = m->env.ram[j].name && strcmp(m->env.ram[j].name, cfg->ram_grants[i]) == 0;
        if (!found) {
            error_setg(errp, "device '%s': RAM grant '%s' names no RAM block", d->name, cfg->ram_grants[i]);
            return -EINVAL;
        }
    }
    return 0;
}

static bool ram_granted(const hub_device_config *cfg, const hub_ram_block *b)
{
    if (!cfg->ram_grants && cfg->n_ram_grants == 0)
        return true;
    for (size_t i = 0; i < cfg->n_ram_grants; i++)
        if (b->name && strcmp(cfg->ram_grants[i], b->name) == 0)
            return true;
    return false;
}

static int make_shadow(hub_device *d, hub_region *r, Error **errp)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t data = ((size_t)r->size + (size_t)page - 1) & ~((size_t)page - 1);
    size_t len = PLX_SHADOW_HEADER_SIZE + data;
    char nm[64];
    snprintf(nm, sizeof(nm), "plexus-shadow-%s", r->name);
    int fd = memfd_create(nm, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0 || ftruncate(fd, (off_t)len) < 0 ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
        error_setg(errp, "device '%s': cannot create the shadow page of region '%s': %s", d->name, r->name,
                   strerror(errno));
        if (fd >= 0)
            close(fd);
        return -errno;
    }
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        error_setg(errp, "device '%s': cannot map the shadow page of region '%s': %s", d->name, r->name,
                   strerror(errno));
        close(fd);
        return -errno;
    }
    r->shadow_fd = fd;
    r->shadow_map = p;
    r->shadow_len = len;
    r->shadow_hdr = p;
    r->shadow_data = (uint8_t *)p + PLX_SHADOW_HEADER_SIZE;
    r->shadow_hdr->magic = PLX_SHADOW_MAGIC;
    r->shadow_hdr->version = PLX_SHADOW_VERSION;
    r->shadow_hdr->applied_seq = 0;
    r->shadow_hdr->region_size = r->size;
    return 0;
}

static int send_fds(int sock, const int *fds, unsigned n)
{
    char data[4] = "fds";
    char cbuf[CMSG_SPACE(sizeof(int) * 253)];
    if (n == 0 || n > 253)
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

/* Free what take_declaration() allocated: region names, IRQ names and lines, properties. */
static void free_declaration(hub_device *d)
{
    for (unsigned i = 0; i < d->n_regions; i++) {
        free(d->regions[i].name);
    }
    free(d->regions);
    for (unsigned i = 0; i < d->n_irqs; i++)
        free(d->irq_names[i]);
    free(d->irq_names);
    free(d->irq_map);
    free(d->irq_level);
    for (unsigned i = 0; i < d->n_props; i++)
        free(d->props[i]);
    free(d->props);
}

/* A restarted device must declare what its first instance did: its regions stay mapped. */
static bool same_declaration(const hub_device *a, const hub_device *b)
{
    if (a->n_regions != b->n_regions || a->n_irqs != b->n_irqs)
        return false;
    for (unsigned i = 0; i < a->n_regions; i++) {
        const hub_region *x = &a->regions[i], *y = &b->regions[i];
        if (strcmp(x->name, y->name) || x->size != y->size || x->kind != y->kind ||
            x->ops.endianness != y->ops.endianness || x->n_read_through != y->n_read_through ||
            memcmp(&x->ops.valid, &y->ops.valid, sizeof(x->ops.valid)) ||
            memcmp(&x->ops.impl, &y->ops.impl, sizeof(x->ops.impl)) ||
            memcmp(x->read_through, y->read_through, sizeof(*x->read_through) * x->n_read_through))
            return false;
    }
    return true;
}

/* Hello + Declare in, Hello + Config (+ fds) out, Ready in. */
static int handshake(hub_device *d, const hub_device_config *cfg, uint64_t hello_deadline, bool restart,
                     Error **errp)
{
    hub_devmgr *m = d->m;
    Plx__Envelope *env;
    plx_chan *ring = NULL, *zchan = NULL;
    void *zsock = NULL;
    int r = hs_recv(d, hello_deadline, &env, errp, "its Hello");
    if (r < 0)
        return r;
    if (env->msg_case != PLX__ENVELOPE__MSG_HELLO) {
        error_setg(errp, "device '%s': first message is %s, not Hello", d->name, plx_wire_msg_name(env->msg_case));
        plx_wire_release(&d->wire);
        return -EPROTO;
    }
    uint32_t major = env->hello->major, minor = env->hello->minor;
    d->capabilities = env->hello->capabilities;
    free(d->model);
    d->model = strdup(name_ok(env->hello->model) ? env->hello->model : "unknown");
    plx_wire_release(&d->wire);
    if (!d->model)
        return -ENOMEM;
    if (major != PLX_HUB_PROTOCOL_MAJOR) {
        char t[160];
        snprintf(t, sizeof(t), "protocol %u.%u is not supported (the hub speaks %u.x)", major, minor,
                 PLX_HUB_PROTOCOL_MAJOR);
        send_error(d, EPROTONOSUPPORT, t);
        error_setg(errp, "device '%s': %s", d->name, t);
        return -EPROTONOSUPPORT;
    }
    d->minor = minor;
    if (d->minor > PLX_HUB_PROTOCOL_MINOR)
        d->minor = PLX_HUB_PROTOCOL_MINOR;

    r = hs_recv(d, hub_now_ms() + d->timeout_ms + 5000, &env, errp, "its Declare");
    if (r < 0)
        return r;
    if (env->msg_case != PLX__ENVELOPE__MSG_DECLARE) {
        error_setg(errp, "device '%s': expected Declare after Hello, got %s", d->name,
                   plx_wire_msg_name(env->msg_case));
        plx_wire_release(&d->wire);
        return -EPROTO;
    }
    if (restart) {
        hub_device tmp = { .m = m, .name = d->name };
        r = take_declaration(&tmp, env->declare, errp);
        plx_wire_release(&d->wire);
        if (r == 0 && !same_declaration(d, &tmp)) {
            error_setg(errp, "device '%s' declares other regions or IRQ lines than before its restart", d->name);
            r = -EINVAL;
        }
        free_declaration(&tmp);
    } else {
        r = take_declaration(d, env->declare, errp);
        plx_wire_release(&d->wire);
        if (r == 0)
            r = check_config(d, cfg, errp);
    }
    if (r < 0) {
        send_error(d, EINVAL, errp && *errp ? error_get_pretty(*errp) : "declaration refused");
        return r;
    }

    /* Build the Config. */
    bool local = !d->tcp && !cfg->ram_by_message;
    int passed[253];
    unsigned n_passed = 0;
    Plx__RamGrant *rg = calloc(m->env.n_ram ? m->env.n_ram : 1, sizeof(*rg));
    Plx__RamGrant **rgp = calloc(m->env.n_ram ? m->env.n_ram : 1, sizeof(*rgp));
    Plx__ShadowGrant *sg = calloc(d->n_regions ? d->n_regions : 1, sizeof(*sg));
    Plx__ShadowGrant **sgp = calloc(d->n_regions ? d->n_regions : 1, sizeof(*sgp));
    Plx__Prop *pp = calloc(cfg->n_props ? cfg->n_props : 1, sizeof(*pp));
    Plx__Prop **ppp = calloc(cfg->n_props ? cfg->n_props : 1, sizeof(*ppp));
    Plx__Placement *pl = calloc(d->n_regions ? d->n_regions : 1, sizeof(*pl));
    Plx__Placement **plp = calloc(d->n_regions ? d->n_regions : 1, sizeof(*plp));
    r = -ENOMEM;
    if (!rg || !rgp || !sg || !sgp || !pp || !ppp || !pl || !plp) {
        error_setg(errp, "device '%s': out of memory", d->name);
        goto out;
    }
    Plx__Config c = PLX__CONFIG__INIT;
    c.name = d->name;
    for (size_t i = 0; i < cfg->n_props; i++) {
        plx__prop__init(&pp[i]);
        pp[i].key = (char *)cfg->props[i].key;
        pp[i].value = (char *)(cfg->props[i].value ? cfg->props[i].value : "");
        ppp[c.n_props++] = &pp[i];
    }
    c.props = ppp;
    for (unsigned i = 0; i < d->n_regions; i++) {
        plx__placement__init(&pl[i]);
        pl[i].region = i;
        pl[i].guest_base = d->regions[i].base;
        plp[c.n_placement++] = &pl[i];
    }
    c.placement = plp;
    for (size_t i = 0; i < m->env.n_ram; i++) {
        const hub_ram_block *b = &m->env.ram[i];
        if (!ram_granted(cfg, b))
            continue;
        Plx__RamGrant *g = &rg[c.n_ram];
        plx__ram_grant__init(g);
        g->id = (uint32_t)i;
        g->name = (char *)(b->name ? b->name : "");
        g->guest_base = b->base;
        g->size = b->size;
        g->readonly = b->readonly;
        g->fd = -1;
        g->fd_kind = PLX__FD_KIND__FD_NONE;
        if (local && b->fd >= 0 && (d->capabilities & PLX__CAPABILITY__CAP_RAM_FDS)) {
            if (d->spawned) {
                g->fd_kind = PLX__FD_KIND__FD_INHERITED;
                g->fd = b->fd;
            } else if (d->fdsock >= 0) {
                g->fd_kind = PLX__FD_KIND__FD_PASSED;
                g->fd = (int32_t)n_passed;
                passed[n_passed++] = b->fd;
            }
        }
        rgp[c.n_ram++] = g;
    }
    c.ram = rgp;
    for (unsigned i = 0; i < d->n_regions; i++) {
        hub_region *reg = &d->regions[i];
        if (reg->kind != PLX__REGION_KIND__REGION_SHADOW)
            continue;
        if (!local || d->fdsock < 0 || !(d->capabilities & PLX__CAPABILITY__CAP_SHADOW)) {
            if (reg->shadow_fd >= 0) {
                error_setg(errp, "device '%s' came back without support for its shadow page", d->name);
                r = -EPROTO;
                goto out;
            }
            continue;   /* without a shared page a SHADOW region behaves as POSTED: reads are round trips */
        }
        if (reg->shadow_fd < 0) {
            r = make_shadow(d, reg, errp);
            if (r < 0)
                goto out;
        } else {
            /* A restarted device starts from a blank page and sequence 0. */
            memset(reg->shadow_data, 0, reg->size);
            __atomic_store_n(&reg->shadow_hdr->applied_seq, 0, __ATOMIC_RELEASE);
        }
        Plx__ShadowGrant *g = &sg[c.n_shadows];
        plx__shadow_grant__init(g);
        g->region = i;
        g->fd_kind = PLX__FD_KIND__FD_PASSED;
        g->fd = (int32_t)n_passed;
        passed[n_passed++] = reg->shadow_fd;
        g->map_size = reg->shadow_len;
        g->data_offset = PLX_SHADOW_HEADER_SIZE;
        sgp[c.n_shadows++] = g;
    }
    c.shadows = sgp;
    c.n_passed_fds = n_passed;
    c.timeout_ms = d->timeout_ms;
    c.max_dma_len = PLX_WIRE_MAX_DMA;
    Plx__Sandbox sb = PLX__SANDBOX__INIT;
    if (cfg->sandbox) {
        sb.enabled = true;
        sb.policy = (char *)(cfg->sandbox_policy ? cfg->sandbox_policy : "");
        sb.allow = (char **)cfg->sandbox_allow;
        sb.n_allow = cfg->sandbox_allow ? cfg->n_sandbox_allow : 0;
        c.sandbox = &sb;
    }

    if (cfg->lockstep && !(d->capabilities & PLX__CAPABILITY__CAP_LOCKSTEP)) {
        error_setg(errp, "device '%s': sync: lockstep asked for, but the device does not offer it (no "
                   "CAP_LOCKSTEP in its Hello)", d->name);
        r = -EPROTO;
        goto out;
    }
    if (d->ring_wanted && d->fdsock >= 0 && (d->capabilities & PLX__CAPABILITY__CAP_RING)) {
        int rfds[PLX_RING_FDS];
        uint64_t spin = cfg->ring_spin_us ? (uint64_t)cfg->ring_spin_us * 1000u : HUB_RING_SPIN_NS;
        ring = plx_chan_ring_create(cfg->ring_slots, spin, rfds);
        if (!ring) {
            error_setg(errp, "device '%s': cannot create its ring: %s", d->name, strerror(errno));
            r = -EIO;
            goto out;
        }
        if ((r = send_fds(d->fdsock, rfds, PLX_RING_FDS)) < 0) {
            error_setg(errp, "device '%s': cannot pass the ring's descriptors: %s", d->name, strerror(-r));
            plx_chan_close(ring);
            goto out;
        }
        c.ring = true;
    } else if (d->ring_required) {
        error_setg(errp, "device '%s': transport 'ring' asked for, but %s", d->name,
                   d->fdsock < 0 ? "the device has no fd socket (not started or attached on this host)"
                                 : "the device does not offer it (no CAP_RING in its Hello)");
        r = -EPROTO;
        goto out;
    }

    c.lockstep = cfg->lockstep;
    Plx__Hello h = PLX__HELLO__INIT;
    h.major = PLX_HUB_PROTOCOL_MAJOR;
    h.minor = d->minor;
    h.capabilities = PLX__CAPABILITY__CAP_SHADOW | PLX__CAPABILITY__CAP_RAM_FDS |
                     PLX__CAPABILITY__CAP_DMA_MESSAGE | PLX__CAPABILITY__CAP_WRITE_BATCH |
                     PLX__CAPABILITY__CAP_TIMER_DONE | PLX__CAPABILITY__CAP_RING | PLX__CAPABILITY__CAP_LOCKSTEP;
    Plx__Envelope out = PLX__ENVELOPE__INIT;
    out.msg_case = PLX__ENVELOPE__MSG_HELLO;
    out.hello = &h;
    if ((r = hub_dev_send(d, &out)) < 0) {
        error_setg(errp, "device '%s': cannot send Hello", d->name);
        goto out;
    }
    out.msg_case = PLX__ENVELOPE__MSG_CONFIG;
    out.config = &c;
    r = hub_dev_send(d, &out);
    if (ring) {
        /* From here on the ring. The ZeroMQ socket is closed once Ready shows the Config arrived (closing
         * drops what is still queued). */
        plx_chan_set_send_timeout(ring, (int)d->timeout_ms);
        plx_chan_set_peer_fd(ring, d->pidfd >= 0 ? d->pidfd : d->fdsock);
        zchan = d->chan;
        zsock = d->sock;
        d->sock = NULL;
        plx_wire_fini(&d->wire);
        d->chan = ring;
        d->ring = true;
        plx_wire_init(&d->wire, d->chan);
        free(d->endpoint);
        d->endpoint = strdup("ring");
        if (d->ipc_path) {
            unlink(d->ipc_path);
            free(d->ipc_path);
            d->ipc_path = NULL;
        }
    }
    if (r < 0 || !d->endpoint) {
        error_setg(errp, "device '%s': cannot send Config", d->name);
        r = r < 0 ? r : -ENOMEM;
        goto out;
    }
    if (n_passed && (r = send_fds(d->fdsock, passed, n_passed)) < 0) {
        error_setg(errp, "device '%s': cannot pass %u file descriptors: %s", d->name, n_passed, strerror(-r));
        goto out;
    }
    unsigned init_ms = d->timeout_ms > SPAWN_HELLO_TIMEOUT_MS ? d->timeout_ms : SPAWN_HELLO_TIMEOUT_MS;
    r = hs_recv(d, hub_now_ms() + init_ms, &env, errp, "Ready (init)");
    if (r < 0)
        goto out;
    if (env->msg_case != PLX__ENVELOPE__MSG_READY) {
        error_setg(errp, "device '%s': expected Ready, got %s", d->name, plx_wire_msg_name(env->msg_case));
        plx_wire_release(&d->wire);
        r = -EPROTO;
        goto out;
    }
    plx_wire_release(&d->wire);
    r = 0;
out:
    plx_chan_close(zchan);
    if (zsock)
        zmq_close(zsock);
    free(rg);
    free(rgp);
    free(sg);
    free(sgp);
    free(pp);
    free(ppp);
    free(pl);
    free(plp);
    return r;
}

/* ---- process start and attach ---------------------------------------------------------------------------- */

static char *find_runner(void)
{
    const char *env = getenv("PLEXUS_DEVICE_RUNNER");
    if (env && *env)
        return strdup(env);
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = 0;
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = 0;
            char *p;
            if (asprintf(&p, "%s/plexus-device-runner", self) >= 0) {
                if (access(p, X_OK) == 0)
                    return p;
                free(p);
            }
        }
    }
    return strdup("plexus-device-runner");
}

/* Resolve a program name the way execvp would, before fork (execvp is not async-signal-safe). */
static char *resolve_program(const char *prog)
{
    if (strchr(prog, '/'))
        return strdup(prog);
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = 0;
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = 0;
            char *p;
            if (asprintf(&p, "%s/%s", self, prog) >= 0) {
                if (access(p, X_OK) == 0)
                    return p;
                free(p);
            }
        }
    }
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    char *copy = strdup(path), *save = NULL;
    for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
        char *p;
        if (asprintf(&p, "%s/%s", *dir ? dir : ".", prog) < 0)
            continue;
        if (access(p, X_OK) == 0) {
            free(copy);
            return p;
        }
        free(p);
    }
    free(copy);
    return NULL;
}

/* The device's state block (see struct plx_state_header), made once and kept across restarts. Without one
 * (no memfd here) the device keeps its state privately and a restart starts it fresh. */
static void make_state_block(hub_device *d)
{
    if (d->state_fd >= 0)
        return;
    int fd = memfd_create("plexus-state", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return;
    void *p = MAP_FAILED;
    if (ftruncate(fd, PLX_STATE_BLOCK_SIZE) == 0 &&
        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) == 0)
        p = mmap(NULL, PLX_STATE_BLOCK_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        close(fd);
        return;
    }
    d->state_fd = fd;
    d->state_hdr = p;
}

static int spawn(hub_device *d, const hub_device_config *cfg, Error **errp)
{
    hub_devmgr *m = d->m;
    char *runner = NULL, *path = NULL;
    const char *prog = cfg->program;
    if (!prog) {
        runner = find_runner();
        prog = runner;
    }
    path = prog ? resolve_program(prog) : NULL;
    if (!path) {
        error_setg(errp, "device '%s': cannot find the program '%s'%s", d->name, prog ? prog : "(none)",
                   cfg->program ? "" : " (set PLEXUS_DEVICE_RUNNER or install plexus-device-runner)");
        free(runner);
        return -ENOENT;
    }

    int sv[2] = { -1, -1 };
    if (!d->tcp && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        error_setg(errp, "device '%s': socketpair: %s", d->name, strerror(errno));
        free(runner);
        free(path);
        return -errno;
    }

    /* argv and environment, built before fork. */
    size_t n_extra = 0;
    while (cfg->argv && cfg->argv[n_extra])
        n_extra++;
    char **argv = calloc(n_extra + 3, sizeof(char *));
    size_t n_env = 0;
    while (environ[n_env])
        n_env++;
    char **envp = calloc(n_env + 6, sizeof(char *));
    char *e_ep = NULL, *e_name = NULL, *e_fd = NULL, *e_state = NULL;
    if (!d->tcp)
        make_state_block(d);
    if (d->state_fd >= 0 && asprintf(&e_state, "PLEXUS_STATE_FD=%d", d->state_fd) < 0)
        e_state = NULL;
    int devnull = -1, ret = -ENOMEM;
    if (!argv || !envp || asprintf(&e_ep, "PLEXUS_ENDPOINT=%s", d->endpoint) < 0 ||
        asprintf(&e_name, "PLEXUS_DEVICE_NAME=%s", d->name) < 0 ||
        asprintf(&e_fd, "PLEXUS_FD_SOCKET=%d", sv[1]) < 0) {
        error_setg(errp, "device '%s': out of memory", d->name);
        goto out;
    }
    size_t a = 0;
    argv[a++] = (char *)prog;
    if (!cfg->program)
        argv[a++] = (char *)cfg->plugin;
    for (size_t i = 0; i < n_extra; i++)
        argv[a++] = (char *)cfg->argv[i];
    size_t k = 0;
    for (size_t i = 0; i < n_env; i++)
        if (strncmp(environ[i], "PLEXUS_ENDPOINT=", 16) && strncmp(environ[i], "PLEXUS_DEVICE_NAME=", 19) &&
            strncmp(environ[i], "PLEXUS_FD_SOCKET=", 17) && strncmp(environ[i], "PLEXUS_ATTACH=", 14) &&
            strncmp(environ[i], "PLEXUS_STATE_FD=", 16))
            envp[k++] = environ[i];
    envp[k++] = e_ep;
    envp[k++] = e_name;
    if (sv[1] >= 0)
        envp[k++] = e_fd;
    if (e_state)
        envp[k++] = e_state;
    int in_fd = cfg->stdin_fd;
    if (in_fd < 0) {
        devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
        in_fd = devnull;
    }
    int out_fd = cfg->stdout_fd;
    int inherit[64];
    unsigned n_inherit = 0;
    if (!d->tcp && !cfg->ram_by_message)
        for (size_t i = 0; i < m->env.n_ram && n_inherit < 62; i++)
            if (ram_granted(cfg, &m->env.ram[i]) && m->env.ram[i].fd > 2)
                inherit[n_inherit++] = m->env.ram[i].fd;
    if (sv[1] >= 0)
        inherit[n_inherit++] = sv[1];
    if (e_state)
        inherit[n_inherit++] = d->state_fd;
    for (unsigned i = 1; i < n_inherit; i++)        /* ascending, for closing the gaps in the child */
        for (unsigned j = i; j > 0 && inherit[j - 1] > inherit[j]; j--) {
            int t = inherit[j];
            inherit[j] = inherit[j - 1];
            inherit[j - 1] = t;
        }

    pid_t pid;
    if (cfg->namespaces) {
        /* clone() with no new stack behaves as fork(), in new namespaces; unprivileged: with a user namespace */
        unsigned long fl = SIGCHLD | (cfg->namespaces & HUB_NS_NET ? CLONE_NEWNET : 0) |
                           (cfg->namespaces & HUB_NS_MOUNT ? CLONE_NEWNS : 0) |
                           (cfg->namespaces & HUB_NS_PID ? CLONE_NEWPID : 0);
        pid = (pid_t)syscall(SYS_clone, fl, NULL, NULL, NULL, NULL);
        if (pid < 0 && errno == EPERM)
            pid = (pid_t)syscall(SYS_clone, fl | CLONE_NEWUSER, NULL, NULL, NULL, NULL);
        if (pid < 0) {
            error_setg(errp, "device '%s': the kernel refuses new namespaces (%s%s%s): %s", d->name,
                       cfg->namespaces & HUB_NS_NET ? " net" : "", cfg->namespaces & HUB_NS_MOUNT ? " mount" : "",
                       cfg->namespaces & HUB_NS_PID ? " pid" : "", strerror(errno));
            ret = -errno;
            goto out;
        }
    } else {
        pid = fork();
    }
    if (pid < 0) {
        error_setg(errp, "device '%s': fork: %s", d->name, strerror(errno));
        ret = -errno;
        goto out;
    }
    if (pid == 0) {
        /* Child: only async-signal-safe calls until execve. */
        if (cfg->namespaces & HUB_NS_MOUNT)
            mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);   /* nothing it mounts leaks out */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        /* Its own process group: a Ctrl-C at the terminal reaches the hub, which shuts devices down in order. */
        setpgid(0, 0);
        static const int dfl[] = { SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGCHLD, SIGPIPE };
        struct sigaction sa = { .sa_handler = SIG_DFL };
        for (unsigned i = 0; i < sizeof(dfl) / sizeof(dfl[0]); i++)
            sigaction(dfl[i], &sa, NULL);
        if (in_fd >= 0 && in_fd != 0)
            dup2(in_fd, 0);
        if (out_fd >= 0 && out_fd != 1)
            dup2(out_fd, 1);
        /* Every descriptor the device is not granted is closed before its code runs, whatever the hub
           process holds without O_CLOEXEC (stdio stays). inherit[] is sorted ascending above. */
        unsigned lo = 3;
        for (unsigned i = 0; i < n_inherit; i++) {
            if ((unsigned)inherit[i] > lo)
                syscall(SYS_close_range, lo, (unsigned)inherit[i] - 1, 0);
            if ((unsigned)inherit[i] + 1 > lo)
                lo = (unsigned)inherit[i] + 1;
        }
        syscall(SYS_close_range, lo, ~0u, 0);
        for (unsigned i = 0; i < n_inherit; i++)
            fcntl(inherit[i], F_SETFD, 0);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execve(path, argv, envp);
        _exit(127);
    }
    d->pid = pid;
    d->spawned = true;
    d->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (sv[1] >= 0) {
        close(sv[1]);
        sv[1] = -1;
        d->fdsock = sv[0];
        sv[0] = -1;
    }
    ret = 0;
out:
    if (sv[0] >= 0)
        close(sv[0]);
    if (sv[1] >= 0)
        close(sv[1]);
    if (devnull >= 0)
        close(devnull);
    free(e_ep);
    free(e_name);
    free(e_fd);
    free(e_state);
    free(argv);
    free(envp);
    free(runner);
    free(path);
    return ret;
}

/* Wait on the attach socket for the device called d->name; hand it the endpoint. */
static int accept_attach(hub_device *d, uint64_t deadline, Error **errp)
{
    hub_devmgr *m = d->m;
    for (;;) {
        uint64_t now = hub_now_ms();
        if (now >= deadline) {
            error_setg(errp, "device '%s': nothing attached on %s in time", d->name, m->attach_path);
            return -ETIMEDOUT;
        }
        struct pollfd p = { .fd = m->attach_fd, .events = POLLIN };
        int r = poll(&p, 1, (int)(deadline - now));
        if (r <= 0)
            continue;
        int c = accept4(m->attach_fd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0)
            continue;
        struct pollfd pc = { .fd = c, .events = POLLIN };
        char req[MAX_NAME + 16];
        ssize_t n = -1;
        if (poll(&pc, 1, 2000) > 0)
            n = recv(c, req, sizeof(req) - 1, 0);
        if (n <= 7 || strncmp(req, "attach ", 7) != 0) {
            static const char bad[] = "error: expected 'attach NAME'";
            send(c, bad, sizeof(bad) - 1, MSG_NOSIGNAL);
            close(c);
            continue;
        }
        req[n] = 0;
        if (strcmp(req + 7, d->name) != 0) {
            /* Another device, perhaps added later: it retries. */
            send(c, "retry", 5, MSG_NOSIGNAL);
            close(c);
            continue;
        }
        char rep[600];
        int len = snprintf(rep, sizeof(rep), "ok %s", d->endpoint);
        if (send(c, rep, (size_t)len, MSG_NOSIGNAL) != len) {
            close(c);
            continue;
        }
        struct ucred cr;
        socklen_t cl = sizeof(cr);
        if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cr, &cl) == 0)
            d->peer_pid = cr.pid;
        d->fdsock = c;
        return 0;
    }
}

/* ---- manager --------------------------------------------------------------------------------------------- */

hub_devmgr *
hub_devmgr_new(const hub_devmgr_env *env, Error **errp)
{
    if (!env || !env->sysmem || !env->clock) {
        error_setg(errp, "device manager: the environment needs sysmem and clock");
        return NULL;
    }
    hub_devmgr *m = calloc(1, sizeof(*m));
    if (!m) {
        error_setg(errp, "device manager: out of memory");
        return NULL;
    }
    m->env = *env;
    m->attach_fd = -1;
    m->env.ram = NULL;
    m->env.run_dir = NULL;
    if (env->n_ram) {
        hub_ram_block *ram = calloc(env->n_ram, sizeof(*ram));
        if (!ram)
            goto fail;
        for (size_t i = 0; i < env->n_ram; i++) {
            ram[i] = env->ram[i];
            ram[i].name = strdup(env->ram[i].name ? env->ram[i].name : "");
            if (!ram[i].name) {
                m->env.ram = ram;
                m->env.n_ram = i;
                goto fail;
            }
        }
        m->env.ram = ram;
    }
    if (env->run_dir) {
        m->run_dir = strdup(env->run_dir);
        if (!m->run_dir)
            goto fail;
        mkdir(m->run_dir, 0700);
    } else {
        const char *tmp = getenv("TMPDIR");
        if (asprintf(&m->run_dir, "%s/plexus-XXXXXX", tmp && *tmp ? tmp : "/tmp") < 0) {
            m->run_dir = NULL;
            goto fail;
        }
        if (!mkdtemp(m->run_dir)) {
            error_setg(errp, "device manager: cannot create a run directory %s: %s", m->run_dir, strerror(errno));
            goto fail_quiet;
        }
        m->own_run_dir = true;
    }
    if (asprintf(&m->attach_path, "%s/attach.sock", m->run_dir) < 0) {
        m->attach_path = NULL;
        goto fail;
    }
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(m->attach_path) >= sizeof(sa.sun_path)) {
        error_setg(errp, "device manager: run directory path too long for a UNIX socket: %s", m->run_dir);
        goto fail_quiet;
    }
    strcpy(sa.sun_path, m->attach_path);
    unlink(m->attach_path);
    m->attach_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (m->attach_fd < 0 || bind(m->attach_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        listen(m->attach_fd, 16) < 0) {
        error_setg(errp, "device manager: cannot listen on %s: %s", m->attach_path, strerror(errno));
        goto fail_quiet;
    }
    m->zctx = zmq_ctx_new();
    if (!m->zctx) {
        error_setg(errp, "device manager: cannot create a ZeroMQ context");
        goto fail_quiet;
    }
    return m;
fail:
    error_setg(errp, "device manager: out of memory");
fail_quiet:
    hub_devmgr_free(m);
    return NULL;
}

static void cfg_free(hub_device_config *c);
static void close_channel(hub_device *d);

static void device_destroy(hub_device *d)
{
    hub_devmgr *m = d->m;
    if (d->pid > 0) {
        kill(d->pid, SIGKILL);
        waitpid(d->pid, NULL, 0);
        d->pid = 0;
    }
    if (d->state_hdr)
        munmap(d->state_hdr, PLX_STATE_BLOCK_SIZE);
    if (d->state_fd >= 0)
        close(d->state_fd);
    free(d->plog);
    if (d->lockstep)
        vtimer_del(&d->grant_vt);
    if (d->pidfd >= 0)
        close(d->pidfd);
    for (unsigned i = 0; i < d->n_timers; i++) {
        if (d->timers[i]) {
            vtimer_del(&d->timers[i]->vt);
            free(d->timers[i]);
        }
    }
    free(d->timers);
    for (unsigned i = 0; i < d->n_regions; i++) {
        hub_region *r = &d->regions[i];
        if (r->mapped) {
            memory_region_del_subregion(m->env.sysmem, &r->mr);
            memory_region_destroy(&r->mr);
        }
        if (r->shadow_map)
            munmap(r->shadow_map, r->shadow_len);
        if (r->shadow_fd >= 0)
            close(r->shadow_fd);
        free(r->mr_name);
    }
    free_declaration(d);
    cfg_free(d->cfg);
    free(d->batch);
    free(d->dma_buf);
    free(d->dma_window);
    close_channel(d);
    if (d->fdsock >= 0)
        close(d->fdsock);
    if (d->ipc_path) {
        unlink(d->ipc_path);
        free(d->ipc_path);
    }
    free(d->endpoint);
    free(d->model);
    free(d->name);
    free(d);
}

static void close_channel(hub_device *d)
{
    plx_wire_fini(&d->wire);
    plx_chan_close(d->chan);
    d->chan = NULL;
    d->ring = false;
    if (d->sock)
        zmq_close(d->sock);
    d->sock = NULL;
}

/* Whether the device moves to the ring after the handshake: on this host unless the config or PLEXUS_TRANSPORT
 * says otherwise (and if the device can; see handshake()); never for tcp:// and explicit endpoints. */
static int choose_transport(hub_device *d, const hub_device_config *cfg, Error **errp)
{
    bool remote = cfg->endpoint && strncmp(cfg->endpoint, "tcp://", 6) == 0;
    hub_transport t = cfg->transport;
    if (t == HUB_TRANSPORT_AUTO) {
        const char *e = getenv("PLEXUS_TRANSPORT");
        t = remote || cfg->endpoint ? HUB_TRANSPORT_ZMQ
            : e && strcmp(e, "zmq") == 0 ? HUB_TRANSPORT_ZMQ : HUB_TRANSPORT_RING;
    }
    if (t == HUB_TRANSPORT_RING && cfg->endpoint) {
        error_setg(errp, "device '%s': the ring transport is for devices on this host; endpoint '%s' is ZeroMQ",
                   d->name, cfg->endpoint);
        return -EINVAL;
    }
    d->ring_wanted = t == HUB_TRANSPORT_RING;
    d->ring_required = cfg->transport == HUB_TRANSPORT_RING;
    return 0;
}

static int bind_channel(hub_device *d, const hub_device_config *cfg, Error **errp)
{
    hub_devmgr *m = d->m;
    if (choose_transport(d, cfg, errp) < 0)
        return -EINVAL;
    d->sock = zmq_socket(m->zctx, ZMQ_PAIR);
    if (!d->sock) {
        error_setg(errp, "device '%s': cannot create a ZeroMQ socket: %s", d->name, zmq_strerror(errno));
        return -EIO;
    }
    int linger = 0, hwm = 0;
    int64_t maxmsg = PLX_WIRE_MAX_FRAME;
    zmq_setsockopt(d->sock, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_setsockopt(d->sock, ZMQ_SNDHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(d->sock, ZMQ_RCVHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(d->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg));
    int slice = HUB_RECV_SLICE_MS;
    zmq_setsockopt(d->sock, ZMQ_RCVTIMEO, &slice, sizeof(slice));
    d->chan = plx_chan_zmq(d->sock);
    if (!d->chan)
        return -ENOMEM;
    plx_wire_init(&d->wire, d->chan);
    char ep[600];
    if (cfg->endpoint && strncmp(cfg->endpoint, "tcp://", 6) == 0) {
        d->tcp = true;
        snprintf(ep, sizeof(ep), "%s", cfg->endpoint);
        size_t l = strlen(ep);
        if (l >= 2 && strcmp(ep + l - 2, ":0") == 0)
            strcpy(ep + l - 1, "*");
    } else if (cfg->endpoint) {
        snprintf(ep, sizeof(ep), "%s", cfg->endpoint);
    } else {
        char clean[40];
        size_t j = 0;
        for (size_t i = 0; d->name[i] && j < sizeof(clean) - 1; i++)
            clean[j++] = isalnum((unsigned char)d->name[i]) || d->name[i] == '-' ? d->name[i] : '_';
        clean[j] = 0;
        if (asprintf(&d->ipc_path, "%s/dev%u-%s.ipc", m->run_dir, m->next_id++, clean) < 0) {
            d->ipc_path = NULL;
            return -ENOMEM;
        }
        snprintf(ep, sizeof(ep), "ipc://%s", d->ipc_path);
    }
    if (zmq_bind(d->sock, ep) < 0) {
        error_setg(errp, "device '%s': cannot bind %s: %s", d->name, ep, zmq_strerror(errno));
        return -EIO;
    }
    char last[600];
    size_t ll = sizeof(last);
    if (zmq_getsockopt(d->sock, ZMQ_LAST_ENDPOINT, last, &ll) == 0 && ll > 1)
        d->endpoint = strdup(last);
    else
        d->endpoint = strdup(ep);
    return d->endpoint ? 0 : -ENOMEM;
}

static int map_regions(hub_device *d, Error **errp)
{
    hub_devmgr *m = d->m;
    for (unsigned i = 0; i < d->n_regions; i++) {
        hub_region *r = &d->regions[i];
        if (asprintf(&r->mr_name, "%s.%s", d->name, r->name) < 0) {
            r->mr_name = NULL;
            error_setg(errp, "device '%s': out of memory", d->name);
            return -ENOMEM;
        }
        memory_region_init_io(&r->mr, NULL, &r->ops, r, r->mr_name, r->size);
        memory_region_add_subregion(m->env.sysmem, r->base, &r->mr);
        r->mapped = true;
    }
    return 0;
}

/* ---- supervision ----------------------------------------------------------------------------------------- */

static char *dup_or_null(const char *s, bool *ok)
{
    if (!s)
        return NULL;
    char *c = strdup(s);
    if (!c)
        *ok = false;
    return c;
}

static char **dup_strv(const char *const *v, size_t n, bool *ok)
{
    if (!v)
        return NULL;
    char **c = calloc(n + 1, sizeof(char *));
    if (!c) {
        *ok = false;
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        c[i] = dup_or_null(v[i], ok);
    return c;
}

static void free_strv(char **v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static size_t argv_len(const char *const *v)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    return n;
}

static void cfg_free(hub_device_config *c)
{
    if (!c)
        return;
    free((char *)c->name);
    free((char *)c->program);
    free((char *)c->plugin);
    free_strv((char **)c->argv, argv_len(c->argv));
    for (size_t i = 0; c->props && i < c->n_props; i++) {
        free((char *)c->props[i].key);
        free((char *)c->props[i].value);
    }
    free((void *)c->props);
    for (size_t i = 0; c->regions && i < c->n_regions; i++)
        free((char *)c->regions[i].region);
    free((void *)c->regions);
    free((void *)c->irqs);
    free_strv((char **)c->ram_grants, c->n_ram_grants);
    free((char *)c->endpoint);
    free((char *)c->sandbox_policy);
    free_strv((char **)c->sandbox_allow, c->n_sandbox_allow);
    free(c);
}

/* A deep copy of @src, for starting the device again later. */
static hub_device_config *cfg_dup(const hub_device_config *src)
{
    hub_device_config *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    bool ok = true;
    *c = *src;
    c->name = dup_or_null(src->name, &ok);
    c->program = dup_or_null(src->program, &ok);
    c->plugin = dup_or_null(src->plugin, &ok);
    c->argv = (const char *const *)dup_strv(src->argv, argv_len(src->argv), &ok);
    c->props = NULL;
    c->regions = NULL;
    c->irqs = NULL;
    if (src->n_props) {
        hub_prop *p = calloc(src->n_props, sizeof(*p));
        ok = ok && p;
        for (size_t i = 0; p && i < src->n_props; i++) {
            p[i].key = dup_or_null(src->props[i].key, &ok);
            p[i].value = dup_or_null(src->props[i].value, &ok);
        }
        c->props = p;
    }
    if (src->n_regions) {
        hub_region_map *r = calloc(src->n_regions, sizeof(*r));
        ok = ok && r;
        for (size_t i = 0; r && i < src->n_regions; i++) {
            r[i].region = dup_or_null(src->regions[i].region, &ok);
            r[i].base = src->regions[i].base;
        }
        c->regions = r;
    }
    if (src->n_irqs) {
        hub_irq_map *q = calloc(src->n_irqs, sizeof(*q));
        ok = ok && q;
        if (q)
            memcpy(q, src->irqs, sizeof(*q) * src->n_irqs);
        c->irqs = q;
    }
    c->ram_grants = (const char *const *)dup_strv(src->ram_grants, src->n_ram_grants, &ok);
    c->endpoint = dup_or_null(src->endpoint, &ok);
    c->sandbox_policy = dup_or_null(src->sandbox_policy, &ok);
    c->sandbox_allow = (const char *const *)dup_strv(src->sandbox_allow, src->n_sandbox_allow, &ok);
    if (!ok) {
        cfg_free(c);
        return NULL;
    }
    return c;
}

/* Start a failed device again: a fresh process behind the same, still mapped, regions. */
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
static void redeliver(hub_device *d, struct hub_posted *w, unsigned n, uint64_t dropped)
{
    for (unsigned i = 0; i < n && !d->failed; i++) {
        Plx__MmioWrite wr = PLX__MMIO_WRITE__INIT;
        wr.seq = ++d->seq;
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
            d->last_posted = wr.seq;
    }
    if (n)
        hub_dev_log(d->m, d->name, 5, "delivered again %u posted write%s the failed process had not applied", n,
                    n == 1 ? "" : "s");
    if (dropped)
        hub_dev_log(d->m, d->name, 4, "%" PRIu64 " posted write%s may be lost (more than %u were unconfirmed)",
                    dropped, dropped == 1 ? "" : "s", HUB_PLOG_MAX);
}

static void restart_device(hub_device *d)
{
    hub_devmgr *m = d->m;
    const hub_device_config *cfg = d->cfg;
    d->restarts++;
    /* What the old process applied decides what goes again to the new one; then the block is the new one's. A
     * write whose callback was running when the process died may have taken effect (a byte sent, say): it is
     * not delivered again, and the log says so. */
    uint64_t applied = applied_seq(d), in_doubt = 0;
    plog_drop_until(d, applied);
    if (d->state_hdr) {
        uint64_t applying = __atomic_load_n(&d->state_hdr->applying_seq, __ATOMIC_ACQUIRE);
        if (applying > applied && d->plog_n && d->plog[d->plog_head].seq == applying) {
            const struct hub_posted *w = &d->plog[d->plog_head];
            hub_dev_log(m, d->name, 4, "a posted write (region %u, offset 0x%" PRIx64 ", %u bytes, 0x%" PRIx64
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
    if (d->pid > 0) {
        kill(d->pid, SIGKILL);
        waitpid(d->pid, NULL, 0);
        d->pid = 0;
    }
    if (d->pidfd >= 0)
        close(d->pidfd);
    if (d->fdsock >= 0)
        close(d->fdsock);
    d->pidfd = d->fdsock = -1;
    for (unsigned i = 0; i < d->n_timers; i++) {
        if (d->timers[i]) {
            vtimer_del(&d->timers[i]->vt);
            free(d->timers[i]);
        }
    }
    free(d->timers);
    d->timers = NULL;
    d->n_timers = 0;
    close_channel(d);
    if (d->ipc_path) {
        unlink(d->ipc_path);
        free(d->ipc_path);
        d->ipc_path = NULL;
    }
    free(d->endpoint);
    d->endpoint = NULL;
    d->seq = d->last_posted = 0;
    d->batch_n = 0;
    d->batch_len = 0;
    d->exited = d->said_goodbye = d->spawned = false;
    d->exit_desc[0] = 0;

    Error *err = NULL;
    uint64_t deadline = hub_now_ms() + SPAWN_HELLO_TIMEOUT_MS;
    int r = bind_channel(d, cfg, &err);
    if (r == 0 && cfg->attach) {
        deadline = hub_now_ms() + (cfg->attach_timeout_ms ? cfg->attach_timeout_ms : 10000);
        if (!d->tcp)
            r = accept_attach(d, deadline, &err);
    } else if (r == 0) {
        r = spawn(d, cfg, &err);
    }
    if (r == 0)
        r = handshake(d, cfg, deadline, true, &err);
    if (r == 0 && d->fdsock >= 0 && !cfg->sandbox && !d->ring) {
        close(d->fdsock);
        d->fdsock = -1;
    }
    if (r == 0 && (d->capabilities & PLX__CAPABILITY__CAP_WRITE_BATCH) && !d->batch &&
        !(d->batch = malloc(HUB_BATCH_HEAD + HUB_BATCH_MAX * HUB_BATCH_ENTRY_MAX)))
        r = -ENOMEM;
    if (r < 0) {
        hub_dev_log(m, d->name, 3, "restart %u of %u failed: %s", d->restarts, d->max_restarts,
                    err ? error_get_pretty(err) : strerror(-r));
        error_free(err);
        if (d->pid > 0) {
            kill(d->pid, SIGKILL);
            waitpid(d->pid, NULL, 0);
            d->pid = 0;
        }
        d->failed_at = hub_now_ms();
        /* the next process gets them */
        for (unsigned i = 0; pending && i < n_pending; i++)
            hub_dev_log_posted(d, pending[i].seq, pending[i].region, pending[i].addr, pending[i].size,
                               pending[i].data);
        d->plog_dropped += dropped;
        free(pending);
        return;
    }
    d->failed = false;
    d->dma_self_logged = false;
    hub_dev_log(m, d->name, 5, "restarted (%u of %u)", d->restarts, d->max_restarts);
    redeliver(d, pending, pending ? n_pending : 0, dropped);
    free(pending);
}

bool
hub_dev_await_restart(hub_device *d)
{
    hub_devmgr *m = d->m;
    while (d->failed && d->cfg && d->restarts < d->max_restarts && !m->shutting_down && !d->in_wait &&
           !d->dma_depth) {
        uint64_t due = d->failed_at + d->backoff_ms, now = hub_now_ms();
        if (now < due) {
            struct timespec ts = { (time_t)((due - now) / 1000), (long)((due - now) % 1000) * 1000000 };
            nanosleep(&ts, NULL);
        }
        restart_device(d);
    }
    return !d->failed;
}

static void supervise(hub_devmgr *m)
{
    if (m->shutting_down)
        return;
    uint64_t now = 0;
    for (hub_device *d = m->devs; d; d = d->next) {
        if (!d->failed || !d->cfg || d->restarts >= d->max_restarts)
            continue;
        if (!now)
            now = hub_now_ms();
        if (now >= d->failed_at + d->backoff_ms)
            restart_device(d);
    }
}

hub_device *
hub_devmgr_add(hub_devmgr *m, const hub_device_config *cfg, Error **errp)
{
    if (!cfg || !name_ok(cfg->name)) {
        error_setg(errp, "device without a usable name");
        return NULL;
    }
    for (hub_device *o = m->devs; o; o = o->next)
        if (strcmp(o->name, cfg->name) == 0) {
            error_setg(errp, "device '%s' is already added", cfg->name);
            return NULL;
        }
    if (!cfg->attach && !cfg->program && !cfg->plugin) {
        error_setg(errp, "device '%s': give a program, a plugin, or attach mode", cfg->name);
        return NULL;
    }
    if (cfg->namespaces && (cfg->attach || (cfg->endpoint && strncmp(cfg->endpoint, "ipc://", 6)))) {
        error_setg(errp, "device '%s': namespaces apply to devices the hub spawns on an ipc channel only",
                   cfg->name);
        return NULL;
    }
    hub_device *d = calloc(1, sizeof(*d));
    if (!d) {
        error_setg(errp, "device '%s': out of memory", cfg->name);
        return NULL;
    }
    d->m = m;
    d->fdsock = -1;
    d->pidfd = -1;
    d->state_fd = -1;
    d->name = strdup(cfg->name);
    d->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : 1000;
    d->lockstep = cfg->lockstep;
    vtimer_init(&d->grant_vt, m->env.clock, grant_cb, d);
    if (cfg->max_restarts) {
        d->max_restarts = cfg->max_restarts;
        d->backoff_ms = cfg->restart_backoff_ms ? cfg->restart_backoff_ms : 100;
        d->cfg = cfg_dup(cfg);
        if (!d->cfg) {
            free(d->name);
            d->name = NULL;
        }
    }
    if (!d->name) {
        cfg_free(d->cfg);
        free(d);
        error_setg(errp, "device '%s': out of memory", cfg->name);
        return NULL;
    }
    d->dma_window = calloc(m->env.n_ram ? m->env.n_ram : 1, sizeof(bool));
    if (!d->dma_window) {
        error_setg(errp, "device '%s': out of memory", cfg->name);
        goto fail;
    }
    for (size_t i = 0; i < m->env.n_ram; i++)
        d->dma_window[i] = ram_granted(cfg, &m->env.ram[i]);
    uint64_t deadline;
    if (bind_channel(d, cfg, errp) < 0)
        goto fail;
    if (cfg->attach) {
        deadline = hub_now_ms() + (cfg->attach_timeout_ms ? cfg->attach_timeout_ms : 10000);
        if (!d->tcp && accept_attach(d, deadline, errp) < 0)
            goto fail;
    } else {
        if (spawn(d, cfg, errp) < 0)
            goto fail;
        deadline = hub_now_ms() + SPAWN_HELLO_TIMEOUT_MS;
    }
    if (handshake(d, cfg, deadline, false, errp) < 0)
        goto fail;
    if (d->fdsock >= 0 && !cfg->sandbox && !d->ring) {
        close(d->fdsock);
        d->fdsock = -1;
    }
    if (d->capabilities & PLX__CAPABILITY__CAP_WRITE_BATCH) {
        d->batch = malloc(HUB_BATCH_HEAD + HUB_BATCH_MAX * HUB_BATCH_ENTRY_MAX);
        if (!d->batch) {
            error_setg(errp, "device '%s': out of memory", d->name);
            goto fail;
        }
    }
    if (map_regions(d, errp) < 0)
        goto fail;
    d->next = m->devs;
    m->devs = d;
    m->n_devs++;
    return d;
fail:
    device_destroy(d);
    return NULL;
}

int
hub_devmgr_poll(hub_devmgr *m, int timeout_ms)
{
    return hub_devmgr_wait(m, timeout_ms, -1);
}

int
hub_devmgr_wait(hub_devmgr *m, int timeout_ms, int fd)
{
    supervise(m);
    unsigned n = 1;
    for (hub_device *d = m->devs; d; d = d->next)
        n += 2;
    if (n > m->cap_items) {
        zmq_pollitem_t *it = realloc(m->items, sizeof(*it) * n);
        hub_device **who = realloc(m->item_dev, sizeof(*who) * n);
        bool *chan = realloc(m->item_chan, sizeof(*chan) * n);
        if (it)
            m->items = it;
        if (who)
            m->item_dev = who;
        if (chan)
            m->item_chan = chan;
        if (!it || !who || !chan)
            return -ENOMEM;
        m->cap_items = n;
    }
    hub_devmgr_flush(m);
    unsigned k = 0;
    bool ready = false;
    for (hub_device *d = m->devs; d; d = d->next) {
        if (d->failed)
            continue;
        /* A lockstep device is served only while the hub waits on it, so that what it sends happens at a
         * virtual time the hub decides; something it sends on its own (input from outside) gets it a grant at
         * the next quantum boundary instead of being served here. */
        bool pending = plx_chan_poll_prepare(d->chan, &m->items[k]);
        if (d->lockstep && pending)
            hub_dev_lockstep_touch(d);
        else
            ready |= pending;
        m->item_chan[k] = true;
        m->item_dev[k++] = d;
        if (d->pidfd >= 0) {
            m->items[k] = (zmq_pollitem_t){ .fd = d->pidfd, .events = ZMQ_POLLIN };
            m->item_chan[k] = false;
            m->item_dev[k++] = d;
        }
    }
    unsigned nchan = k;
    if (fd >= 0) {
        m->items[k] = (zmq_pollitem_t){ .fd = fd, .events = ZMQ_POLLIN };
        m->item_chan[k] = false;
        m->item_dev[k++] = NULL;
    }
    if (k == 0) {
        if (timeout_ms > 0) {
            struct timespec ts = { timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000 };
            nanosleep(&ts, NULL);
        }
        return 0;
    }
    int r = zmq_poll(m->items, (int)k, ready ? 0 : timeout_ms);
    int e = errno;
    k = nchan;      /* the caller's fd is the caller's to read */
    for (unsigned i = 0; i < k; i++)
        if (m->item_chan[i])
            plx_chan_poll_done(m->item_dev[i]->chan, &m->items[i]);
    if (r < 0)
        return e == EINTR ? 0 : -e;
    int served = 0;
    for (unsigned i = 0; i < k; i++) {
        hub_device *d = m->item_dev[i];
        if (m->item_chan[i] && d->lockstep && (m->items[i].revents & ZMQ_POLLIN))
            hub_dev_lockstep_touch(d);
        else if (m->item_chan[i] && !d->lockstep && (ready || (m->items[i].revents & ZMQ_POLLIN)))
            served += hub_dev_drain(d);
        else if (!m->item_chan[i] && (m->items[i].revents & ZMQ_POLLIN) && (d->lockstep || !hub_dev_drain(d)))
            hub_dev_reap(d);
    }
    return served;
}

void
hub_devmgr_flush(hub_devmgr *m)
{
    for (hub_device *d = m->devs; d; d = d->next)
        if (d->batch_n)
            hub_dev_flush(d);
}

void
hub_devmgr_free(hub_devmgr *m)
{
    if (!m)
        return;
    m->shutting_down = true;
    Plx__Shutdown sd = PLX__SHUTDOWN__INIT;
    for (hub_device *d = m->devs; d; d = d->next) {
        if (d->failed || d->exited)
            continue;
        Plx__Envelope env = PLX__ENVELOPE__INIT;
        env.msg_case = PLX__ENVELOPE__MSG_SHUTDOWN;
        env.shutdown = &sd;
        hub_dev_send(d, &env);
    }
    for (hub_device *d = m->devs; d; d = d->next)
        if (d->failed && d->pid > 0)
            kill(d->pid, SIGKILL);     /* hung or broken: no grace */
    uint64_t deadline = hub_now_ms() + SHUTDOWN_GRACE_MS;
    for (;;) {
        bool waiting = false;
        for (hub_device *d = m->devs; d; d = d->next) {
            hub_dev_drain(d);
            if (d->pid > 0)
                hub_dev_reap(d);
            if (d->pid > 0 || (!d->spawned && !d->failed && !d->said_goodbye))
                waiting = true;
        }
        if (!waiting || hub_now_ms() >= deadline)
            break;
        struct timespec ts = { 0, 5 * 1000000 };
        nanosleep(&ts, NULL);
    }
    while (m->devs) {
        hub_device *d = m->devs;
        m->devs = d->next;
        if (d->pid > 0)
            hub_dev_log(m, d->name, 4, "device did not exit after Shutdown: killed");
        device_destroy(d);
    }
    free(m->items);
    free(m->item_dev);
    free(m->item_chan);
    if (m->zctx)
        zmq_ctx_term(m->zctx);
    if (m->attach_fd >= 0)
        close(m->attach_fd);
    if (m->attach_path) {
        unlink(m->attach_path);
        free(m->attach_path);
    }
    if (m->own_run_dir)
        rmdir(m->run_dir);
    free(m->run_dir);
    if (m->env.ram) {
        for (size_t i = 0; i < m->env.n_ram; i++)
            free((char *)m->env.ram[i].name);
        free((void *)m->env.ram);
    }
    free(m);
}

const char *
hub_device_name(const hub_device *d)
{
    return d->name;
}

unsigned
hub_device_n_regions(const hub_device *d)
{
    return d->n_regions;
}

int
hub_device_region_info(const hub_device *d, unsigned i, const char **name, uint64_t *base, uint64_t *size)
{
    if (i >= d->n_regions)
        return -ENOENT;
    if (name)
        *name = d->regions[i].name;
    if (base)
        *base = d->regions[i].base;
    if (size)
        *size = d->regions[i].size;
    return 0;
}

const char *
hub_device_model(const hub_device *d)
{
    return d->model;
}

const char *
hub_device_endpoint(const hub_device *d)
{
    return d->endpoint;
}

int
hub_device_pid(const hub_device *d)
{
    return d->pid > 0 ? d->pid : 0;
}

unsigned
hub_device_restarts(const hub_device *d)
{
    return d->restarts;
}

bool
hub_device_failed(const hub_device *d)
{
    return d->failed;
}

uint64_t
hub_device_region_size(const hub_device *d, const char *region)
{
    for (unsigned i = 0; i < d->n_regions; i++)
        if (region && strcmp(d->regions[i].name, region) == 0)
            return d->regions[i].size;
    return 0;
}

const char *
hub_devmgr_attach_socket(const hub_devmgr *m)
{
    return m->attach_path;
}

void
hub_devmgr_get_stats(const hub_devmgr *m, hub_devmgr_stats *out)
{
    /* The manager's figures are the sum over its devices (keeps the access paths to one counter). */
    memset(out, 0, sizeof(*out));
    for (const hub_device *d = m->devs; d; d = d->next) {
        out->sync_reads += d->stats.sync_reads;
        out->sync_writes += d->stats.sync_writes;
        out->posted_writes += d->stats.posted_writes;
        out->shadow_reads += d->stats.shadow_reads;
        out->irq_events += d->stats.irq_events;
        out->dma_messages += d->stats.dma_messages;
        out->dma_refused += d->stats.dma_refused;
        out->grants += d->stats.grants;
    }
}

void
hub_device_get_stats(const hub_device *d, hub_devmgr_stats *out)
{
    *out = d->stats;
}

int
hub_device_reset(hub_device *d)
{
    if (d->failed)
        return -EIO;
    Plx__Reset rs = PLX__RESET__INIT;
    if (d->batch_n)
        hub_dev_flush(d);
    rs.seq = d->last_posted = ++d->seq;
    Plx__Envelope env = PLX__ENVELOPE__INIT;
    env.msg_case = PLX__ENVELOPE__MSG_RESET;
    env.reset = &rs;
    return hub_dev_send(d, &env) < 0 ? -EIO : 0;
}

/* ---- in-process entry points for the fuzzer (tests/fuzz): a device without a process ---------------------- */

hub_device *
hub_dev_new_detached(hub_devmgr *m, const char *name, unsigned n_irqs, const char *endpoint)
{
    hub_device *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->m = m;
    d->fdsock = d->pidfd = d->state_fd = -1;
    d->timeout_ms = 100;
    d->name = strdup(name);
    d->regions = calloc(1, sizeof(*d->regions));
    d->irq_names = calloc(n_irqs ? n_irqs : 1, sizeof(char *));
    d->irq_map = calloc(n_irqs ? n_irqs : 1, sizeof(unsigned));
    d->irq_level = calloc(n_irqs ? n_irqs : 1, 1);
    d->props = calloc(1, sizeof(char *));
    d->sock = zmq_socket(m->zctx, ZMQ_PAIR);
    d->chan = d->sock ? plx_chan_zmq(d->sock) : NULL;
    if (!d->name || !d->regions || !d->irq_names || !d->irq_map || !d->irq_level || !d->props || !d->chan ||
        zmq_bind(d->sock, endpoint) < 0) {
        device_destroy(d);
        return NULL;
    }
    for (unsigned i = 0; i < n_irqs; i++) {
        if (asprintf(&d->irq_names[i], "irq%u", i) < 0)
            d->irq_names[i] = NULL;
        d->irq_map[i] = i % 2 ? HUB_IRQ_UNMAPPED : i + 1;   /* some lines connected, some not */
        d->n_irqs++;
    }
    plx_wire_init(&d->wire, d->chan);
    return d;
}

int
hub_dev_feed(hub_device *d, const void *frame, size_t len)
{
    Plx__Envelope *env;
    int r = plx_wire_decode(&d->wire, frame, len, &env);
    if (r == -EBADMSG) {
        hub_dev_log(d->m, d->name, 4, "undecodable frame dropped");
        return r;
    }
    if (r < 0)
        return r;
    hub_dev_serve(d, env);
    return 0;
}

int
hub_dev_feed_declaration(hub_device *d, const void *frame, size_t len)
{
    Plx__Envelope *env;
    int r = plx_wire_decode(&d->wire, frame, len, &env);
    if (r < 0)
        return r;
    if (env->msg_case != PLX__ENVELOPE__MSG_DECLARE) {
        plx_wire_release(&d->wire);
        return -EPROTO;
    }
    /* the declaration is checked into a scratch device, then dropped */
    hub_device t = { .m = d->m, .name = d->name, .fdsock = -1, .pidfd = -1, .state_fd = -1 };
    Error *err = NULL;
    r = take_declaration(&t, env->declare, &err);
    error_free(err);
    free_declaration(&t);
    plx_wire_release(&d->wire);
    return r;
}

void
hub_dev_free_detached(hub_device *d)
{
    device_destroy(d);
}
