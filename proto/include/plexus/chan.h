/*
 * The device channel: how frames travel between the hub and one device. One small interface, two transports:
 *
 *  - ZeroMQ (a PAIR socket, ipc:// or tcp://): always available, the reference path and the only one across
 *    hosts.
 *  - A shared-memory ring (same host only): one memfd holding a single-producer/single-consumer ring per
 *    direction with 64-byte slots, plus one eventfd "bell" per side. A side that has nothing to do spins for a
 *    bounded budget, then sleeps on its bell; the other side rings it only when it said it sleeps. The layout
 *    is in docs/protocol.md ("The shared-memory ring").
 *
 * A frame is one encoded plx.Envelope (any length up to PLX_MAX_FRAME; the ring carries long frames in
 * pieces). A channel is used by one thread.
 *
 * The ring is memory the peer can write at any time. The reading side copies every record out before looking
 * at it, keeps its own indices privately (what is in shared memory is only published, never read back), checks
 * every index and length it reads, and reports a violation as -EPROTO with a description (plx_chan_error());
 * nothing the peer writes there can make it read or write outside the mapping, loop forever, or crash.
 */
#ifndef PLEXUS_CHAN_H
#define PLEXUS_CHAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct plx_chan plx_chan;

typedef enum plx_chan_kind {
    PLX_CHAN_ZMQ,
    PLX_CHAN_RING,
} plx_chan_kind;

/* Flag of plx_chan_send(): fail with -EAGAIN rather than wait for room (on ZeroMQ: past the high-water mark). */
#define PLX_CHAN_DONTWAIT 1

/* ---- the shared-memory ring's layout (docs/protocol.md) ---------------------------------------------------- */
#define PLX_RING_MAGIC 0x52584c50u         /* "PLXR" little-endian */
#define PLX_RING_VERSION 1u
#define PLX_RING_SLOT 64u                  /* bytes per slot: one cache line */
#define PLX_RING_DEFAULT_SLOTS 1024u       /* per direction: 64 KiB */
#define PLX_RING_REC_MORE 1u               /* record flag: the frame continues in the next record */
#define PLX_RING_REC_PAD 2u                /* record flag: skip to the start of the ring */
#define PLX_RING_FDS 3                     /* memfd, hub's bell, device's bell */

struct plx_ring_header {                   /* offset 0, written by the hub before the device gets the fds */
    uint32_t magic;
    uint32_t version;
    uint32_t slot_size;                    /* PLX_RING_SLOT */
    uint32_t n_slots;                      /* per ring, a power of two */
    uint64_t ring_offset[2];               /* [0]: hub -> device, [1]: device -> hub; 4096-aligned */
    uint64_t spin_ns;                      /* how long a waiting side spins before it sleeps */
    uint64_t total_size;                   /* bytes of the memfd */
};

/* ---- creating ------------------------------------------------------------------------------------------- */

/*
 * A ZeroMQ PAIR channel. The hub binds @endpoint (ipc://PATH, tcp://HOST:PORT; port 0 picks a free one, see
 * plx_chan_endpoint()), a device connects to it. @recv_ms: how long a blocking plx_chan_recv() with timeout -1
 * waits at most (its slice; -1: forever). All channels of a process share one ZeroMQ context, which ends with
 * the last of them. NULL on failure, with why in @err.
 */
plx_chan *plx_chan_zmq_bind(const char *endpoint, int recv_ms, char *err, size_t err_len);
plx_chan *plx_chan_zmq_connect(const char *endpoint, int recv_ms, char *err, size_t err_len);

/*
 * ZeroMQ's CURVE (docs/protocol.md, "Remote devices"): the traffic is encrypted and each side proves its key.
 * Keys are 32 bytes; on paper 40 characters of Z85.
 */
#define PLX_CURVE_KEY 32
#define PLX_CURVE_Z85 41            /* 40 characters and the terminating 0 */
typedef struct plx_curve {
    uint8_t public_key[PLX_CURVE_KEY], secret_key[PLX_CURVE_KEY];    /* this side's pair */
    uint8_t peer_key[PLX_CURVE_KEY];   /* hub: the one device key it lets in; device: the hub's public key */
} plx_curve;

/* As above, over CURVE: the hub's side accepts only a peer proving @curve->peer_key (a peer with any other key
 * never gets through the ZeroMQ handshake, and is counted: plx_chan_curve_refused()); a device's side talks only
 * to a hub proving @curve->peer_key. */
plx_chan *plx_chan_zmq_bind_curve(const char *endpoint, int recv_ms, const plx_curve *curve, char *err,
                                  size_t err_len);
plx_chan *plx_chan_zmq_connect_curve(const char *endpoint, int recv_ms, const plx_curve *curve, char *err,
                                     size_t err_len);
/* Peers with another key turned away so far on this (CURVE, bind side) channel. */
unsigned plx_chan_curve_refused(const plx_chan *c);

/* A new key pair; the public key of a secret key; Z85 text to a key (-EINVAL if it is not one) and back. */
int plx_curve_keypair(uint8_t public_key[PLX_CURVE_KEY], uint8_t secret_key[PLX_CURVE_KEY]);
int plx_curve_public(const uint8_t secret_key[PLX_CURVE_KEY], uint8_t public_key[PLX_CURVE_KEY]);
int plx_curve_decode(const char *z85, uint8_t key[PLX_CURVE_KEY]);
void plx_curve_encode(const uint8_t key[PLX_CURVE_KEY], char z85[PLX_CURVE_Z85]);

