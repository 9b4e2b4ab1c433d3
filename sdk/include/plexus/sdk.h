/*
 * plexus device SDK: what a device model links to run as its own process next to the plexus hub.
 *
 * A device is a table of callbacks (plx_device_ops) plus the regions, IRQ lines and properties it declares.
 * The SDK connects to the hub, performs the handshake (docs/protocol.md), maps the guest RAM blocks the hub
 * grants, and then runs a single-threaded loop that turns hub messages into calls of the region callbacks,
 * timer callbacks and fd callbacks. Every callback runs on that loop's thread, one at a time.
 *
 * Two ways to host a device:
 *   - own main():   int main(int argc, char **argv) { return plx_dev_main(&my_ops, argc, argv); }
 *   - plugin (.so): PLX_DEVICE_DEFINE(&my_ops); then `plexus-device-runner my_device.so [args]`.
 *
 * Build an out-of-tree device:  cc dev.c $(pkg-config --cflags --libs plexus-sdk)
 *
 * Lifetime: the SDK owns the plx_dev. It is valid from init() until fini() returns. The pointer the device
 * stores in *opaque during init() is passed to every region callback, reset() and fini(); fini() frees it.
 * Timers are owned by the device: plx_timer_free() each one (in fini() at the latest).
 * Strings returned by plx_dev_prop() stay valid until fini() returns.
 *
 * Errors: int functions return 0 or a negative errno and leave out-parameters untouched on failure.
 */
#ifndef PLEXUS_SDK_H
#define PLEXUS_SDK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "plexus/protocol.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The SDK library is built with -fvisibility=hidden; this marks its public entry points. */
#define PLX_EXPORT __attribute__((visibility("default")))

/*
 * Version of this SDK, the same as the plexus release it comes with. The library's soname is
 * libplexus-sdk.so.PLX_VERSION_MAJOR: within one major version the library only grows, so a device built
 * against an older release of the same major runs on a newer one (docs/sdk.md, "Versions").
 * Test for a feature with  #if PLX_VERSION >= PLX_VERSION_NUM(0, 2, 0).
 */
#define PLX_VERSION_MAJOR 0
#define PLX_VERSION_MINOR 1
#define PLX_VERSION_PATCH 0
#define PLX_VERSION_NUM(major, minor, patch) (((major) << 16) | ((minor) << 8) | (patch))
#define PLX_VERSION PLX_VERSION_NUM(PLX_VERSION_MAJOR, PLX_VERSION_MINOR, PLX_VERSION_PATCH)
#define PLX_VERSION_STR_(x) #x
#define PLX_VERSION_STR(x) PLX_VERSION_STR_(x)
#define PLX_VERSION_STRING \
    PLX_VERSION_STR(PLX_VERSION_MAJOR) "." PLX_VERSION_STR(PLX_VERSION_MINOR) "." PLX_VERSION_STR(PLX_VERSION_PATCH)

/* Version of struct plx_device_ops; bump when its layout changes. Older tables (version 1 without advance,
 * version 2 without dt_node) still run. */
#define PLX_DEVICE_OPS_VERSION 3

/* The wire protocol's version, limits and capability bits (PLX_PROTOCOL_MAJOR, ...): plexus/protocol.h. */

/* The running device (opaque). */
typedef struct plx_dev plx_dev;

/* Byte order of a region's registers. Region callbacks always see and return plain integers. */
enum plx_endian { PLX_LITTLE_ENDIAN = 0, PLX_BIG_ENDIAN = 1 };

/*
 * How the hub forwards guest accesses to a region:
 *   PLX_REGION_IO      every read and write is a synchronous round trip (the guest waits for the device).
 *   PLX_REGION_POSTED  writes are posted (the hub does not wait); reads are synchronous and ordered after every
 *                      earlier write.
 *   PLX_REGION_SHADOW  writes are posted; reads are served by the hub from a shared "shadow page" that the
 *                      device keeps current with plx_shadow_store(), except reads inside the read_through
 *                      ranges, which are synchronous round trips (registers whose reads have side effects).
 *                      A shadow read issued after posted writes waits until the device has applied them.
 */
