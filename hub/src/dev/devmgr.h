/*
 * The hub's side of out-of-process devices: start (or accept) device processes, handshake, grant RAM, map
 * each region the device declares into the system memory region as a proxy io region, and serve what devices
 * send (IRQ, DMA by message, timers, log).
 *
 * This header is the contract between the device layer (src/dev/) and the machine (src/machine/).
 * Single-threaded: call everything from the hub's main thread.
 *
 * Lifetime: hub_devmgr_new() allocates, hub_devmgr_free() shuts every device down in order (shutdown message,
 * then wait, then SIGKILL after a grace period), unmaps its regions and frees everything. A hub_device pointer is
 * valid until hub_devmgr_free(). Strings and arrays passed in configs are copied.
 */
#ifndef PLEXUS_HUB_DEVMGR_H
#define PLEXUS_HUB_DEVMGR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <plexus/memory.h>

#include "vclock.h"

typedef struct hub_devmgr hub_devmgr;
typedef struct hub_device hub_device;

/* A block of guest RAM that devices may map. */
typedef struct hub_ram_block {
    const char *name;
    uint64_t base;
    uint64_t size;
    int fd;                 /* the block's sealed memfd (memory_region_get_fd) */
    bool readonly;
} hub_ram_block;

/*
 * What the device layer tells an observer (plexus run --trace): each callback may be NULL; all run on the
 * hub's thread. @host_ns is the host time the event took, @vtime_ns the virtual time it happened at.
 */
typedef struct hub_devmgr_observer {
    /* A DMA by message was served (@ok) or refused. */
    void (*dma)(void *opaque, const char *device, uint64_t addr, uint32_t len, bool write, bool ok,
                uint64_t host_ns, uint64_t vtime_ns);
    /* A device timer fired; @host_ns until the device said it ran its callback (0 if not waited for). */
    void (*timer)(void *opaque, const char *device, uint32_t id, uint64_t host_ns, uint64_t vtime_ns);
    /* A lockstep device was granted time up to @vtime_ns and named its next event (@next_ns, 0: none). */
    void (*grant)(void *opaque, const char *device, uint64_t next_ns, uint64_t host_ns, uint64_t vtime_ns);
    /* The device failed (@why), or a restart of it succeeded (@why NULL, @pid its new process) or failed. */
    void (*failed)(void *opaque, const char *device, const char *why, uint64_t vtime_ns);
    void (*restarted)(void *opaque, const char *device, unsigned count, bool ok, int pid, uint64_t host_ns,
                      uint64_t vtime_ns);
} hub_devmgr_observer;

typedef struct hub_devmgr_env {
    MemoryRegion *sysmem;   /* device regions become subregions of this container */
    AddressSpace *as;       /* DMA by message is served through this address space */
    vclock *clock;          /* virtual time stamped on requests; device timers run on it */
    const hub_ram_block *ram;
    size_t n_ram;
    /* An IRQ line of a device changed: @irq is the hub-wide number from hub_irq_map.irq (a PLIC source). */
    void (*set_irq)(void *opaque, unsigned irq, int level);
    void *irq_opaque;
    /* Log records from devices and the layer's own diagnostics, @level a PLX_LOG_* (plexus/protocol.h) or
     * HUB_LOG_OUTPUT; the layer never prints on its own. @msg is one line of printable ASCII (what a device sent
     * is split into lines and escaped first), @device NULL for the layer's own words about all devices. NULL:
     * dropped. */
    void (*log)(void *opaque, const char *device, int level, const char *msg);
    void *log_opaque;
    /* The hub's CURVE secret key (PLX_CURVE_KEY bytes) for tcp:// devices; NULL: a pair made for this run, which
     * only devices the hub starts itself can know. */
    const uint8_t *curve_secret;
    /* Bytes the console device (hub_device_config.console) sends for the console: the guest's output, shown as
     * it is. NULL: dropped. */
    void (*console_output)(void *opaque, const uint8_t *data, size_t len);
    void *console_opaque;
    const char *run_dir;    /* ipc endpoints and the attach socket live here; NULL: a private temporary dir */
    /* Lockstep devices get time granted at multiples of @quantum_ns (0: HUB_DEFAULT_QUANTUM_NS). */
    uint64_t quantum_ns;
    /* A lockstep device's access kept its bus busy @ns: charge it to the guest's clock (NULL: ignored). */
    void (*charge)(void *opaque, uint64_t ns);
    void *charge_opaque;
    /*
     * A guest access reached a device that failed and will be restarted. Return true if the access is abandoned
     * and made again after the next hub_devmgr_poll() (which restarts the device first, waiting out the rest of
     * its backoff): the CPU does this for its own loads and stores (hub_cpu_defer_access). NULL or false: the
     * access fails (MEMTX_ERROR) and the device is restarted by a later hub_devmgr_poll().
     */
    bool (*defer_access)(void *opaque);
    void *defer_opaque;
    /* One line per guest access to a device, IRQ change, DMA by message and time grant, with its virtual time
     * (plexus run --event-log). NULL: none. */
    FILE *event_log;
    /* A device wrote guest RAM [@addr, +@len): by a DMA message the hub carried out, or through its own mapping
     * (its DmaWritten report, which arrives before anything else it sends after the write). The machine drops
     * the CPU's translated code of those pages (hub_cpu_ram_written). The pages are also marked in the memory
     * API's dirty log. NULL: nobody to tell. */
    void (*ram_written)(void *opaque, uint64_t addr, uint64_t len);
    void *ram_written_opaque;
    /* The timeline's view of the devices (NULL: none). */
    const hub_devmgr_observer *observer;
    void *observer_opaque;
} hub_devmgr_env;

