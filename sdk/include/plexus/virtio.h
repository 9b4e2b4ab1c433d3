/*
 * plexus virtio devices: the device side of virtio-mmio version 2 (virtio 1.x), on top of the device SDK.
 *
 * The layer owns the transport: the register window (magic, version, IDs, feature negotiation with
 * VIRTIO_F_VERSION_1, status and reset, the device-specific configuration space with its generation counter),
 * split virtqueues (indirect descriptors, event index), notifications and the interrupt. A device supplies a
 * plx_virtio_ops table: its device ID, feature bits, queue count and size, configuration bytes, and a request
 * callback that receives one descriptor chain at a time as scatter-gather lists into guest RAM.
 *
 *     static void request(void *opaque, plx_virtio_req *req)
 *     {
 *         ... read the request from req->out[], write the answer into req->in[] ...
 *         plx_virtio_complete(req, bytes_written);
 *     }
 *     static const plx_virtio_ops ops = {
 *         .version = PLX_VIRTIO_OPS_VERSION, .model = "vendor,virtio-thing", .device_id = PLX_VIRTIO_ID_RNG,
 *         .n_queues = 1, .queue_size = 256, .init = init, .request = request,
 *     };
 *     int main(int argc, char **argv) { return plx_virtio_main(&ops, argc, argv); }
 *     // or, for a plugin run by plexus-device-runner:  PLX_VIRTIO_DEVICE_DEFINE(&ops);
 *
 * The register window is one SHADOW region "regs" of PLX_VIRTIO_REGION_SIZE bytes with one IRQ line "irq": every
 * register read (InterruptStatus in the guest's interrupt handler included) is served by the hub from the shadow
 * page, and every write is posted, so QueueNotify costs the guest no round trip. Place it like any device
 * (machine.yaml: base, irq, and dt: {compatible: virtio,mmio}).
 *
 * Guest memory: descriptor tables, rings and buffers are reached through the RAM the machine grants the device,
 * mapped into this process (plx_dma_map). Every address and length is checked against those grants. A driver
 * error the layer finds (a descriptor chain that loops, has more descriptors than the queue size, points
 * outside the granted RAM, nests indirect tables, puts a device-readable buffer after a device-writable one, a
 * ring outside the grants, an available index that runs ahead by more than the queue size) sets
 * DEVICE_NEEDS_RESET, logs one line, and stops the device's queues until the driver resets it; nothing else is
 * touched. A device without mapped RAM (a tcp:// device, `dma: message`) cannot reach its queues and reports
 * DEVICE_NEEDS_RESET when the driver enables one.
 *
 * Threads: every callback runs on the SDK's run loop thread, and every function here must be called from it.
 * A device that works on other threads (disk I/O) hands the result back to the loop (plx_dev_watch_fd on an
 * eventfd) and completes the request there. Buffers in req->out[]/req->in[] may be read and written from any
 * thread until the request is completed.
 *
 * Restarts: the layer keeps the transport state (status, features, queue addresses and indices, the requests
 * in flight, the configuration bytes) in the SDK's state block (plx_dev_state), so a device the hub restarts
 * after a failure continues where the failed process stopped: requests the old process had taken but not
 * completed are handed to the new one again (so a request handler must be safe to run twice for the same
 * request, as disk reads and writes are). The layer claims the state block: a virtio device does not call
 * plx_dev_state itself.
 *
 * Lifetime: the layer owns the plx_virtio; it is valid from init() until fini() returns. A plx_virtio_req is
 * valid from request() until plx_virtio_complete() (which frees it); requests still held at fini() are freed
 * with the device.
 */
#ifndef PLEXUS_VIRTIO_H
#define PLEXUS_VIRTIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "plexus/sdk.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Version of struct plx_virtio_ops; bump when its layout changes. */
#define PLX_VIRTIO_OPS_VERSION 1

/* Bytes of the register window (control registers 0x000..0x0ff, configuration space from 0x100). */
#define PLX_VIRTIO_REGION_SIZE 0x200
/* Largest device-specific configuration space. */
#define PLX_VIRTIO_CONFIG_MAX 0x100
/* Most queues a device may have, and the largest queue size (QueueNumMax; QEMU's limit too). */
#define PLX_VIRTIO_MAX_QUEUES 16
#define PLX_VIRTIO_QUEUE_SIZE_MAX 1024
/* VendorID when the ops leave it 0: "PLXS". */
#define PLX_VIRTIO_VENDOR_ID 0x53584c50