enum plx_region_kind { PLX_REGION_IO = 0, PLX_REGION_POSTED = 1, PLX_REGION_SHADOW = 2 };

/* Access size and alignment rules (the meaning of QEMU's MemoryRegionOps.valid / .impl). Sizes in bytes:
 * 1, 2, 4 or 8; 0 means the default, as in QEMU: 1 for min_access_size, 4 for max_access_size. */
typedef struct plx_access_rules {
    unsigned min_access_size;
    unsigned max_access_size;
    bool unaligned;
} plx_access_rules;

/*
 * Callbacks of one region. @addr is the offset inside the region, @size the access size in bytes. The hub
 * splits and widens guest accesses so that the callbacks only ever see sizes within @impl (and aligned unless
 * impl.unaligned); guest accesses outside @valid never reach the device (the guest gets a decode error).
 * @read returns the register value (the low @size bytes count); @write receives it in @data.
 * Either may be NULL: reads then return 0, writes are ignored.
 */
typedef struct plx_region_ops {
    uint64_t (*read)(void *opaque, uint64_t addr, unsigned size);
    void (*write)(void *opaque, uint64_t addr, uint64_t data, unsigned size);
    enum plx_endian endianness;
    plx_access_rules valid;     /* what the guest may do (hub rejects the rest: decode error) */
    plx_access_rules impl;      /* what read/write handle (hub splits/widens) */
} plx_region_ops;

/* A byte range inside a region. */
struct plx_range {
    uint64_t offset;
    uint64_t len;
};

typedef struct plx_region_info {
    const char *name;           /* unique within the device; the machine description places it by this name */
    uint64_t size;              /* bytes, > 0 */
    enum plx_region_kind kind;
    const plx_region_ops *ops;
    /*
     * SHADOW only: byte ranges whose reads still go to ops->read (reads with side effects), as {offset,len}
     * pairs; every other read is served by the hub from the shadow page the device keeps current.
     * Writes to POSTED and SHADOW regions are always posted (the hub does not wait for them).
     */
    const struct plx_range *read_through;
    unsigned n_read_through;
} plx_region_info;

/* A property the device accepts from the machine description. */
typedef struct plx_prop_info {
    const char *name;
    const char *default_value;  /* NULL: no default (plx_dev_prop returns NULL unless configured) */
    const char *description;
} plx_prop_info;

typedef struct plx_device_ops {
    uint32_t version;                   /* PLX_DEVICE_OPS_VERSION */
    const char *model;                  /* e.g. "ns16550a" */
    const plx_region_info *regions;
    unsigned n_regions;
    const char *const *irq_names;       /* IRQ line i is called irq_names[i] */
    unsigned n_irqs;
    const plx_prop_info *props;
    unsigned n_props;                   /* unknown properties from the config are an error */
    /*
     * Called once after the handshake: properties, granted RAM and shadow pages are available. Store the
     * device state in *@opaque. Return 0, or a negative errno after plx_log()ing why (the device then exits
     * and the hub reports the failure with that message). If the machine sandboxes the device, a system-call
     * allowlist is installed right after init returns (docs/sdk.md): open files, ptys and sockets here.
     */
    int (*init)(plx_dev *dev, void **opaque);
    void (*reset)(void *opaque);        /* device reset requested by the hub; may be NULL */
    void (*fini)(void *opaque);         /* orderly shutdown: free everything; may be NULL */
    /*
     * Version 2. Lockstep (machine.yaml `sync: lockstep`): the hub grants virtual time in quanta; the device
     * may do its own work up to @until_ns (plx_now() returns @until_ns during the call) and never past it. IRQ
     * changes and DMA made here happen before the hub continues. Before returning, say when the device next
     * needs to act on its own with plx_set_next_event(). NULL: the device only acts when accessed or on its
     * timers (grants are answered at once). Outside lockstep it is never called.
     */
    void (*advance)(void *opaque, uint64_t until_ns);
    /*
     * Version 3. The generic device-tree node name of this kind of device (the device-tree specification's
     * "serial", "dma-controller", ...; letters, digits and ,._+-). The hub names the device's node NAME@BASE
     * with it unless the machine description gives `dt.node`; NULL: the device's name in the machine.
     */
    const char *dt_node;
} plx_device_ops;

