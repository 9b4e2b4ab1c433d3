/*
 * Private to the device layer: the structures behind hub_devmgr and hub_device, and what every part of the
 * layer uses (device.c): logging, the event log, failing a device, reaping its process.
 */
#ifndef PLEXUS_HUB_DEV_DEVICE_H
#define PLEXUS_HUB_DEV_DEVICE_H

#include <stdbool.h>
#include <stdint.h>
#include <poll.h>
#include <sys/types.h>

#include "dev/devmgr.h"
#include "dev/jail.h"
#include "plexus/chan.h"
#include "plexus/wire.h"

#define HUB_IRQ_UNMAPPED UINT32_MAX
#define HUB_HELLO_TIMEOUT_MS 10000    /* a started device says Hello within this */
#define HUB_SHUTDOWN_GRACE_MS 2000    /* devices exit this long after Shutdown, or are killed */
#define HUB_RECV_SLICE_MS 20        /* receive timeout of device sockets: how often a wait looks around */

#define HUB_RING_SPIN_NS 50000u     /* default spin budget of both sides of a ring */
#define HUB_LOG_LINE_BUF 512u       /* output.h: HUB_LOG_LINE_MAX */
#define HUB_CONSOLE_ROOM_MAX 65536u /* keyboard bytes a console device may have granted at once */

typedef struct hub_region {
    /* What a shadow read touches comes first, read-through ranges inline: few cache lines per poll. */
    uint8_t *shadow_data;
    struct plx_shadow_header *shadow_hdr;
    hub_device *dev;
    uint64_t size;
    unsigned n_read_through;
    struct { uint64_t offset, len; } read_through[PLX_MAX_READ_THROUGH];
    unsigned index;
    char *name, *mr_name;
    uint64_t base;
    Plx__RegionKind kind;
    bool placed, mapped;
    MemoryRegionOps ops;
    MemoryRegion mr;
    int shadow_fd;
    void *shadow_map;
    size_t shadow_len;
} hub_region;

typedef struct hub_timer {
    vtimer vt;
    hub_device *d;
    uint32_t id;
    uint64_t generation;
    bool fired;
    uint64_t fired_at;          /* virtual time of its last fire */
} hub_timer;

/*
 * One process of a device and the channel to it: everything a restart replaces. hub_dev_inc_end() takes it down
 * (the process killed and reaped, channel and sockets closed, timers and held writes dropped), and
 * hub_dev_inc_begin() makes a fresh one, which the connection and the handshake then fill in.
 */
typedef struct hub_incarnation {
    /* Checked on every access: first. */
    plx_wire_batch batch;       /* posted writes held (devices with CAP_WRITE_BATCH; buf NULL otherwise) */
    uint64_t last_posted;       /* seq of the last posted write, timer fire or reset */
    uint64_t seq;               /* last request sequence number used */
    unsigned in_wait;           /* > 0 while the hub waits for this device's answer */
    uint64_t batch_time;        /* virtual time of the first batched write (the frame's now_ns) */
    uint64_t answered;          /* seq of the last request the device answered: everything up to it is handled and
                                   what handling it sent (IRQ changes) has been served */
    plx_chan *chan;
    plx_wire wire;
    char *endpoint, *ipc_path;
    int fdsock;                 /* fd channel of the handshake (socketpair or attach connection); kept open for
                                   a sandboxed device, which reports a denied system call on it */
    pid_t pid, peer_pid;
    int pidfd;
    bool ring;                  /* the channel is a shared-memory ring (after the handshake's Config) */
    bool ring_wanted;           /* move to the ring if the device can */
    bool ring_required;         /* ... and fail the handshake if it cannot */
    bool spawned, tcp, exited, said_goodbye, dma_self_logged;
    bool poked;                 /* the hub sent it something since its last idle wait (hub_devmgr_wait) */
    char exit_desc[400];
    uint32_t capabilities, minor;
    hub_timer **timers;
    unsigned n_timers;
    unsigned n_armed;           /* timers armed now */
    unsigned jail;              /* the jail's layers (HUB_JAIL_*) */
    int status_fd;              /* the jail's status pipe (read end), -1 if none */
    int out_fd;                 /* the process's stdout and stderr (read end), -1 once closed */
    bool flooded;               /* failed for its log: nothing more is shown */
    bool console_warned, busy_capped, rearm_warned;
    uint32_t console_room;      /* keyboard bytes the console device can take now */
    bool curve_given;           /* a tcp device the hub starts: its CURVE secret key, made for this process */
    uint8_t curve_secret[PLX_CURVE_KEY];
    unsigned curve_refused;     /* peers with other keys turned away, as logged so far */
    uint64_t curve_said_ms;     /* when they were last logged (at most once a second) */
    unsigned out_len;
    char out_line[HUB_LOG_LINE_BUF];    /* the line being read from out_fd */
} hub_incarnation;

/*
 * A device slot: what lives as long as the machine's configuration of the device — its name and configuration,
 * what it declared (regions, mapped for good; IRQ lines; properties), its RAM grants, statistics, the state
 * block and the log of posted writes that survive a restart — and its current incarnation.
 */