/* Device IDs (virtio 1.x, "Device Types"). */
#define PLX_VIRTIO_ID_NET 1
#define PLX_VIRTIO_ID_BLOCK 2
#define PLX_VIRTIO_ID_CONSOLE 3
#define PLX_VIRTIO_ID_RNG 4

/* Feature bits the layer itself offers and handles; a device offers its own in plx_virtio_ops.features. */
#define PLX_VIRTIO_F_INDIRECT_DESC 28
#define PLX_VIRTIO_F_EVENT_IDX 29
#define PLX_VIRTIO_F_VERSION_1 32
#define PLX_VIRTIO_F_BIT(n) (UINT64_C(1) << (n))

/* Device status bits (the Status register). */
#define PLX_VIRTIO_STATUS_ACKNOWLEDGE 1u
#define PLX_VIRTIO_STATUS_DRIVER 2u
#define PLX_VIRTIO_STATUS_DRIVER_OK 4u
#define PLX_VIRTIO_STATUS_FEATURES_OK 8u
#define PLX_VIRTIO_STATUS_NEEDS_RESET 64u
#define PLX_VIRTIO_STATUS_FAILED 128u

/* The virtio transport of one device (opaque). */
typedef struct plx_virtio plx_virtio;

/*
 * One descriptor chain the driver made available: what the device reads (out[], "device-readable", first in
 * the chain) and where it writes its answer (in[], "device-writable", after them). The iovecs point into guest
 * RAM mapped in this process; zero-length descriptors are left out. Read-only for the device, except through
 * the buffers themselves.
 */
typedef struct plx_virtio_req {
    unsigned queue;             /* queue index */
    uint16_t head;              /* the chain's head descriptor index (what the used ring reports) */
    unsigned n_out, n_in;
    struct iovec *out;          /* device-readable buffers */
    struct iovec *in;           /* device-writable buffers */
    size_t out_len, in_len;     /* total bytes of each */
} plx_virtio_req;

typedef struct plx_virtio_ops {
    uint32_t version;           /* PLX_VIRTIO_OPS_VERSION */
    const char *model;          /* the device's model in the handshake, e.g. "plexus,virtio-blk" */
    uint32_t device_id;         /* PLX_VIRTIO_ID_*, non-zero */
    uint32_t vendor_id;         /* 0: PLX_VIRTIO_VENDOR_ID */
    /* Device-specific feature bits offered to the driver. The layer adds VERSION_1, INDIRECT_DESC and
     * EVENT_IDX and handles them; bits it does not implement (packed rings, notification data, ring reset,
     * access platform) must not be set here. */
    uint64_t features;
    unsigned n_queues;          /* 1..PLX_VIRTIO_MAX_QUEUES */
    unsigned queue_size;        /* QueueNumMax of every queue: a power of 2, 1..PLX_VIRTIO_QUEUE_SIZE_MAX */
    unsigned config_size;       /* bytes of the configuration space, 0..PLX_VIRTIO_CONFIG_MAX */
    const plx_prop_info *props; /* properties, as plx_device_ops.props */
    unsigned n_props;
    /*
     * Called once after the handshake (properties and granted RAM are available through plx_virtio_dev()).
     * Fill the configuration space (plx_virtio_config(), little-endian fields), open files, and store the
     * device state in *@opaque. Return 0, or a negative errno after plx_log()ing why. In a process that
     * replaces a failed one, the configuration bytes are those the old process left; what init writes there
     * replaces them (a change is announced to the driver). A machine sandbox is installed after it returns.
     */
    int (*init)(plx_virtio *vio, void **opaque);
    /*
     * A descriptor chain is available on queue req->queue. Handle it now or later (from another callback of
     * the run loop); either way finish it with plx_virtio_complete(). Never called before the driver set
     * DRIVER_OK, nor while DEVICE_NEEDS_RESET is set.
     */
    void (*request)(void *opaque, plx_virtio_req *req);
    /*
     * The driver reset the device (Status written 0), or the hub asked for a reset. Stop touching guest memory
     * for the requests in flight before returning (finish or abandon their I/O); completing them afterwards is
     * harmless (the layer drops them). May be NULL.
     */
    void (*reset)(void *opaque);
    /* The driver accepted @features (FEATURES_OK): return false to refuse the combination. May be NULL. */
    bool (*features_ok)(void *opaque, uint64_t features);
    /* The driver wrote @size bytes at @offset of the configuration space (already stored there). NULL: the
     * configuration space is read-only and such writes are ignored. */
    void (*config_write)(void *opaque, unsigned offset, unsigned size);
    void (*fini)(void *opaque);  /* free everything; may be NULL */
} plx_virtio_ops;