/*
 * Run a device: parse the SDK's arguments, connect to the hub, handshake, init(), then serve requests until
 * the hub shuts the device down or plx_dev_stop() is called. Returns the process exit status.
 *
 * Where the hub is: argument --plexus-endpoint=URL or env PLEXUS_ENDPOINT (the hub sets it when it spawns the
 * device); or, for a device started by someone else, --plexus-attach=PATH (env PLEXUS_ATTACH) naming the hub's
 * attach socket, with --plexus-name=NAME (env PLEXUS_DEVICE_NAME) saying which configured device this is and the
 * key the hub made for it: env PLEXUS_ATTACH_KEY, else the file --plexus-key-file=PATH, else NAME.key next to the
 * attach socket (the hub writes it there, readable by its user only).
 * Arguments starting with --plexus- are consumed; the rest are ignored by the SDK.
 */
PLX_EXPORT int plx_dev_main(const plx_device_ops *ops, int argc, char **argv);

/* Entry point a plugin exports; plexus-device-runner looks this symbol up with dlsym. */
#define PLX_DEVICE_ENTRY_SYMBOL "plx_device_entry"
typedef const plx_device_ops *plx_device_entry_fn(void);

/* Put once in a plugin's source: PLX_DEVICE_DEFINE(&my_ops); */
#define PLX_DEVICE_DEFINE(ops_ptr)                                                                            \
    __attribute__((visibility("default"))) const plx_device_ops *plx_device_entry(void);                    \
    __attribute__((visibility("default"))) const plx_device_ops *plx_device_entry(void) { return (ops_ptr); }

/* --- properties ------------------------------------------------------------------------------------------- */

/* The configured value of property @name, or its default; NULL if the device declared no such property (or it
 * has no default and was not configured). */
PLX_EXPORT const char *plx_dev_prop(plx_dev *dev, const char *name);

/* Property @name as an unsigned integer (decimal, 0x hex, 0 octal; suffixes k/K, m/M, g/G multiply by 1024^n).
 * Returns 0, or -EINVAL (missing or not a number; a log record through the hub names the property). */
PLX_EXPORT int plx_dev_prop_u64(plx_dev *dev, const char *name, uint64_t *out);

/* The device's name in the machine description (not its model). */
PLX_EXPORT const char *plx_dev_name(plx_dev *dev);

/* --- files the machine gives the device ------------------------------------------------------------------ */

/*
 * The descriptor of file @name that the machine gives the device (machine.yaml `files:`; a disk image): the hub
 * opened it, so the device never opens paths (and may run sandboxed). *@readonly (may be NULL) says whether it
 * was opened read-only; then the device must not write it. The descriptor belongs to the SDK: do not close it;
 * it stays valid until fini() returns, and a restarted process gets the same file again. Returns the descriptor,
 * or -ENOENT if the machine gives no such file. A file the device never asks for in init() is reported in the
 * log (a misspelt name in the machine file).
 */
PLX_EXPORT int plx_dev_file(plx_dev *dev, const char *name, bool *readonly);

/* --- state that survives a restart ------------------------------------------------------------------------ */

#define PLX_STATE_MAX (PLX_STATE_BLOCK_SIZE - PLX_STATE_HEADER_SIZE)
/*
 * @size bytes (1..PLX_STATE_MAX) for the device's state, zeroed, or as the previous process of this device
 * left them when the hub restarted it after a failure (then *@restored is true). Keep there everything the
 * guest can observe (registers it programmed, FIFOs) and no pointers; on a restore, re-publish shadow
 * registers and IRQ levels (the hub cleared them). The block belongs to the hub (a memfd that outlives the
 * process); a device the hub did not spawn, or an older hub, gets private memory and never *@restored. Call
 * from init(); the same pointer is returned again for the same @size. NULL with errno EINVAL for a bad size.
 */
PLX_EXPORT void *plx_dev_state(plx_dev *dev, size_t size, bool *restored);

/* --- DMA into guest memory -------------------------------------------------------------------------------- */

