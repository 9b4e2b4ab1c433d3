/* Private to proto/: the channel object behind plexus/chan.h and the ops table each transport fills in. */
#ifndef PLEXUS_PROTO_CHAN_INT_H
#define PLEXUS_PROTO_CHAN_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "plexus/chan.h"
#include "plexus/wire.h"

/* What a transport does; plx_chan_*() call through it. */
typedef struct plx_chan_ops {
    int (*send)(plx_chan *c, const void *buf, size_t len, int flags);
    int (*recv)(plx_chan *c, const void **data, size_t *len, int timeout_ms);
    int (*spin)(plx_chan *c);
    int (*poll_fd)(const plx_chan *c);
    bool (*poll_prepare)(plx_chan *c);
    bool (*poll_done)(plx_chan *c, short revents);
    int (*peer_poll_fd)(const plx_chan *c);
    bool (*peer_gone)(plx_chan *c);
    const char *(*strerror)(const plx_chan *c, int r);
    const char *(*endpoint)(const plx_chan *c);
    void (*close)(plx_chan *c);         /* the transport's own resources; the channel is freed after */
} plx_chan_ops;

struct frame_node {
    struct frame_node *next;
    size_t len;
    uint8_t data[];
};

struct plx_chan {
    const plx_chan_ops *ops;
    plx_chan_kind kind;
    int send_timeout_ms;
    int peer_fd;
    plx_chan_stats st;
    char err[200];

    /* ZeroMQ */
    void *sock;
    bool own_sock;              /* made by plx_chan_zmq_bind/connect: closed with the channel */
    void *mon;                  /* connect side: monitor socket that reports the peer's disconnection */
    bool peer_gone;
    int zfd;                    /* ZMQ_FD, once asked */
    zmq_msg_t msg;
    bool msg_live;
    int rcvtimeo;
    char endpoint[256];
    int zap_slot;               /* CURVE bind side: its entry in the ZAP table, or -1 */

    /* ring */
    int side;                   /* 0: hub, 1: device */
    int fds[PLX_RING_FDS];
    uint8_t *map;
    size_t map_len;
    uint32_t n;                 /* slots per ring (power of two) */
    uint64_t spin_ns;
    uint64_t tx_head;           /* private copies: shared memory is written, never trusted back */
    uint64_t rx_tail;
    uint64_t *tx_head_pub, *tx_tail_peer, *rx_head_peer, *rx_tail_pub;
    uint8_t *tx_slots, *rx_slots;
    uint32_t *my_sleep, *peer_sleep;
    uint32_t *my_cpu, *peer_cpu;
    int my_bell, peer_bell;
    bool broken;
    uint64_t room_need;         /* slots a blocked send waits for */
    uint64_t last_move_ns;      /* move_off_cpu() */

    uint8_t *asmb;              /* the frame being taken in, copied out of the ring record by record */
    size_t asm_len, asm_cap;
    bool asm_complete;          /* asmb holds a whole frame ... */
    bool asm_delivered;         /* ... which plx_chan_recv() handed out (or the backlog took) */
    struct frame_node *bl_head, *bl_tail, *delivered;
    size_t bl_bytes;
};

/* A zeroed channel of @kind with the defaults every transport starts from; NULL when out of memory. */
plx_chan *plx_chan_alloc(plx_chan_kind kind, const plx_chan_ops *ops);

#endif