#define HUB_DEFAULT_QUANTUM_NS 10000u

/* env.log's level for a line a device process wrote to its stdout or stderr. */
#define HUB_LOG_OUTPUT 8

/* What one device may make the hub hold or do; 0 in a field means its default. Going past one fails the device
 * with a line naming the limit, never the hub. (Fixed bounds: docs/reliability.md, "Limits".) */
typedef struct hub_device_limits {
    uint64_t region_bytes;          /* total size of the regions it declares (address space) */
    uint64_t shadow_bytes;          /* total size of its SHADOW regions (memory, allocated as it is used) */
    uint32_t log_bytes_per_s;       /* bytes of log and output in one second */
} hub_device_limits;
#define HUB_LIMIT_REGION_BYTES (UINT64_C(1) << 30)
#define HUB_LIMIT_SHADOW_BYTES (UINT64_C(16) << 20)
#define HUB_LIMIT_LOG_BYTES_PER_S (1u << 20)

typedef struct hub_prop { const char *key; const char *value; } hub_prop;
/* Where a region the device declares (by name; NULL = the first region it declares) appears in guest physical
 * address space. */
typedef struct hub_region_map { const char *region; uint64_t base; } hub_region_map;
/* Device IRQ line @line (index in its declaration) drives hub irq @irq. */
typedef struct hub_irq_map { unsigned line; unsigned irq; } hub_irq_map;

/* A host file the hub opens for the device and hands it as a descriptor (a disk image), so that the device
 * never opens paths itself. */
typedef struct hub_file {
    const char *name;       /* what the device asks for (plx_dev_file); a name as for devices */
    const char *path;
    bool readonly;          /* opened read-only (and shared-locked); else read-write (exclusively locked) */
} hub_file;

/* The device channel's transport. */
typedef enum hub_transport {
    HUB_TRANSPORT_AUTO,     /* the ring for a device on this host, ZeroMQ for an explicit endpoint (tcp://, ipc://);
                               PLEXUS_TRANSPORT=zmq in the hub's environment makes it ZeroMQ everywhere */
    HUB_TRANSPORT_ZMQ,      /* a ZeroMQ PAIR socket */
    HUB_TRANSPORT_RING,     /* a shared-memory ring (plexus/chan.h); not with an explicit endpoint */
} hub_transport;