/*
 * Copy between guest physical memory and @buf. Served from granted RAM mapped into this process when the whole
 * range lies in one mapped block; otherwise by messages to the hub (which goes through its address space, so
 * MMIO of other devices is reachable too). Returns 0, -EFAULT (the hub reported a bus error or the range is
 * outside granted RAM and unmapped), -EACCES (write to a read-only grant), or -EIO (hub gone).
 */
PLX_EXPORT int plx_dma_read(plx_dev *dev, uint64_t addr, void *buf, size_t len);
PLX_EXPORT int plx_dma_write(plx_dev *dev, uint64_t addr, const void *buf, size_t len);

/* A direct pointer to guest RAM [@addr, @addr+@len) if it lies inside one mapped grant (writable if @write),
 * else NULL. Valid until fini() returns. After writing through it, say so with plx_dma_written(). */
PLX_EXPORT void *plx_dma_map(plx_dev *dev, uint64_t addr, size_t len, bool write);

/*
 * Guest RAM [@addr, @addr+@len) was written through a pointer from plx_dma_map() (from any thread; call this on
 * the run loop once the bytes are there). The SDK reports such writes to the hub in batches, without a round
 * trip: before the next message the device sends (an IRQ, a register reply: whatever tells the guest the data
 * is there) and at the end of the current callback. The hub then drops the guest CPU's translated code of those
 * pages (code read from a disk into pages that held other code runs as read) and marks them in its dirty log.
 * plx_dma_write() reports its own writes. Writes not reported stay invisible to the guest CPU's code cache.
 */
PLX_EXPORT void plx_dma_written(plx_dev *dev, uint64_t addr, size_t len);

/* A block of guest RAM granted to the device and mapped into this process. */
typedef struct plx_dma_window {
    uint64_t base;          /* guest physical address of its first byte */
    uint64_t size;          /* bytes */
    void *ptr;              /* where that first byte is mapped here; valid until fini() returns */
    bool readonly;          /* the grant is read-only: DMA writes are refused */
} plx_dma_window;
/* The mapped grant that holds guest address @addr, whole (for handing out direct access to a range larger than
 * one transfer, as TLM-2.0's DMI does). Returns 0, or -ENOENT if @addr is in no mapped grant (outside the
 * device's grants, or granted without its descriptor: DMA by message), leaving *@out untouched. */
PLX_EXPORT int plx_dma_window_at(plx_dev *dev, uint64_t addr, plx_dma_window *out);

/* --- interrupts ------------------------------------------------------------------------------------------- */

/* Drive IRQ line @line (index into ops->irq_names) to @level (0 or 1). Only changes are sent. */
PLX_EXPORT void plx_irq_set(plx_dev *dev, unsigned line, int level);
/* Raise and lower @line (an edge for edge-triggered controllers). */
PLX_EXPORT void plx_irq_pulse(plx_dev *dev, unsigned line);

/* --- virtual time ----------------------------------------------------------------------------------------- */

/* Timers run on the hub's virtual clock: the hub fires them when guest time reaches the deadline. */
typedef struct plx_timer plx_timer;

/* A new, disarmed timer that calls @cb(@opaque) on the run loop thread. NULL on allocation failure. */
PLX_EXPORT plx_timer *plx_timer_new(plx_dev *dev, void (*cb)(void *opaque), void *opaque);
/* Arm (or re-arm) at absolute virtual time @deadline_ns. A deadline in the past fires as soon as the hub's
 * clock next moves. */
PLX_EXPORT void plx_timer_mod(plx_timer *t, uint64_t deadline_ns);
/* Disarm; harmless if not armed. A fire already in flight for the old deadline is discarded. */
PLX_EXPORT void plx_timer_del(plx_timer *t);
/* Disarm and free. Accepts NULL. */
PLX_EXPORT void plx_timer_free(plx_timer *t);
/* Virtual time in ns as of the last message from the hub (inside a timer callback: the timer's deadline). */
PLX_EXPORT uint64_t plx_now(plx_dev *dev);

/* Lockstep: the earliest virtual time the device must next act on its own (the hub grants time up to it
 * exactly, so an interrupt raised then is delivered then); PLX_NEVER: only when accessed. Sent with each answer
 * to a grant; the last value set stands. */
