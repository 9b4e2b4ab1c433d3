/*
 * The device manager: adds devices (start or attach, handshake, map their regions), polls them, shuts them down,
 * and answers questions about them. The pieces: spawn.c (processes), handshake.c and declare.c (the handshake),
 * link.c (the channel), serve.c (what devices send), proxy.c (guest accesses), lockstep.c, supervise.c.
 */
#define _GNU_SOURCE
#include "dev/devmgr.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dev/declare.h"
#include "dev/devcfg.h"
#include "dev/device.h"
#include "dev/files.h"
#include "dev/handshake.h"
#include "dev/link.h"
#include "dev/lockstep.h"
#include "dev/output.h"
#include "dev/proxy.h"
#include "dev/serve.h"
#include "dev/spawn.h"
#include "dev/supervise.h"

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
    /* Nothing of the hub's may be read through /proc or ptrace by a process of the same user without
     * privileges: a device (whose jail drops them) included. */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
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
    hub_jail_env_init(&m->jail, m->run_dir);
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
    return m;
fail:
    error_setg(errp, "device manager: out of memory");
fail_quiet:
    hub_devmgr_free(m);
    return NULL;
}

/* The key an attaching device must present: random, kept in the slot and in a file only this user can read,
 * NAME.key next to the attach socket, where a device started by hand finds it (or is given it). */
static int make_attach_key(hub_device *d, Error **errp)
{
    uint8_t raw[PLX_ATTACH_KEY_LEN / 2];
    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
        error_setg(errp, "device '%s': no random bytes for its attach key: %s", d->name, strerror(errno));
        return -EIO;
    }
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(d->attach_key + 2 * i, 3, "%02x", raw[i]);
    if (asprintf(&d->key_path, "%s/%s" PLX_ATTACH_KEY_SUFFIX, d->m->run_dir, d->name) < 0) {
        d->key_path = NULL;
        error_setg(errp, "device '%s': out of memory", d->name);
        return -ENOMEM;
    }
    unlink(d->key_path);
    int fd = open(d->key_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    ssize_t w = fd >= 0 ? write(fd, d->attach_key, PLX_ATTACH_KEY_LEN) : -1;
    int e = errno;
    if (fd >= 0)
        close(fd);
    if (w != (ssize_t)PLX_ATTACH_KEY_LEN) {
        error_setg(errp, "device '%s': cannot write its attach key %s: %s", d->name, d->key_path, strerror(e));
        return -e;
    }
    return 0;
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
        hub_dev_proxy_set_ops(&r->ops);
        memory_region_init_io(&r->mr, NULL, &r->ops, r, r->mr_name, r->size);
        memory_region_add_subregion(m->env.sysmem, r->base, &r->mr);
        r->mapped = true;
    }
    return 0;
}