typedef struct hub_device_config {
    const char *name;               /* unique; used in every log line about this device */
    const char *program;            /* executable to spawn, or NULL */
    const char *plugin;             /* shared object run by plexus-device-runner, or NULL */
    const char *const *argv;        /* extra arguments (NULL-terminated), or NULL */
    const hub_prop *props;
    size_t n_props;
    const hub_region_map *regions;  /* every declared region must be placed */
    size_t n_regions;
    const hub_irq_map *irqs;
    size_t n_irqs;
    /* The device's DMA windows: names of the RAM blocks it may map and reach by message; NULL with
     * n_ram_grants 0 = all blocks; non-NULL and empty = none. DMA anywhere else (another RAM block, a device
     * region, a hole), by mapping or by message, is refused (the device sees a bus error) and logged. */
    const char *const *ram_grants;
    size_t n_ram_grants;
    unsigned timeout_ms;            /* per synchronous request; 0 = 1000 */
    const char *endpoint;           /* NULL = ipc in run_dir; "tcp://host:port" = bind there (no fds: DMA by message) */
    /* tcp:// only: the device's CURVE public key (40 characters of Z85): only a peer proving it gets through the
     * ZeroMQ handshake. NULL: a device the hub starts gets a pair made for it; an attaching one is heard on the
     * loopback interface only (the endpoint's host is replaced), and the log says so. */
    const char *curve_key;
    bool attach;                    /* do not spawn: wait for an external process to connect */
    unsigned attach_timeout_ms;     /* 0 = 10000 */
    /* The machine's console: the device gets the keyboard (hub_device_console_input) and its console output goes
     * to env.console_output, both over its channel (a device without CAP_CONSOLE has neither). */
    bool console;
    /* Confine the device process with a system-call allowlist (seccomp) once its init() is done: the SDK's
     * policy @sandbox_policy plus @sandbox_allow (names). A call outside it ends the device; the log names it.
     * (Every spawned device is jailed before its code runs whatever this says: see "Jail" below.) */
    bool sandbox;
    const char *sandbox_policy;     /* NULL (the default) or a PLX_SANDBOX_POLICY_* name (plexus/protocol.h) */
    const char *const *sandbox_allow;
    size_t n_sandbox_allow;
    /*
     * Jail. A device the hub spawns runs in new pid, mount, ipc and uts namespaces (a user namespace too when the
     * hub is unprivileged; a network namespace unless its endpoint is tcp://), in a private read-only root with
     * /usr, its program, plugin and their libraries, its own /proc and /dev/null, /dev/zero, /dev/urandom, with
     * every capability dropped, no_new_privs, Landlock and a seccomp filter of what no device needs, all before
     * its code runs (docs/reliability.md, "Threat model"). Host paths it may read (@sandbox_read) or read and
     * write (@sandbox_write; a missing file is created empty) appear at the same place. A layer the kernel
     * refuses is logged once and left out, or, with @strict, the device is refused.
     */
    const char *const *sandbox_read;
    size_t n_sandbox_read;
    const char *const *sandbox_write;
    size_t n_sandbox_write;
    bool strict;
    /* Supervision: a device that failed (died, hung, broke the protocol) is started again, fresh, from
     * hub_devmgr_poll() after @restart_backoff_ms (0 = 100), at most @max_restarts times (0 = never). Its
     * regions stay mapped (accesses are deferred, see env.defer_access, or fail until it is back); the new
     * process must declare the same regions and IRQ lines. Lines the old process had raised are lowered when
     * it fails. (An attach-mode device is waited for again, up to attach_timeout_ms, inside that
     * hub_devmgr_poll() call.) */
    unsigned max_restarts;
    unsigned restart_backoff_ms;
    /* Grant the RAM windows without their descriptors: the device maps nothing and every DMA goes by
     * message (what a tcp device gets anyway). */
    bool ram_by_message;
    /* Lockstep: the device advances only when the hub grants it time (at quantum boundaries and at the next
     * event it announces) or accesses it; its writes are synchronous and its messages are served only while
     * the hub waits on it, so everything it does happens at a virtual time the hub decides. The device must
     * offer CAP_LOCKSTEP (the C SDK does). */
    bool lockstep;
    hub_device_limits limits;
    hub_transport transport;
    unsigned ring_slots;            /* slots per direction of a ring (64 bytes each); 0 = 1024 */
    unsigned ring_spin_us;          /* how long a side of the ring spins before it sleeps; 0 = 50 */
    /* Files opened when the device is added (kept, and passed again to a restarted process), at most
     * PLX_MAX_FILES. A device on another host (tcp://) gets no descriptors: files are refused for it. */
    const hub_file *files;
    size_t n_files;
} hub_device_config;

/* Free everything @c points to (the strings and arrays of a description built on the heap), not @c itself. */
void hub_device_config_clear(hub_device_config *c);

typedef struct hub_devmgr_stats {
    uint64_t sync_reads;            /* read round trips */
    uint64_t sync_writes;           /* write round trips */
    uint64_t posted_writes;
    uint64_t shadow_reads;          /* reads served from a shadow page */
    uint64_t irq_events;
    uint64_t dma_messages;
    uint64_t dma_refused;           /* DMA by message outside the device's RAM grants */
    uint64_t grants;                /* lockstep time grants answered */
    uint64_t syncs;                 /* Sync round trips: the guest looked at interrupt state after posted writes */
    uint64_t dma_written;           /* ranges a device reported writing through its mapping (DmaWritten) */
} hub_devmgr_stats;

hub_devmgr *hub_devmgr_new(const hub_devmgr_env *env, Error **errp);