/* A channel over a ZeroMQ socket the caller made (a void * to a ZMQ_PAIR; not owned: close it after
 * plx_chan_close()). For tests and tools that set up the socket themselves. */
plx_chan *plx_chan_zmq(void *sock);

/* The endpoint a ZeroMQ channel is bound or connected to ("ring" for a ring). */
const char *plx_chan_endpoint(const plx_chan *c);

/* True once the peer is known to be gone: a connected ZeroMQ channel's peer disconnected, or a ring's peer
 * descriptor (plx_chan_set_peer_fd) is readable or hung up. Does not wait. */
bool plx_chan_peer_gone(plx_chan *c);

/* A descriptor that becomes readable when plx_chan_peer_gone() may have become true (poll it with the channel's
 * own in a loop that sleeps; then ask plx_chan_peer_gone()); -1 if there is none. */
int plx_chan_peer_poll_fd(const plx_chan *c);

/* Words for an error @r (< 0) of this channel: the ring's description of a damaged ring, or the errno's. */
const char *plx_chan_strerror(const plx_chan *c, int r);

/*
 * Hub side: a new ring of @n_slots slots per direction (0: PLX_RING_DEFAULT_SLOTS; rounded up to a power of
 * two, at least 64) whose sides spin @spin_ns before sleeping. fds[] receives the memfd and the two bells to
 * hand to the device (still owned by the channel; pass them with SCM_RIGHTS or inherit them). NULL and errno
 * set on failure.
 */
plx_chan *plx_chan_ring_create(unsigned n_slots, uint64_t spin_ns, int fds[PLX_RING_FDS]);

/* Device side: the ring behind @fds (taken over: closed by plx_chan_close(), or here on failure). On failure
 * NULL, with what was wrong in @err. */
plx_chan *plx_chan_ring_open(const int fds[PLX_RING_FDS], char *err, size_t err_len);

void plx_chan_close(plx_chan *c);

plx_chan_kind plx_chan_get_kind(const plx_chan *c);

/*
 * A descriptor that becomes readable (or hangs up) when the peer is gone: the hub gives the device's pidfd, a
 * device its handshake socket. A ring side blocked for room or for a frame returns -EPIPE when it fires and
 * nothing more can come. -1: none.
 */
void plx_chan_set_peer_fd(plx_chan *c, int fd);

/* How long plx_chan_send() may wait for room in the ring (default 10000 ms; -1 forever). */
void plx_chan_set_send_timeout(plx_chan *c, int timeout_ms);

/* Spin budget of this side (ring only). */
void plx_chan_set_spin_ns(plx_chan *c, uint64_t spin_ns);

/* ---- frames --------------------------------------------------------------------------------------------- */

/*
 * Send one frame. Returns 0; -EAGAIN (PLX_CHAN_DONTWAIT and no room); -ETIMEDOUT (no room within the send
 * timeout); -EPIPE (peer gone); -EPROTO (the peer damaged the ring); -EMSGSIZE (longer than
 * PLX_MAX_FRAME); other -errno of the transport. While a ring side waits for room it keeps taking the
 * frames the peer sends, so two sides sending at once never deadlock; they are received afterwards in order.
 */
int plx_chan_send(plx_chan *c, const void *buf, size_t len, int flags);

/*
 * Receive one frame: *@data and *@len valid until the next call on the channel (decode or copy it first).
 * @timeout_ms: 0 = do not wait, -1 =
 * forever, > 0 = at most that long. Returns 0; -EAGAIN (nothing within the timeout); -EINTR; -EPIPE (peer
 * gone and nothing left to read); -EPROTO (damaged ring; the channel is unusable from then on); other -errno.
 */
int plx_chan_recv(plx_chan *c, const void **data, size_t *len, int timeout_ms);

/*
 * Waiting for this channel in poll(2) (or epoll, or another loop) together with other descriptors:
 * plx_chan_poll_fd() is the descriptor to wait on for POLLIN (it does not change for the channel's life).
 * Before each wait call plx_chan_poll_prepare(): true if a frame is already there (do not sleep then). After the
 * wait, plx_chan_poll_done() with the revents the poll reported for that descriptor (0 if it was not polled):
 * true if a frame may be there; then receive with timeout 0 until -EAGAIN. Every prepare is followed by one
 * done. (ZeroMQ's descriptor is edge-triggered: it is the prepare/done pair that makes the wait reliable.)
 */
int plx_chan_poll_fd(const plx_chan *c);
bool plx_chan_poll_prepare(plx_chan *c);
bool plx_chan_poll_done(plx_chan *c, short revents);

/* Ring only: spin for the spin budget until a frame is there (1), without sleeping; 0 when none came (and
 * always 0 on ZeroMQ), -EPROTO. For a loop that must also watch other descriptors before it sleeps in a poll. */
int plx_chan_spin(plx_chan *c);

/* What the last -EPROTO was about ("" if none). */
const char *plx_chan_error(const plx_chan *c);

/* Counters of a ring side (zero for ZeroMQ). */
typedef struct plx_chan_stats {
    uint64_t frames_sent, frames_received;
    uint64_t bells_rung;        /* eventfd writes: the peer was asleep */
    uint64_t sleeps;            /* waits that went to sleep after the spin budget */
    uint64_t full_waits;        /* sends that found the ring full */
    uint64_t moves;             /* hub side: times it stepped off the CPU its peer waited on */
} plx_chan_stats;
void plx_chan_get_stats(const plx_chan *c, plx_chan_stats *out);

#endif