hub_device *
hub_devmgr_add(hub_devmgr *m, const hub_device_config *cfg, Error **errp)
{
    if (!cfg || !hub_dev_name_ok(cfg->name)) {
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
    if (cfg->attach && (cfg->n_sandbox_read || cfg->n_sandbox_write)) {
        error_setg(errp, "device '%s': sandbox paths apply to devices the hub starts, not to attached ones",
                   cfg->name);
        return NULL;
    }
    hub_device *d = calloc(1, sizeof(*d));
    if (!d) {
        error_setg(errp, "device '%s': out of memory", cfg->name);
        return NULL;
    }
    d->m = m;
    hub_dev_inc_begin(d);
    d->state_fd = -1;
    d->name = strdup(cfg->name);
    d->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : 1000;
    d->limits = cfg->limits;
    d->console = cfg->console;
    d->lockstep = cfg->lockstep;
    hub_dev_lockstep_init(d);
    if (cfg->max_restarts) {
        d->max_restarts = cfg->max_restarts;
        d->backoff_ms = cfg->restart_backoff_ms ? cfg->restart_backoff_ms : 100;
        d->cfg = hub_dev_cfg_dup(cfg);
        if (!d->cfg) {
            free(d->name);
            d->name = NULL;
        }
    }
    if (!d->name) {
        hub_dev_cfg_free(d->cfg);
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
        d->dma_window[i] = hub_dev_ram_granted(cfg, &m->env.ram[i]);
    if (hub_dev_files_open(d, cfg, errp) < 0)
        goto fail;
    if (cfg->attach && !(cfg->endpoint && strncmp(cfg->endpoint, "ipc://", 6)) && make_attach_key(d, errp) < 0)
        goto fail;
    if (hub_dev_start(d, cfg, false, errp) < 0)
        goto fail;
    if (map_regions(d, errp) < 0)
        goto fail;
    d->next = m->devs;
    m->devs = d;
    m->n_devs++;
    return d;
fail:
    hub_dev_destroy(d);
    return NULL;
}

/* A device the hub did not spawn: fail it once its connection ended (true then). */
static bool peer_lost(hub_device *d)
{
    if (d->failed || !plx_chan_peer_gone(d->inc.chan))
        return false;
    hub_dev_drain(d);       /* its last words (a Goodbye, a log record) first */
    hub_dev_fail(d, "the connection to the device ended (%s)",
                 d->inc.ring ? "its descriptor socket hung up" : "ZeroMQ reports it disconnected");
    return true;
}

int
hub_devmgr_poll(hub_devmgr *m, int timeout_ms)
{
    return hub_devmgr_wait(m, timeout_ms, -1);
}

enum { HUB_ITEM_CHAN, HUB_ITEM_PID, HUB_ITEM_PEER, HUB_ITEM_OUT, HUB_ITEM_CALLER };

int
hub_devmgr_wait(hub_devmgr *m, int timeout_ms, int fd)
{
    hub_dev_supervise(m);
    unsigned n = 1;
    for (hub_device *d = m->devs; d; d = d->next)
        n += 3;
    if (n > m->cap_items) {
        struct pollfd *it = realloc(m->items, sizeof(*it) * n);
        hub_device **who = realloc(m->item_dev, sizeof(*who) * n);
        uint8_t *kind = realloc(m->item_kind, sizeof(*kind) * n);
        if (it)
            m->items = it;
        if (who)
            m->item_dev = who;
        if (kind)
            m->item_kind = kind;
        if (!it || !who || !kind)
            return -ENOMEM;
        m->cap_items = n;
    }
    hub_devmgr_flush(m);
    /* A device the hub just sent something (a posted doorbell write) usually answers within its ring's spin
     * budget (an interrupt for a disk read the host has cached): look for that before sleeping, which would
     * make its answer wait for this thread to be woken. One device spins at most once per idle wait. */
    for (hub_device *d = m->devs; d; d = d->next) {
        bool poked = d->inc.poked;
        d->inc.poked = false;
        if (timeout_ms != 0 && poked && !d->failed && !d->lockstep && d->inc.ring && plx_chan_spin(d->inc.chan) != 0)
            timeout_ms = 0;
    }
    uint64_t deadline = timeout_ms > 0 ? hub_dev_now_ms() + (uint64_t)timeout_ms : 0;
again:;
    unsigned k = 0;
    bool ready = false;
    for (hub_device *d = m->devs; d; d = d->next) {
        if (d->failed)
            continue;
        /* A lockstep device is served only while the hub waits on it, so that what it sends happens at a
         * virtual time the hub decides; something it sends on its own (input from outside) gets it a grant at
         * the next quantum boundary instead of being served here. */
        m->items[k] = (struct pollfd){ .fd = plx_chan_poll_fd(d->inc.chan), .events = POLLIN };
        bool pending = plx_chan_poll_prepare(d->inc.chan);
        if (d->lockstep && pending)
            hub_dev_lockstep_touch(d);
        else
            ready |= pending;
        m->item_kind[k] = HUB_ITEM_CHAN;
        m->item_dev[k++] = d;
        /* A process of ours: its pidfd. Otherwise the connection's end (docs/protocol.md "Liveness"). */
        int peer = d->inc.pidfd >= 0 ? d->inc.pidfd : plx_chan_peer_poll_fd(d->inc.chan);
        if (peer >= 0) {
            m->items[k] = (struct pollfd){ .fd = peer, .events = POLLIN };
            m->item_kind[k] = d->inc.pidfd >= 0 ? HUB_ITEM_PID : HUB_ITEM_PEER;
            m->item_dev[k++] = d;
            if (d->inc.pidfd < 0 && peer_lost(d))
                ready = true;
        }
        if (d->inc.out_fd >= 0) {
            m->items[k] = (struct pollfd){ .fd = d->inc.out_fd, .events = POLLIN };
            m->item_kind[k] = HUB_ITEM_OUT;
            m->item_dev[k++] = d;
            if (d->inc.pidfd < 0 && peer_lost(d))
                ready = true;
        }
    }
    unsigned nchan = k;
    if (fd >= 0) {
        m->items[k] = (struct pollfd){ .fd = fd, .events = POLLIN };
        m->item_kind[k] = HUB_ITEM_CALLER;
        m->item_dev[k++] = NULL;
    }
    if (k == 0) {
        if (timeout_ms > 0) {
            struct timespec ts = { timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000 };
            nanosleep(&ts, NULL);
        }
        return 0;
    }
    int r = poll(m->items, k, ready ? 0 : timeout_ms);
    int e = errno;
    k = nchan;      /* the caller's fd is the caller's to read */
    for (unsigned i = 0; i < k; i++) {
        if (m->item_kind[i] == HUB_ITEM_CHAN) {
            /* the channel's word on whether a frame may be there replaces what poll() saw */
            bool frame = plx_chan_poll_done(m->item_dev[i]->inc.chan, r > 0 ? m->items[i].revents : 0);
            m->items[i].revents = frame ? POLLIN : 0;
        }
    }
    if (r < 0)
        return e == EINTR ? 0 : -e;
    int served = 0;
    bool event = r == 0 || (fd >= 0 && m->items[nchan].revents);
    for (unsigned i = 0; i < k; i++) {
        hub_device *d = m->item_dev[i];
        short rev = m->items[i].revents;
        switch (m->item_kind[i]) {
        case HUB_ITEM_CHAN:
            if (d->lockstep && (rev & POLLIN)) {
                hub_dev_lockstep_touch(d);
                event = true;
            } else if (!d->lockstep && (ready || (rev & POLLIN))) {
                served += hub_dev_drain(d);
            }
            break;
        case HUB_ITEM_PID:
            if (rev & (POLLIN | POLLHUP | POLLERR)) {
                event = true;
                if (d->lockstep || !hub_dev_drain(d))
                    hub_dev_reap(d);
            }
            break;
        case HUB_ITEM_PEER:
            if (rev & (POLLIN | POLLHUP | POLLERR)) {
                event = true;
                peer_lost(d);
            }
            break;
        case HUB_ITEM_OUT:      /* what it writes is shown, but is no event of the machine's */
            if (rev & (POLLIN | POLLHUP | POLLERR))
                hub_dev_output_drain(d);
            break;
        }
    }
    /* A bell without a frame (a device may ring whenever it likes) is no event: the wait goes on, so a guest
     * idling for a time the hub knows wakes at that time, whatever the devices' bells did. */
    if (!served && !event && timeout_ms != 0) {
        uint64_t now = hub_dev_now_ms();
        if (timeout_ms < 0 || now < deadline) {
            timeout_ms = timeout_ms < 0 ? -1 : (int)(deadline - now);
            goto again;
        }
    }
    return served;
}

void
hub_devmgr_sync(hub_devmgr *m)
{
    if (m->nest || m->shutting_down)
        return;
    for (hub_device *d = m->devs; d; d = d->next)
        hub_dev_sync(d);
}

void
hub_devmgr_flush(hub_devmgr *m)
{
    for (hub_device *d = m->devs; d; d = d->next)
        if (d->inc.batch.n)
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
        if (d->failed || d->inc.exited)
            continue;
        Plx__Envelope env = PLX__ENVELOPE__INIT;
        env.msg_case = PLX__ENVELOPE__MSG_SHUTDOWN;
        env.shutdown = &sd;
        hub_dev_send(d, &env);
    }
    for (hub_device *d = m->devs; d; d = d->next)
        if (d->failed && d->inc.pid > 0)
            kill(d->inc.pid, SIGKILL);     /* hung or broken: no grace */
    uint64_t deadline = hub_dev_now_ms() + HUB_SHUTDOWN_GRACE_MS;
    for (;;) {
        bool waiting = false;
        for (hub_device *d = m->devs; d; d = d->next) {
            hub_dev_drain(d);
            if (d->inc.pid > 0)
                hub_dev_reap(d);
            if (d->inc.pid > 0 || (!d->inc.spawned && !d->failed && !d->inc.said_goodbye))
                waiting = true;
        }
        if (!waiting || hub_dev_now_ms() >= deadline)
            break;
        struct timespec ts = { 0, 5 * 1000000 };
        nanosleep(&ts, NULL);
    }
    while (m->devs) {
        hub_device *d = m->devs;
        m->devs = d->next;
        if (d->inc.pid > 0)
            hub_dev_log(m, d->name, PLX_LOG_WARNING, "device did not exit after Shutdown: killed");
        hub_dev_destroy(d);
    }
    free(m->items);
    free(m->item_dev);
    free(m->item_kind);
    if (m->attach_fd >= 0)
        close(m->attach_fd);
    if (m->attach_path) {
        unlink(m->attach_path);
        free(m->attach_path);
    }
    hub_jail_env_fini(&m->jail);
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
hub_device_dt_node(const hub_device *d)
{
    return d->dt_node;
}

const char *
hub_device_endpoint(const hub_device *d)
{
    return d->inc.endpoint;
}

int
hub_device_pid(const hub_device *d)
{
    if (d->inc.pid <= 0)
        return 0;
    if (!(d->inc.jail & HUB_JAIL_PID))
        return d->inc.pid;
    /* The process the hub started is the pid namespace's first, the device its only child. */
    char path[64], buf[32];
    snprintf(path, sizeof(path), "/proc/%d/task/%d/children", d->inc.pid, d->inc.pid);
    FILE *f = fopen(path, "re");
    int child = 0;
    if (f) {
        if (fgets(buf, sizeof(buf), f))
            child = atoi(buf);
        fclose(f);
    }
    return child > 0 ? child : d->inc.pid;
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
        out->syncs += d->stats.syncs;
        out->dma_written += d->stats.dma_written;
    }
}

void
hub_device_get_stats(const hub_device *d, hub_devmgr_stats *out)
{
    *out = d->stats;
}

const char *
hub_device_confinement(const hub_device *d, char *buf, size_t len)
{
    return hub_jail_describe(d->inc.jail, buf, len);
}

int
hub_device_console_input(hub_device *d, const uint8_t *data, size_t len)
{
    if (!d->console || !(d->inc.capabilities & PLX_CAP_CONSOLE))
        return -ENOTSUP;
    if (d->failed)
        return -EIO;
    size_t n = len < d->inc.console_room ? len : d->inc.console_room;
    if (!n)
        return 0;
    Plx__ConsoleInput ci = PLX__CONSOLE_INPUT__INIT;
    ci.data.data = (uint8_t *)data;
    ci.data.len = n;
    Plx__Envelope env = PLX__ENVELOPE__INIT;
    env.msg_case = PLX__ENVELOPE__MSG_CONSOLE_INPUT;
    env.console_input = &ci;
    if (hub_dev_send(d, &env) < 0)
        return -EIO;
    d->inc.console_room -= (uint32_t)n;
    return (int)n;
}

int
hub_device_reset(hub_device *d)
{
    if (d->failed)
        return -EIO;
    Plx__Reset rs = PLX__RESET__INIT;
    if (d->inc.batch.n)
        hub_dev_flush(d);
    rs.seq = d->inc.last_posted = ++d->inc.seq;
    Plx__Envelope env = PLX__ENVELOPE__INIT;
    env.msg_case = PLX__ENVELOPE__MSG_RESET;
    env.reset = &rs;
    return hub_dev_send(d, &env) < 0 ? -EIO : 0;
}