/*
 * Run a virtio device: plx_dev_main() with the plx_device_ops the layer builds from @ops (one register region,
 * one IRQ line, @ops->props). Returns the process exit status (2 for an invalid @ops, with a line on stderr).
 */
PLX_EXPORT int plx_virtio_main(const plx_virtio_ops *ops, int argc, char **argv);

/*
 * The plx_device_ops for @ops (what plx_virtio_main runs), for a plugin's entry point or for plx_dev_open().
 * One virtio device per process: the table is the process's own, and a second call replaces it. NULL (with a
 * line on stderr) if @ops is invalid.
 */
PLX_EXPORT const plx_device_ops *plx_virtio_device_ops(const plx_virtio_ops *ops);

/* Put once in a plugin's source: PLX_VIRTIO_DEVICE_DEFINE(&my_ops); */
#define PLX_VIRTIO_DEVICE_DEFINE(ops_ptr)                                                                     \
    __attribute__((visibility("default"))) const plx_device_ops *plx_device_entry(void);                    \
    __attribute__((visibility("default"))) const plx_device_ops *plx_device_entry(void)                     \
    {                                                                                                         \
        return plx_virtio_device_ops(ops_ptr);                                                               \
    }

/* The SDK device underneath: properties, logging, timers, watched descriptors. */
PLX_EXPORT plx_dev *plx_virtio_dev(plx_virtio *vio);

/* The configuration space (ops->config_size bytes, little-endian fields as the device type defines them).
 * Write it in init(); after init, change it only followed by plx_virtio_config_changed(). */
PLX_EXPORT void *plx_virtio_config(plx_virtio *vio);

/* The configuration space changed: bump ConfigGeneration and send a configuration change interrupt (once the
 * driver is running). */
PLX_EXPORT void plx_virtio_config_changed(plx_virtio *vio);

/* From init(): offer @features (device-specific bits, as ops->features) instead of ops->features, for a device
 * whose features depend on its properties (a read-only disk). Returns 0, or -EINVAL for transport bits. */
PLX_EXPORT int plx_virtio_offer(plx_virtio *vio, uint64_t features);

/* The features the driver accepted (valid once FEATURES_OK is set; 0 before). */
PLX_EXPORT uint64_t plx_virtio_features(plx_virtio *vio);

/*
 * Return the chain to the driver: @written bytes were written at the start of req->in[] (the used ring's len;
 * at most req->in_len). Sends the used-buffer interrupt unless the driver suppressed it (flags or event
 * index). Frees @req. A request taken before a reset is dropped without touching the rings.
 */
PLX_EXPORT void plx_virtio_complete(plx_virtio_req *req, uint32_t written);

/*
 * The device cannot go on (an error in what the driver asked that leaves it in an unknown state): set
 * DEVICE_NEEDS_RESET, log @fmt once (later calls until the next reset are silent), send a configuration change
 * interrupt if the driver is running, and stop taking requests until the driver resets the device.
 */
PLX_EXPORT void plx_virtio_needs_reset(plx_virtio *vio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Copy helpers over a request's buffers: bytes copied, fewer when the buffers end first. */
PLX_EXPORT size_t plx_virtio_req_read(const plx_virtio_req *req, size_t offset, void *buf, size_t len);
PLX_EXPORT size_t plx_virtio_req_write(const plx_virtio_req *req, size_t offset, const void *buf, size_t len);

#ifdef __cplusplus
}
#endif

#endif
