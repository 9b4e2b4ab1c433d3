/* The slot and its incarnation (device.h): logging, the event log, failing a device, reaping its process, taking
 * an incarnation down, freeing a slot. */
#define _GNU_SOURCE
#include "dev/device.h"

#include <sys/mman.h>

#include "dev/declare.h"
#include "dev/devcfg.h"
#include "dev/output.h"

#include <seccomp.h>
#include <ctype.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint64_t
hub_dev_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t
hub_dev_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void
hub_dev_log(hub_devmgr *m, const char *device, int level, const char *fmt, ...)
{
    if (!m->env.log)
        return;     /* the embedding program decides what is shown; it set no logger */
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    m->env.log(m->env.log_opaque, device, level, buf);
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
    hub_dev_log(d->m, d->name, PLX_LOG_ERR, "%s; its accesses now fail%s", buf,
                d->cfg && d->restarts < d->max_restarts ? " until it is restarted" : "");
    hub_dev_observe(d->m, failed, d->name, buf, vclock_now(d->m->env.clock));
    d->failed_at = hub_dev_now_ms();
    for (unsigned i = 0; i < d->inc.n_timers; i++)
        if (d->inc.timers[i])
            vtimer_del(&d->inc.timers[i]->vt);
    /* Nobody drives its lines any more. */
    for (unsigned i = 0; i < d->n_irqs; i++) {
        if (d->irq_level && d->irq_level[i] > 0) {
            d->irq_level[i] = 0;
            if (d->irq_map[i] != HUB_IRQ_UNMAPPED && d->m->env.set_irq && !d->m->shutting_down)
                d->m->env.set_irq(d->m->env.irq_opaque, d->irq_map[i], 0);
        }
    }
}

/* The words a device ended by a denied system call sends on its fd socket ("sandbox: denied system call NAME
 * (NR)"): the number, which the hub names itself. -1 if there are none. */
static int denied_call(hub_device *d)
{
    char words[128];
    ssize_t n = d->inc.fdsock >= 0 ? recv(d->inc.fdsock, words, sizeof(words) - 1, MSG_DONTWAIT) : -1;
    if (n <= 0)
        return -1;
    words[n] = 0;
    const char *open = strrchr(words, '(');
    int nr = -1;
    static const char prefix[] = "sandbox: denied system call ";
    if (strncmp(words, prefix, sizeof(prefix) - 1) || !open || sscanf(open, "(%d)", &nr) != 1)
        return -1;
    return nr;
}

/* Reap the process if it exited. Returns true if it is gone. */
bool
hub_dev_reap(hub_device *d)
{
    if (d->inc.pid <= 0)
        return false;
    int st;
    pid_t r = waitpid(d->inc.pid, &st, WNOHANG);
    if (r != d->inc.pid)
        return false;
    d->inc.pid = 0;
    if (d->inc.pidfd >= 0) {
        close(d->inc.pidfd);
        d->inc.pidfd = -1;
    }
    d->inc.exited = true;
    /* In a pid namespace the process reaped is the jail's first: the device's own end is on the status pipe. */
    char why[256];
    hub_jail_read_status(d->inc.status_fd, &st, why, sizeof(why));
    hub_dev_output_end(d);      /* its last words come before the line about its end */
    if (why[0])
        snprintf(d->inc.exit_desc, sizeof(d->inc.exit_desc), "could not be started in its jail: %s", why);
    else if (WIFSIGNALED(st))
        snprintf(d->inc.exit_desc, sizeof(d->inc.exit_desc), "was killed by signal %d (%s)%s", WTERMSIG(st),
                 strsignal(WTERMSIG(st)), WTERMSIG(st) == SIGSYS ? ": a system call its jail denies" : "");
    else
        snprintf(d->inc.exit_desc, sizeof(d->inc.exit_desc), "exited with status %d", WEXITSTATUS(st));
    int nr = denied_call(d);
    if (nr >= 0) {
        char *name = seccomp_syscall_resolve_num_arch(seccomp_arch_native(), nr);
        size_t l = strlen(d->inc.exit_desc);
        snprintf(d->inc.exit_desc + l, sizeof(d->inc.exit_desc) - l, " (sandbox: denied system call %s (%d))",
                 name ? name : "?", nr);
        free(name);
    }
    if (!d->m->shutting_down)
        hub_dev_fail(d, "device process %s", d->inc.exit_desc);
    return true;
}


void
hub_dev_inc_begin(hub_device *d)
{
    d->inc = (hub_incarnation){ .fdsock = -1, .pidfd = -1, .out_fd = -1, .status_fd = -1 };
}

void
hub_dev_inc_end(hub_device *d)
{
    hub_incarnation *in = &d->inc;
    if (in->pid > 0) {
        kill(in->pid, SIGKILL);
        waitpid(in->pid, NULL, 0);
    }
    if (in->pidfd >= 0)
        close(in->pidfd);
    if (in->fdsock >= 0)
        close(in->fdsock);
    hub_dev_output_end(d);
    if (in->out_fd >= 0)
        close(in->out_fd);
    if (in->status_fd >= 0)
        close(in->status_fd);
    for (unsigned i = 0; i < in->n_timers; i++) {
        if (in->timers[i]) {
            vtimer_del(&in->timers[i]->vt);
            free(in->timers[i]);
        }
    }
    free(in->timers);
    plx_wire_batch_fini(&in->batch);
    plx_wire_fini(&in->wire);
    plx_chan_close(in->chan);
    if (in->ipc_path) {
        unlink(in->ipc_path);
        free(in->ipc_path);
    }
    free(in->endpoint);
    hub_dev_inc_begin(d);
}

void
hub_dev_destroy(hub_device *d)
{
    hub_devmgr *m = d->m;
    hub_dev_inc_end(d);
    if (d->state_hdr)
        munmap(d->state_hdr, PLX_STATE_BLOCK_SIZE);
    if (d->state_fd >= 0)
        close(d->state_fd);
    free(d->plog);
    if (d->lockstep)
        vtimer_del(&d->grant_vt);
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
    hub_dev_decl_free(d);
    for (unsigned i = 0; i < d->n_files; i++) {
        close(d->files[i].fd);
        free(d->files[i].name);
    }
    free(d->files);
    hub_dev_cfg_free(d->cfg);
    free(d->dma_buf);
    free(d->dma_window);
    free(d->model);
    if (d->key_path) {
        unlink(d->key_path);
        free(d->key_path);
    }
    free(d->name);
    free(d);
}