#define PLX_NEVER UINT64_MAX
PLX_EXPORT void plx_set_next_event(plx_dev *dev, uint64_t ns);
/* True if the machine runs this device in lockstep (known from init() on): it then gets advance() calls and
 * should report its next event rather than (or as well as) arming timers. */
PLX_EXPORT bool plx_dev_lockstep(plx_dev *dev);
/* Lockstep, from a read or write callback of an IO region: the access kept the device's bus busy for @ns of
 * virtual time (an RTL transfer's setup and wait cycles). The hub charges it to the guest's clock. */
PLX_EXPORT void plx_set_access_busy(plx_dev *dev, uint64_t ns);

/* How a guest access ended (QEMU's MemTxResult): the guest sees an error as a bus error (on RISC-V a load or
 * store access fault at the instruction; the load's register is not written); the event log tells the two
 * errors apart. */
enum plx_access_result {
    PLX_ACCESS_OK = 0,
    PLX_ACCESS_ERROR = 1,           /* the device failed the access (a slave error) */
    PLX_ACCESS_DECODE_ERROR = 2,    /* nothing answers at that address */
};
/* From a read or write callback: answer the access with @result instead of success (the value a read callback
 * returns is then ignored). A posted write has no answer: its result is dropped. Reset before every access. */
PLX_EXPORT void plx_set_access_result(plx_dev *dev, enum plx_access_result result);
/* plx_irq_set() with the virtual time the line changed (inside advance(): a time up to its @until_ns); the
 * hub's event log records it. */
PLX_EXPORT void plx_irq_set_at(plx_dev *dev, unsigned line, int level, uint64_t at_ns);

/* --- shadow register pages -------------------------------------------------------------------------------- */

/* The shadow page of SHADOW region @region (index into ops->regions): a little-endian image of the region's
 * registers, region-size bytes, shared with the hub. NULL if @region is not a SHADOW region, or if the hub
 * could not share a page (device over tcp://): the hub then sends every read to ops->read, so a SHADOW
 * region's read callback must be able to answer every offset. Prefer plx_shadow_store(), which publishes
 * atomically. */
PLX_EXPORT void *plx_shadow(plx_dev *dev, unsigned region);
/* Store @value (@size = 1, 2, 4 or 8 bytes, little-endian) at @offset of the shadow page and publish it: guest
 * reads served by the hub after this call see the new value. Out-of-range stores are ignored. */
PLX_EXPORT void plx_shadow_store(plx_dev *dev, unsigned region, uint64_t offset, uint64_t value,
                                 unsigned size);

/* --- run loop --------------------------------------------------------------------------------------------- */

/* Call @cb(@opaque, @fd) on the run loop whenever @fd is readable. Calling again with the same @fd replaces the
 * callback; @cb NULL stops watching @fd. Returns 0, -EINVAL (fd < 0) or -ENOMEM. */
PLX_EXPORT int plx_dev_watch_fd(plx_dev *dev, int fd, void (*cb)(void *opaque, int fd), void *opaque);

/* Send a log record (level: enum plx_log_level of plexus/protocol.h, PLX_LOG_ERR ... PLX_LOG_DEBUG) to the hub,
 * which prefixes the device's name. Before the connection is up, or once it is lost, to the log handler. */