struct hub_device {
    /* Checked on every access: together at the start. */
    bool failed;                /* no live incarnation: it died, hung or broke the protocol */
    unsigned dma_depth;         /* > 0 while the hub serves this device's DMA (it is blocked waiting) */
    hub_devmgr *m;
    hub_devmgr_stats stats;
    hub_incarnation inc;        /* its hot fields first: the shadow read touches two cache lines */
    hub_device *next;
    bool *dma_window;           /* per env RAM block: granted (DMA by message allowed); NULL = all (detached) */
    char *name, *model;
    bool lockstep;              /* time is granted (hub_device_config.lockstep) */
    bool console;               /* the machine's console (hub_device_config.console) */
    vtimer grant_vt;            /* the next grant, while armed */
    bool irq_unmapped_logged;
    unsigned timeout_ms;

    hub_region *regions;
    unsigned n_regions;
    char **irq_names;
    unsigned *irq_map;
    unsigned n_irqs;
    char **props;
    unsigned n_props;
    char *dt_node;              /* the device-tree node name it declared, or NULL */
    char attach_key[PLX_ATTACH_KEY_LEN + 1];    /* attach mode: what it must present ("" otherwise) */
    char *key_path;             /* ... written there (0600), removed with the slot */

    int8_t *irq_level;          /* last level the device drove on each line */
    hub_device_config *cfg;     /* own copy, kept for restarts (NULL if never restarted) */
    unsigned restarts, max_restarts, backoff_ms;
    uint64_t failed_at;         /* hub_dev_now_ms() of the failure */

    uint8_t *dma_buf;           /* data of DMA reads by message */
    size_t dma_cap;
    hub_device_limits limits;   /* as configured (0: the default) */
    struct hub_output_limit {   /* output.c: this second's log bytes, and what was not shown */
        uint64_t window_ms, shown, total, hidden_lines, hidden_bytes;
    } out_limit;

    /* Restarts keep state: the state block outlives the process, and posted writes the process may not have
     * applied are logged until it has, to be delivered again to the next process. */
    int state_fd;               /* memfd of PLX_STATE_BLOCK_SIZE, -1 if none */
    struct plx_state_header *state_hdr;
    struct hub_posted *plog;    /* ring of HUB_PLOG_MAX */
    unsigned plog_head, plog_n;
    uint64_t plog_dropped;      /* posted writes that fell out of the log unconfirmed */

    /* Files the machine gives it (files.c), open for the slot's life and passed to every process. */
    struct hub_dev_file { char *name; int fd; bool readonly; } *files;
    unsigned n_files;
};

#define HUB_PLOG_MAX 256
struct hub_posted { uint64_t seq, addr, data; uint32_t region, size; };

struct hub_devmgr {
    hub_devmgr_env env;         /* ram copied, run_dir in run_dir below */
    char *run_dir;
    bool own_run_dir, shutting_down;
    char *attach_path;
    int attach_fd;
    hub_device *devs;
    unsigned n_devs, next_id;
    struct pollfd *items;
    hub_device **item_dev;
    uint8_t *item_kind;         /* the item is the device's channel, its pidfd or its output (HUB_ITEM_*) */
    unsigned cap_items;
    unsigned nest;              /* > 0 while the hub waits on a device or serves its DMA: an access now is not the
                                   CPU's own, and cannot be deferred */
    bool restart_wanted;        /* an access was deferred until its device is restarted */
    hub_jail_env jail;          /* what the kernel offers device jails */
    plx_curve curve;            /* the hub's CURVE pair for tcp devices (peer_key unused) */
    bool curve_ready;
};

uint64_t hub_dev_now_ms(void);
uint64_t hub_dev_now_ns(void);      /* the host's monotonic clock */

/* The observer's callback @cb, if there is an observer with one: `hub_dev_observe(m, dma, ...)`. */
#define hub_dev_observe(m, cb, ...)                                                    \
    do {                                                                             \
        if ((m)->env.observer && (m)->env.observer->cb)                              \
            (m)->env.observer->cb((m)->env.observer_opaque, __VA_ARGS__);            \
    } while (0)
/* A fresh incarnation (no process, no channel) in d->inc. */
void hub_dev_inc_begin(hub_device *d);
/* Take d->inc down: kill and reap the process, close the channel and sockets, drop timers and held writes. */
void hub_dev_inc_end(hub_device *d);
/* Free a slot and everything it holds: its incarnation, regions (unmapped), declaration, state block. */
void hub_dev_destroy(hub_device *d);
void hub_dev_log(hub_devmgr *m, const char *device, int level, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The device failed (died, hung, broke the protocol): log why, stop its timers, lower the lines it raised. Its
 * accesses fail from now on (until a restart). Once only. */
void hub_dev_fail(hub_device *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Reap the process if it exited (and fail the device, saying how it ended). True if it is gone. */
bool hub_dev_reap(hub_device *d);
/* Event log line "<virtual ns> <device> <text>"; hub_dev_event() costs one test (and evaluates nothing) without
 * env.event_log: it sits on every device access. */
/* The device failed and a restart is still due (its policy allows one more). */
static inline bool hub_dev_restartable(const hub_device *d)
{
    return d->failed && d->cfg && d->restarts < d->max_restarts && !d->m->shutting_down;
}
void hub_dev_event_write(hub_device *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define hub_dev_event(d, ...)                            \
    do {                                                 \
        if ((d)->m->env.event_log)                       \
            hub_dev_event_write((d), __VA_ARGS__);       \
    } while (0)

#endif
