/* Private to the device layer: the structures behind hub_devmgr and hub_device. */
#ifndef PLEXUS_HUB_DEVMGR_INT_H
#define PLEXUS_HUB_DEVMGR_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <poll.h>
#include <sys/types.h>

#include "dev/devmgr.h"
#include "plexus/wire.h"

#define HUB_IRQ_UNMAPPED UINT32_MAX
#define HUB_RECV_SLICE_MS 20        /* receive timeout of device sockets: how often a wait looks around */

#define HUB_RING_SPIN_NS 50000u     /* default spin budget of both sides of a ring */

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
} hub_timer;

struct hub_device {
    /* Checked on every access: together at the start. */
    bool failed;
    unsigned dma_depth;         /* > 0 while the hub serves this device's DMA (it is blocked waiting) */
    plx_wire_batch batch;       /* posted writes held (devices with CAP_WRITE_BATCH; buf NULL otherwise) */
    uint64_t last_posted;       /* seq of the last posted write, timer fire or reset */
    hub_devmgr_stats stats;
    hub_devmgr *m;
    hub_device *next;
    bool *dma_window;           /* per env RAM block: granted (DMA by message allowed); NULL = all (detached) */
    char *name, *model, *endpoint, *ipc_path;
    plx_chan *chan;
    plx_wire wire;
    int fdsock;                 /* fd channel of the handshake (socketpair or attach connection); kept open for
                                   a sandboxed device, which reports a denied system call on it */
    pid_t pid, peer_pid;
    int pidfd;
    bool lockstep;              /* time is granted (hub_device_config.lockstep) */
    vtimer grant_vt;            /* the next grant, while armed */
    bool ring;                  /* the channel is a shared-memory ring (after the handshake's Config) */
    bool ring_wanted;           /* move to the ring if the device can */
    bool ring_required;         /* ... and fail the handshake if it cannot */
    bool spawned, tcp, exited, said_goodbye, irq_unmapped_logged, dma_self_logged;
    char exit_desc[224];
    unsigned timeout_ms;
    uint32_t capabilities, minor;

    hub_region *regions;
    unsigned n_regions;
    char **irq_names;
    unsigned *irq_map;
    unsigned n_irqs;
    char **props;
    unsigned n_props;
    hub_timer **timers;
    unsigned n_timers;

    int8_t *irq_level;          /* last level the device drove on each line */
    hub_device_config *cfg;     /* own copy, kept for restarts (NULL if never restarted) */
    unsigned restarts, max_restarts, backoff_ms;
    uint64_t failed_at;         /* hub_now_ms() of the failure */

    uint64_t seq;               /* last request sequence number used */
    unsigned in_wait;           /* > 0 while the hub waits for this device's answer */
    uint64_t batch_time;        /* virtual time of the batched writes */
    uint8_t *dma_buf;           /* data of DMA reads by message */
    size_t dma_cap;

    /* Restarts keep state: the state block outlives the process, and posted writes the process may not have
     * applied are logged until it has, to be delivered again to the next process. */
    int state_fd;               /* memfd of PLX_STATE_BLOCK_SIZE, -1 if none */
    struct plx_state_header *state_hdr;
    struct hub_posted *plog;    /* ring of HUB_PLOG_MAX */
    unsigned plog_head, plog_n;
    uint64_t plog_dropped;      /* posted writes that fell out of the log unconfirmed */
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
    bool *item_chan;            /* the item is the device's channel (else its pidfd) */
    unsigned cap_items;
};

uint64_t hub_now_ms(void);
void hub_dev_log(hub_devmgr *m, const char *device, int level, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void hub_dev_fail(hub_device *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool hub_dev_reap(hub_device *d);
int hub_dev_send(hub_device *d, Plx__Envelope *env);
/* A send to the device returned @r (< 0): fail the device with the reason (unless shutting down). */
void hub_dev_send_failed(hub_device *d, int r);
/* Words for a channel error @r (< 0) of this device. */
const char *hub_dev_chan_strerror(hub_device *d, int r);
/* Wait up to @timeout_ms for the device's channel: 1 a frame may be there, 2 the process exited (pidfd), 0
 * nothing, -errno. */
int hub_dev_wait(hub_device *d, int timeout_ms);
void hub_dev_serve(hub_device *d, Plx__Envelope *env);
int hub_dev_drain(hub_device *d);

/* A failed device that may still be restarted is restarted now (after the rest of its backoff), so an access
 * waits for it rather than failing. True if the device is up. */
bool hub_dev_await_restart(hub_device *d);
/* Remember a posted write until the device has applied it. */
void hub_dev_log_posted(hub_device *d, uint64_t seq, uint32_t region, uint64_t addr, uint32_t size, uint64_t data);
/* The device answered request @seq: every posted write before it was applied. */
void hub_dev_confirm(hub_device *d, uint64_t seq);

/* For the fuzzer (tests/fuzz): a device with no process whose channel is a ZMQ_PAIR bound at @endpoint (e.g.
 * inproc://x; connect to it with plx_chan_zmq_connect()), @n_irqs lines (even ones connected); frames fed to it are decoded, checked and
 * served as hub_devmgr_poll() would serve them after the handshake. hub_dev_feed_declaration() runs the
 * handshake's checks of a Declare. */
hub_device *hub_dev_new_detached(hub_devmgr *m, const char *name, unsigned n_irqs, const char *endpoint);
int hub_dev_feed(hub_device *d, const void *frame, size_t len);
int hub_dev_feed_declaration(hub_device *d, const void *frame, size_t len);
void hub_dev_free_detached(hub_device *d);

/* proxy.c */
void hub_proxy_init_ops(MemoryRegionOps *ops);
/* Send the posted writes held for @d. Called before anything else goes to the device. */
void hub_dev_flush(hub_device *d);
/* Wait until the device answered TimerFire @seq with TimerDone, serving its other messages. */
int hub_dev_wait_timer_done(hub_device *d, uint64_t seq);
/* Wait for TimeReached{@until}, serving the device's other messages; its next event in *@next_event. */
int hub_dev_wait_reached(hub_device *d, uint64_t until, uint64_t *next_event);
/* A lockstep device was accessed: make sure time is granted to it at the next quantum boundary. Inline: every
 * access calls it, and most devices are not in lockstep. */
void hub_dev_lockstep_arm(hub_device *d);
static inline void hub_dev_lockstep_touch(hub_device *d)
{
    if (d->lockstep && !vtimer_pending(&d->grant_vt))
        hub_dev_lockstep_arm(d);
}
/* A lockstep device's reply announced its next event (0: none given): grant time then if that is earlier. */
void hub_dev_lockstep_next(hub_device *d, uint64_t next_event);
/* Event log line "<virtual ns> <device> <text>"; hub_dev_event() costs one test (and evaluates nothing) without
 * env.event_log: it sits on every device access. */
void hub_dev_event_write(hub_device *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define hub_dev_event(d, ...)                            \
    do {                                                 \
        if ((d)->m->env.event_log)                       \
            hub_dev_event_write((d), __VA_ARGS__);       \
    } while (0)

#endif