PLX_EXPORT void plx_log(plx_dev *dev, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * Where records go that cannot go to the hub: the SDK's own about connecting and the handshake, and plx_log()
 * before the connection is up or after it is lost. Process-wide; set it before plx_dev_main() or plx_dev_open().
 * The SDK never prints on its own: plx_dev_main() (a program's main) sets a handler that writes
 * "DEVICE: text" lines to standard error when none is set; a program that embeds plx_dev_open() sets its own,
 * or gets none (records dropped). @device is the device's name, or its model before it has one.
 */
typedef void plx_log_handler(void *opaque, int level, const char *device, const char *text);
PLX_EXPORT void plx_set_log_handler(plx_log_handler *fn, void *opaque);

/*
 * ---- the machine's console ----
 * The device the machine names as its `console:` gets the keyboard and shows the guest's output through the
 * hub, over its channel (docs/protocol.md, "Console"): never through the terminal, which a device never holds.
 *
 * plx_console_attached(): true when the hub made this device the console (known from init() on).
 * plx_console_write(): show @len bytes on the hub's console as they are. 0, -ENOTSUP (not the console) or -EIO.
 * plx_console_set_input(): @cb gets the keyboard's bytes on the run loop, never more than granted.
 * plx_console_grant(): the device can take @bytes more input now (e.g. the room its receive FIFO has left); the
 * hub sends at most what was granted and not yet sent. 0 or -ENOTSUP.
 */
PLX_EXPORT bool plx_console_attached(plx_dev *dev);
PLX_EXPORT int plx_console_write(plx_dev *dev, const void *buf, size_t len);
PLX_EXPORT void plx_console_set_input(plx_dev *dev, void (*cb)(void *opaque, const uint8_t *buf, size_t len),
                                      void *opaque);
PLX_EXPORT int plx_console_grant(plx_dev *dev, size_t bytes);

/* Leave the run loop after the current callback; plx_dev_main() then calls fini() and returns @status
 * (plx_dev_dispatch() returns 1, and plx_dev_close() returns @status). */
PLX_EXPORT void plx_dev_stop(plx_dev *dev, int status);

/*
 * ---- a run loop owned by the caller ----
 * A device that lives inside another event loop (a SystemC kernel, a simulator's own loop, a Python program):
 *
 *     plx_dev *dev = plx_dev_open(&my_ops, argc, argv);      // connect, handshake, init(), Ready
 *     int fd = plx_dev_get_poll_fd(dev);                       // add to the loop: wait for POLLIN
 *     ... when fd is readable (or whenever convenient):  r = plx_dev_dispatch(dev, 0);
 *     ... r == 1 (stopped: Shutdown or plx_dev_stop) or r < 0 (hub gone):  status = plx_dev_close(dev);
 *
 * Everything runs on the caller's thread, inside these calls; the SDK starts no thread of its own (ZeroMQ's
 * I/O thread aside, on a device that stays on ZeroMQ rather than the same-host ring).
 *
 * plx_dev_open(): as plx_dev_main() up to its run loop (same arguments and environment, same handshake; a
 * sandbox the machine asks for confines the calling process). NULL on failure, the reason given to the log
 * handler (and to the hub, once connected). Ignores SIGPIPE, as plx_dev_main() does.
 *
 * plx_dev_get_poll_fd(): one descriptor (an epoll set of the hub channel, the hub-gone signal and the watched
 * descriptors) that is readable when plx_dev_dispatch() has work. Valid until plx_dev_close().
 *
 * plx_dev_dispatch(): serve what is there (hub messages, watched descriptors), waiting at most @timeout_ms for
 * something to come (0: never wait; -1: until something comes); before it returns it arms the channel so that
 * the next frame makes the descriptor readable. Callbacks (region, timer, watch) run inside it. It blocks longer
 * only where the device asked for it: DMA by message inside a callback waits for the hub's reply. On the
 * shared-memory ring a call that may wait (@timeout_ms not 0) first spins for the ring's spin budget (50 us by
 * default) before it sleeps, as plx_dev_main()'s loop does: a request that comes meanwhile costs no wake-up (the
 * other descriptors wait that long at most). Returns 0 (call again when the descriptor is readable), 1 (the
 * device stopped), or -ECONNRESET (the hub is gone) / -EIO.
 *
 * plx_dev_close(): fini(), Goodbye to the hub if it is still there, free. Returns the exit status the device
 * asked for (plx_dev_stop), else 0. Accepts NULL.
 */
PLX_EXPORT plx_dev *plx_dev_open(const plx_device_ops *ops, int argc, char **argv);
PLX_EXPORT int plx_dev_get_poll_fd(plx_dev *dev);
PLX_EXPORT int plx_dev_dispatch(plx_dev *dev, int timeout_ms);
PLX_EXPORT int plx_dev_close(plx_dev *dev);

/* The opaque init() stored (NULL before init returns). */
PLX_EXPORT void *plx_dev_opaque(plx_dev *dev);

#ifdef __cplusplus
}
#endif

#endif
