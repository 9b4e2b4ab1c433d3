/*
 * Private to the SDK: the running device (struct plx_dev) and what its parts share. sdk.c is the device's API
 * (properties, DMA, IRQs, timers, shadow pages, state, logging), loop.c what the hub sends and the loops that
 * receive it (plx_dev_main's and the caller's), connect.c finding the hub, the handshake and tearing down.
 */
#ifndef PLEXUS_SDK_DEV_H
#define PLEXUS_SDK_DEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "plexus/sdk.h"
#include "plexus/wire.h"

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
    uint64_t seq, addr, data, at_ns;
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
    bool jailed;                /* started by the hub: its jail's filter reports a denied call on fdsock */
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
    bool console;               /* Config.console: this device is the machine's console */
    void (*console_cb)(void *opaque, const uint8_t *buf, size_t len);
    void *console_opaque;
    uint64_t next_event;        /* lockstep: plx_set_next_event() */
    uint64_t access_busy;       /* lockstep: plx_set_access_busy() for the reply being built */
    int access_result;          /* plx_set_access_result() for the reply being built */
    bool stop;
    int status;
    int epfd;                   /* plx_dev_open(): the poll descriptor (epoll) handed to the caller's loop */
    int kickfd;                 /* eventfd in that set: work is already there */
    bool heap;                  /* allocated by plx_dev_open(): sdk_dev_free() frees it */
    struct sdk_file { char *name; int fd; bool readonly, taken; } *files;   /* Config.files */
    unsigned n_files;
    uint32_t hub_caps;          /* the hub's Hello capabilities */
    /* Guest RAM written through the mapping and not yet reported (DmaWritten, to a hub with CAP_DMA_WRITTEN). */
    struct { uint64_t addr, len; } written[PLX_MAX_DMA_RANGES];
    unsigned n_written;
};


/* sdk.c */
const char *sdk_dev_label(plx_dev *dev);
int sdk_send_env(plx_dev *dev, Plx__Envelope *env);
/* Report the guest RAM written through the mapping since the last report (before anything else goes out, and
 * at the end of every callback's turn). */
void sdk_dma_flush(plx_dev *dev);
/* The program's log handler (plx_set_log_handler); sdk_log_to_stderr is plx_dev_main()'s default. */
bool sdk_log_handler_set(void);
void sdk_log_to_stderr(void *opaque, int level, const char *device, const char *text);
void sdk_local_log(plx_dev *dev, int level, const char *text);
/* A record of the SDK itself that stays in this process (about the connection, or before it is up). */
void sdk_log(plx_dev *dev, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Log locally and send the hub an Error. */
void sdk_send_error(plx_dev *dev, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int sdk_prop_index(plx_dev *dev, const char *name);
void sdk_timer_fire(plx_dev *dev, const Plx__TimerFire *f);
void sdk_time_grant(plx_dev *dev, uint64_t until);

/* Publish that every write up to @seq is applied (state block and shadow pages); on every posted write, so
 * inline. */
static inline void sdk_publish_applied(plx_dev *dev, uint64_t seq)
{
    if (dev->state_hdr)
        __atomic_store_n(&dev->state_hdr->applied_seq, seq, __ATOMIC_RELEASE);
    for (unsigned i = 0; i < dev->n_shadows; i++)
        if (dev->shadows[i].hdr)
            __atomic_store_n(&dev->shadows[i].hdr->applied_seq, seq, __ATOMIC_RELEASE);
}

/* loop.c */
void sdk_handle_env(plx_dev *dev, Plx__Envelope *env);
int sdk_serve_socket(plx_dev *dev);
bool sdk_hub_gone(plx_dev *dev);
int sdk_run_loop(plx_dev *dev);
/* Add @fd to the poll descriptor of a device opened with plx_dev_open(). */
int sdk_watch_add(plx_dev *dev, int fd);
void sdk_arm(plx_dev *dev);

/* connect.c */
int sdk_validate_ops(const plx_device_ops *ops);
int sdk_dev_setup(plx_dev *dev, int argc, char **argv);
void sdk_dev_finish(plx_dev *dev, int status);
void sdk_dev_free(plx_dev *dev);

#endif
