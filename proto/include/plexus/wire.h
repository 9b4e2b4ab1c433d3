/*
 * Framing helpers shared by the hub and the SDK: one protobuf-c Envelope per frame of a device channel
 * (plexus/chan.h: ZeroMQ or the shared-memory ring).
 *
 * A plx_wire owns a reusable transmit buffer and an arena that backs decoded envelopes, so the hot path
 * (MMIO request/reply) allocates nothing once warmed up. A decoded envelope is valid until the next
 * plx_wire_recv*() or plx_wire_release() on the same wire.
 *
 * Lifetime: plx_wire_init() on caller-owned storage, plx_wire_fini() frees the buffers (not the channel).
 */
#ifndef PLEXUS_WIRE_H
#define PLEXUS_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "plexus.pb-c.h"
#include "plexus/chan.h"
#include "plexus/protocol.h"

typedef struct plx_arena_extra plx_arena_extra;

typedef struct plx_wire {
    plx_chan *chan;             /* not owned */
    bool fixed;                 /* on the ring: hot messages in their fixed layout (docs/protocol.md) */
    uint8_t *tx;
    size_t tx_cap;
    uint8_t *arena;
    size_t arena_cap, arena_used, arena_want;
    plx_arena_extra *extra;     /* overflow allocations of the current message */
    Plx__Envelope *cur;
} plx_wire;

void plx_wire_init(plx_wire *w, plx_chan *chan);
/* Carry on over another channel (the move to the ring); what is decoded stays valid. On the ring, MmioRead,
 * MmioReply, MmioWrite, Irq, DmaRequest, DmaReply, Sync and posted-write batches (plx_wire_batch_*) travel in their
 * fixed layout, the rest as protobuf. */
void plx_wire_set_chan(plx_wire *w, plx_chan *chan);
void plx_wire_fini(plx_wire *w);

/* Pack and send @env. @flags: 0 or PLX_CHAN_DONTWAIT. Returns 0, -ENOMEM, or what plx_chan_send() returns. */
int plx_wire_send(plx_wire *w, const Plx__Envelope *env, int flags);

/*
 * Receive one frame and decode it into *@out. @timeout_ms as for plx_chan_recv() (0: do not wait, -1: forever).
 * Returns 0; -EAGAIN (nothing within the timeout); -EBADMSG (the frame is not a valid Envelope or has no
 * message set: the frame is consumed); what plx_chan_recv() returns otherwise. Invalidates the previously
 * decoded envelope.
 */
int plx_wire_recv(plx_wire *w, Plx__Envelope **out, int timeout_ms);

/* Decode @len bytes at @data the same way (for frames the caller kept). */
int plx_wire_decode(plx_wire *w, const void *data, size_t len, Plx__Envelope **out);

/* Drop the decoded envelope and recycle its memory. */
void plx_wire_release(plx_wire *w);

/*
 * Posted writes gathered into one MmioWriteBatch frame (to a device with PLX_CAP_WRITE_BATCH), encoded as they
 * are added, in the layout of the wire they go out on (the ring's fixed layout, or protobuf): the hot path
 * builds no message per write. plx_wire_batch_init() allocates room for PLX_WIRE_BATCH_MAX writes, @timed for a
 * device with PLX_CAP_WRITE_TIMES (each write carries its own virtual time, @at_ns of plx_wire_batch_add(); other
 * devices see every write at the frame's now_ns); plx_wire_batch_add() appends one (the caller sends before the
 * batch is full); plx_wire_batch_send() sends them as one frame stamped @now_ns and empties the batch (also when
 * the send fails). Returns what plx_chan_send() returns; 0 for an empty batch.
 */
#define PLX_WIRE_BATCH_MAX 64u
typedef struct plx_wire_batch {
    unsigned n;                 /* writes in the batch (first: a guest access tests it) */
    bool timed;
    size_t len;                 /* bytes of encoded writes */
    uint8_t *buf;
} plx_wire_batch;
int plx_wire_batch_init(plx_wire_batch *b, bool timed);
void plx_wire_batch_fini(plx_wire_batch *b);
void plx_wire_batch_add(const plx_wire *w, plx_wire_batch *b, uint64_t seq, uint32_t region, uint64_t addr,
                        uint32_t size, uint64_t data, uint64_t at_ns);
int plx_wire_batch_send(plx_wire *w, plx_wire_batch *b, uint64_t now_ns, int flags);
/* The frame plx_wire_batch_send() would send (*@frame valid until the batch changes), without sending it or
 * emptying the batch; its length. */
size_t plx_wire_batch_frame(const plx_wire *w, plx_wire_batch *b, uint64_t now_ns, const uint8_t **frame);

/* Name of an envelope's message case, for diagnostics. */
const char *plx_wire_msg_name(int msg_case);

#endif