/*
 * Start the device (or wait for it to attach), handshake, grant RAM, and map its regions into env->sysmem.
 * Fails with a message naming the device if it cannot start, does not answer in time, declares something
 * invalid, or leaves a declared region unplaced. Returns NULL on failure, with nothing left running.
 */
hub_device *hub_devmgr_add(hub_devmgr *m, const hub_device_config *cfg, Error **errp);

/* Serve messages from devices for at most @timeout_ms (0: only what is ready, -1: until something arrives), and
 * restart failed devices whose backoff passed. If a guest access was deferred for a restart, the call first
 * waits out that device's backoff and restarts it, whatever @timeout_ms says. */
int hub_devmgr_poll(hub_devmgr *m, int timeout_ms);

/* The same, and return early when @fd (if >= 0, e.g. the console's input) becomes readable; @fd is not read. */
int hub_devmgr_wait(hub_devmgr *m, int timeout_ms, int fd);

/*
 * Posted writes to a device may be held briefly and sent coalesced in one frame. They go out before any other
 * message to that device (so a later read or shadow read sees them), when virtual time moves, in
 * hub_devmgr_poll(), and here. Call hub_devmgr_poll() or this from the CPU loop between execution slices.
 */
void hub_devmgr_flush(hub_devmgr *m);

/*
 * The guest is about to observe interrupt state (hub_cpu_config.irq_sync): every posted write, timer fire and
 * reset sent to a device so far is applied and the IRQ changes it caused are made before this returns. A device
 * with such requests unanswered gets its held writes and a Sync (PLX_CAP_SYNC), and the hub waits for the answer,
 * serving what the device sends before it; a device without the capability gets its held writes and what it
 * already sent is served. Not from inside a wait on a device (does nothing then).
 */
void hub_devmgr_sync(hub_devmgr *m);

/* Orderly shutdown of every device, then free. Accepts NULL. */
void hub_devmgr_free(hub_devmgr *m);

const char *hub_device_name(const hub_device *d);
/* Size of the declared region @region, or 0 if the device declared no such region. */
uint64_t hub_device_region_size(const hub_device *d, const char *region);
/* The endpoint external devices connect to (attach mode), and the UNIX socket path that hands out RAM fds. */
const char *hub_devmgr_attach_socket(const hub_devmgr *m);
void hub_devmgr_get_stats(const hub_devmgr *m, hub_devmgr_stats *out);

/* ---- extensions (device layer) ---- */

/* Number of regions the device declared. */
unsigned hub_device_n_regions(const hub_device *d);
/* Region @i in declaration order: its name (valid until hub_devmgr_free), guest base and size. Any out-pointer
 * may be NULL. Returns 0, or -ENOENT when @i is past the end. */
int hub_device_region_info(const hub_device *d, unsigned i, const char **name, uint64_t *base, uint64_t *size);
/* The device's model as it declared it (e.g. "ns16550a"). */
const char *hub_device_model(const hub_device *d);
/* The device-tree node name the device declared ("serial"), or NULL. */
const char *hub_device_dt_node(const hub_device *d);
/* The endpoint of the device's channel (for tcp:// with port 0 or *, the port actually bound). */
const char *hub_device_endpoint(const hub_device *d);
/* Process id of a spawned device while it runs (the device's own process, inside its jail); 0 for attached
 * devices or after it exited. */
int hub_device_pid(const hub_device *d);
/* True once the device died, timed out or broke the protocol: its accesses then fail with MEMTX_ERROR. */
bool hub_device_failed(const hub_device *d);
/* Ask the device to reset (ordered after every earlier access). Returns 0 or -EIO if the device failed. */
int hub_device_reset(hub_device *d);
/* How many times the device was restarted after failing. */
unsigned hub_device_restarts(const hub_device *d);
/* Statistics of one device. */
void hub_device_get_stats(const hub_device *d, hub_devmgr_stats *out);
/* The layers of the jail its current process runs in, as words ("user pid mount ipc uts net landlock seccomp
 * caps no_new_privs"; "" for an attached device), in @buf of @len bytes. */
const char *hub_device_confinement(const hub_device *d, char *buf, size_t len);
/*
 * Keyboard input for the console device: up to @len bytes of @data, as many as it can take now (it grants
 * room as its guest reads). Returns the number taken (0: no room now), -ENOTSUP if the device does not take the
 * console over its channel (no CAP_CONSOLE) or is not the console, -EIO if it failed.
 */
int hub_device_console_input(hub_device *d, const uint8_t *data, size_t len);

#endif
