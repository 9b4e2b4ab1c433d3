/*
 * Split virtqueues (virtio 1.x) from the device's side, over guest memory reached through a map function: the
 * descriptor walk with every address and length checked, the available and used rings, notification
 * suppression (flags and event index), and the bookkeeping that lets a restarted device process find the
 * requests its predecessor had taken. No I/O, no SDK: the virtio transport (virtio.c) and the fuzzer use it.
 */
#ifndef PLEXUS_SDK_VIRTQ_H
#define PLEXUS_SDK_VIRTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "plexus/virtio.h"

/* A pointer to guest RAM [addr, addr+len), writable if @write, or NULL if that range is not all granted. */
typedef void *virtq_map_fn(void *ctx, uint64_t addr, uint64_t len, bool write);

/* The part of a queue that outlives a device process (plain data, kept in the state block). */
typedef struct virtq_state {
    uint32_t num;               /* QueueNum the driver chose */
    uint32_t ready;             /* QueueReady */
    uint64_t desc, driver, device;  /* guest addresses of the descriptor table, available ring, used ring */
    uint16_t last_avail;        /* available ring entries taken */
    uint16_t used_idx;          /* used ring entries published */
    uint16_t signalled_used;    /* used_idx when the driver was last considered for an interrupt */
    uint8_t signalled_valid;
    uint8_t pad;
    uint64_t pop_journal;       /* while a pop is being recorded: VIRTQ_JOURNAL | position << 16 | head */
    uint64_t inflight[PLX_VIRTIO_QUEUE_SIZE_MAX / 64];  /* heads taken and not yet returned */
} virtq_state;

#define VIRTQ_JOURNAL (UINT64_C(1) << 63)

typedef struct virtq {
    virtq_state *st;
    uint8_t *desc, *avail, *used;   /* the mapped rings while the queue runs */
    bool indirect;                  /* VIRTIO_F_INDIRECT_DESC negotiated */
    bool event_idx;                 /* VIRTIO_F_EVENT_IDX negotiated */
    virtq_map_fn *map;
    void *map_ctx;
} virtq;

/* One chain: @iov holds the device-readable buffers first (n_out), then the device-writable ones (n_in);
 * @addr their guest addresses. Both arrays are the caller's, with room for the queue size. */
typedef struct virtq_chain {
    uint16_t head;
    unsigned n_out, n_in;
    struct iovec *iov;
    uint64_t *addr;
    size_t out_len, in_len;
} virtq_chain;

/* Check the queue's size and ring addresses and map the rings. 0, or -EINVAL/-EFAULT with @err saying why. */
int virtq_start(virtq *q, char *err, size_t errlen);
/* Forget the mapping (the state stays). */
void virtq_stop(virtq *q);

/* Take the next available chain: 1 (in @c, and now in flight), 0 (none), or -EPROTO (the driver's error,
 * described in @err; nothing was taken). */
int virtq_pop(virtq *q, virtq_chain *c, char *err, size_t errlen);
/* Walk the chain that starts at @head (no ring changes): 0 or -EPROTO. */
int virtq_walk(virtq *q, uint16_t head, virtq_chain *c, char *err, size_t errlen);

/* Return chain @head with @len bytes written to the driver. */
void virtq_push(virtq *q, uint16_t head, uint32_t len);
/* After pushes: does the driver want an interrupt for them (avail flags, or used_event)? */
bool virtq_need_interrupt(virtq *q);
/* The device took every available chain: ask the driver to notify for the next one (event index). True if
 * more chains arrived meanwhile (take them, then call again). */
bool virtq_arm_notify(virtq *q);

/* After a restart, with the rings mapped again: finish a pop the old process was recording, and retire the
 * chains it had published on the used ring but not yet in its state. 0, or -EPROTO with @err. */
int virtq_recover(virtq *q, char *err, size_t errlen);

static inline bool virtq_inflight(const virtq_state *st, unsigned head)
{
    return (st->inflight[head / 64] >> (head % 64)) & 1;
}

#endif
