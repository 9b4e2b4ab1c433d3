/*
 * The framing layer (proto/wire.c) on its own: every hot message through the ring's fixed layout and through
 * protobuf, byte for byte where the layout is specified (docs/protocol.md, "Fixed-layout frames"), posted-write
 * batches in both layouts, and malformed fixed-layout frames, which must be refused without reading past them.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plexus/wire.h"

/* Two ends of an in-process ring: hub side @hub, device side @dev (a single thread can use both). */
static plx_chan *hub, *dev;
static plx_wire whub, wdev;

static void ring_pair(void)
{
    int fds[PLX_RING_FDS], mine[PLX_RING_FDS];
    hub = plx_chan_ring_create(0, 1000, fds);
    cr_assert_not_null(hub);
    for (int i = 0; i < PLX_RING_FDS; i++)
        mine[i] = dup(fds[i]);
    char err[200];
    dev = plx_chan_ring_open(mine, err, sizeof(err));
    cr_assert_not_null(dev, "%s", err);
    plx_wire_init(&whub, hub);
    plx_wire_init(&wdev, dev);
    cr_assert(whub.fixed && wdev.fixed, "the ring carries the fixed layout");
}

static void zmq_pair(void)
{
    char err[200];
    hub = plx_chan_zmq_bind("inproc://wire-test", -1, err, sizeof(err));
    cr_assert_not_null(hub, "%s", err);
    dev = plx_chan_zmq_connect("inproc://wire-test", -1, err, sizeof(err));
    cr_assert_not_null(dev, "%s", err);
    plx_wire_init(&whub, hub);
    plx_wire_init(&wdev, dev);
    cr_assert(!whub.fixed && !wdev.fixed);
}

static void close_pair(void)
{
    plx_wire_fini(&whub);
    plx_wire_fini(&wdev);
    plx_chan_close(hub);
    plx_chan_close(dev);
}

/* Send @env from @from to @to; the raw frame in @raw (copied, up to 256 bytes) and the decoded envelope. */
static Plx__Envelope *travel(plx_wire *from, plx_wire *to, const Plx__Envelope *env, uint8_t *raw, size_t *raw_len)
{
    cr_assert_eq(plx_wire_send(from, env, 0), 0);
    const void *data;
    size_t len;
    cr_assert_eq(plx_chan_recv(to->chan, &data, &len, 5000), 0);
    if (raw) {
        cr_assert_leq(len, 256);
        memcpy(raw, data, len);
        *raw_len = len;
    }
    Plx__Envelope *out;
    cr_assert_eq(plx_wire_decode(to, data, len, &out), 0);
    cr_assert_eq(out->now_ns, env->now_ns);
    cr_assert_eq(out->msg_case, env->msg_case);
    return out;
}

static uint64_t le64_at(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return le64toh(v);
}

static void every_hot_message_round_trips(bool fixed)
{
    uint8_t raw[256];
    size_t n;
    Plx__Envelope e = PLX__ENVELOPE__INIT, *o;
    e.now_ns = 0x1122334455667788ull;

    Plx__MmioRead rd = PLX__MMIO_READ__INIT;
    rd.seq = 7;
    rd.region = 3;
    rd.addr = 0xfedcba9876543210ull;
    rd.size = 8;
    e.msg_case = PLX__ENVELOPE__MSG_READ;
    e.read = &rd;
    o = travel(&whub, &wdev, &e, raw, &n);
    cr_assert(o->read->seq == 7 && o->read->region == 3 && o->read->addr == rd.addr && o->read->size == 8);
    if (fixed) {
        /* type 1: 32 bytes, u16 size at 2, u32 region at 4, now at 8, seq at 16, addr at 24 */
        cr_assert_eq(n, 32);
        cr_assert(raw[0] == 0 && raw[1] == 1 && raw[2] == 8 && raw[3] == 0 && raw[4] == 3);
        cr_assert_eq(le64_at(raw + 8), e.now_ns);
        cr_assert_eq(le64_at(raw + 16), 7);
        cr_assert_eq(le64_at(raw + 24), rd.addr);
    }
    plx_wire_release(&wdev);

    Plx__MmioReply rp = PLX__MMIO_REPLY__INIT;
    rp.seq = 7;
    rp.data = 0xdeadbeefcafef00dull;
    rp.result = PLX__MEM_TX__MEMTX_DECODE_ERROR;
    e.msg_case = PLX__ENVELOPE__MSG_REPLY;
    e.reply = &rp;
    o = travel(&wdev, &whub, &e, raw, &n);
    cr_assert(o->reply->seq == 7 && o->reply->data == rp.data && o->reply->result == rp.result);
    cr_assert(o->reply->busy_ns == 0 && o->reply->next_event_ns == 0);
    if (fixed)
        cr_assert(n == 32 && raw[1] == 2);
    plx_wire_release(&whub);
    rp.busy_ns = 250;
    rp.next_event_ns = 99999;
    o = travel(&wdev, &whub, &e, raw, &n);
    cr_assert(o->reply->busy_ns == 250 && o->reply->next_event_ns == 99999, "the timed reply keeps its timing");
    if (fixed)
        cr_assert(n == 48 && raw[1] == 8);
    plx_wire_release(&whub);

    Plx__MmioWrite wr = PLX__MMIO_WRITE__INIT;
    wr.seq = 9;
    wr.region = 1;
    wr.addr = 0x40;
    wr.size = 4;
    wr.data = 0xa5a5a5a5;
    wr.posted = true;
    e.msg_case = PLX__ENVELOPE__MSG_WRITE;
    e.write = &wr;
    o = travel(&whub, &wdev, &e, raw, &n);
    cr_assert(o->write->seq == 9 && o->write->region == 1 && o->write->addr == 0x40 && o->write->size == 4 &&
              o->write->data == 0xa5a5a5a5 && o->write->posted);
    if (fixed)
        cr_assert(n == 40 && raw[1] == 3 && (raw[3] & 0x80), "posted: the top bit of the size word");
    plx_wire_release(&wdev);

    Plx__Irq irq = PLX__IRQ__INIT;
    irq.line = 1023;
    irq.op = PLX__IRQ_OP__IRQ_PULSE;
    irq.level = 1;
    e.msg_case = PLX__ENVELOPE__MSG_IRQ;
    e.irq = &irq;
    o = travel(&wdev, &whub, &e, raw, &n);
    cr_assert(o->irq->line == 1023 && o->irq->op == PLX__IRQ_OP__IRQ_PULSE && o->irq->level == 1);
    if (fixed)
        cr_assert(n == 24 && raw[1] == 4);
    plx_wire_release(&whub);
    irq.at_ns = 5;      /* a stamped Irq has no fixed layout: it goes as protobuf, even on the ring */
    o = travel(&wdev, &whub, &e, raw, &n);
    cr_assert_eq(o->irq->at_ns, 5);
    if (fixed)
        cr_assert_neq(raw[0], 0, "protobuf, not the fixed layout");
    plx_wire_release(&whub);

    uint8_t payload[37];
    for (unsigned i = 0; i < sizeof(payload); i++)
        payload[i] = (uint8_t)(i * 7 + 1);
    Plx__DmaRequest dq = PLX__DMA_REQUEST__INIT;
    dq.seq = 11;
    dq.addr = 0x80001000;
    dq.len = sizeof(payload);
    dq.write = true;
    dq.data.data = payload;
    dq.data.len = sizeof(payload);
    e.msg_case = PLX__ENVELOPE__MSG_DMA;
    e.dma = &dq;
    o = travel(&wdev, &whub, &e, raw, &n);
    cr_assert(o->dma->seq == 11 && o->dma->addr == dq.addr && o->dma->len == sizeof(payload) && o->dma->write);
    cr_assert_eq(o->dma->data.len, sizeof(payload));
    cr_assert_eq(memcmp(o->dma->data.data, payload, sizeof(payload)), 0);
    if (fixed)
        cr_assert(n == 32 + sizeof(payload) && raw[1] == 5);
    plx_wire_release(&whub);

    Plx__DmaReply dr = PLX__DMA_REPLY__INIT;
    dr.seq = 11;
    dr.result = PLX__MEM_TX__MEMTX_OK;
    dr.data.data = payload;
    dr.data.len = 5;
    e.msg_case = PLX__ENVELOPE__MSG_DMA_REPLY;
    e.dma_reply = &dr;
    o = travel(&whub, &wdev, &e, raw, &n);
    cr_assert(o->dma_reply->seq == 11 && o->dma_reply->result == PLX__MEM_TX__MEMTX_OK);
    cr_assert(o->dma_reply->data.len == 5 && memcmp(o->dma_reply->data.data, payload, 5) == 0);
    if (fixed)
        cr_assert(n == 24 + 5 && raw[1] == 6);
    plx_wire_release(&wdev);

    /* a message without a fixed layout goes as protobuf on either wire */
    Plx__TimerArm ta = PLX__TIMER_ARM__INIT;
    ta.id = 3;
    ta.deadline_ns = 123456;
    ta.generation = 2;
    e.msg_case = PLX__ENVELOPE__MSG_TIMER_ARM;
    e.timer_arm = &ta;
    o = travel(&wdev, &whub, &e, raw, &n);
    cr_assert(o->timer_arm->id == 3 && o->timer_arm->deadline_ns == 123456 && o->timer_arm->generation == 2);
    cr_assert_neq(raw[0], 0);
    plx_wire_release(&whub);

    Plx__Sync sy = PLX__SYNC__INIT;
    sy.seq = 0x0102030405060708ull;
    e.msg_case = PLX__ENVELOPE__MSG_SYNC;
    e.sync = &sy;
    o = travel(&whub, &wdev, &e, raw, &n);
    cr_assert_eq(o->sync->seq, sy.seq);
    if (fixed) {
        /* type 10: 24 bytes, seq at 16 */
        cr_assert(n == 24 && raw[0] == 0 && raw[1] == 10 && raw[2] == 0 && raw[4] == 0);
        cr_assert_eq(le64_at(raw + 16), sy.seq);
    }
    plx_wire_release(&wdev);
}

Test(wire, every_hot_message_round_trips_in_the_fixed_layout)
{
    ring_pair();
    every_hot_message_round_trips(true);
    close_pair();
}

Test(wire, every_hot_message_round_trips_as_protobuf)
{
    zmq_pair();
    every_hot_message_round_trips(false);
    close_pair();
}

/* Three posted writes gathered into a batch decode as the same three writes, in order, on either layout; in a
 * timed batch each keeps its own time. */
#define AT(i) (1000000000000ull + 37 * (i))
static void check_batch(const Plx__Envelope *o, uint64_t now, bool timed)
{
    cr_assert_eq(o->msg_case, PLX__ENVELOPE__MSG_WRITE_BATCH);
    cr_assert_eq(o->now_ns, now);
    cr_assert_eq(o->write_batch->n_writes, 3);
    for (unsigned i = 0; i < 3; i++) {
        const Plx__MmioWrite *w = o->write_batch->writes[i];
        cr_assert(w->seq == 100 + i && w->region == i && w->addr == 0x10 * i + 4 && w->size == 1u << i &&
                  w->data == 0xab00u + i && w->posted, "write %u", i);
        cr_assert_eq(w->at_ns, timed ? AT(i) : 0, "write %u", i);
    }
}

static void fill_batch(plx_wire *w, plx_wire_batch *b, bool timed)
{
    cr_assert_eq(plx_wire_batch_init(b, timed), 0);
    for (unsigned i = 0; i < 3; i++)
        plx_wire_batch_add(w, b, 100 + i, i, 0x10 * i + 4, 1u << i, 0xab00u + i, AT(i));
}

Test(wire, a_batch_decodes_as_its_writes_in_both_layouts)
{
    for (int fixed = 0; fixed < 2; fixed++) {
        for (int timed = 0; timed < 2; timed++) {
            plx_wire w = { .fixed = fixed };
            plx_wire_batch b;
            fill_batch(&w, &b, timed);
            const uint8_t *frame;
            size_t len = plx_wire_batch_frame(&w, &b, 777, &frame);
            if (fixed && !timed)
                cr_assert_eq(len, 16 + 3 * 32, "the fixed layout: a 16-byte header and 32-byte entries");
            if (fixed && timed) {
                cr_assert_eq(len, 16 + 3 * 40, "timed: 40-byte entries");
                cr_assert_eq(frame[1], 9);
                cr_assert_eq(le64_at(frame + 16 + 40 + 24), AT(1), "the time after the data");
            }
            Plx__Envelope *o;
            cr_assert_eq(plx_wire_decode(&w, frame, len, &o), 0);
            check_batch(o, 777, timed);
            plx_wire_release(&w);
            plx_wire_batch_fini(&b);
            plx_wire_fini(&w);
        }
    }
}

/* The protobuf batch is written directly, without a message per write: its bytes are protobuf-c's. */
static void protobuf_batch_is_what_protobuf_c_packs(bool timed)
{
    plx_wire w = { .fixed = false };
    plx_wire_batch b;
    fill_batch(&w, &b, timed);
    const uint8_t *frame;
    size_t len = plx_wire_batch_frame(&w, &b, 777, &frame);

    Plx__MmioWrite ws[3], *wp[3];
    for (unsigned i = 0; i < 3; i++) {
        plx__mmio_write__init(&ws[i]);
        ws[i].seq = 100 + i;
        ws[i].region = i;
        ws[i].addr = 0x10 * i + 4;
        ws[i].size = 1u << i;
        ws[i].data = 0xab00u + i;
        ws[i].posted = true;
        ws[i].at_ns = timed ? AT(i) : 0;
        wp[i] = &ws[i];
    }
    Plx__MmioWriteBatch mb = PLX__MMIO_WRITE_BATCH__INIT;
    mb.n_writes = 3;
    mb.writes = wp;
    Plx__Envelope e = PLX__ENVELOPE__INIT;
    e.now_ns = 777;
    e.msg_case = PLX__ENVELOPE__MSG_WRITE_BATCH;
    e.write_batch = &mb;
    size_t want_len = plx__envelope__get_packed_size(&e);
    uint8_t *want = malloc(want_len);
    plx__envelope__pack(&e, want);
    cr_assert_eq(len, want_len);
    cr_assert_eq(memcmp(frame, want, len), 0);
    free(want);
    plx_wire_batch_fini(&b);
}

Test(wire, a_protobuf_batch_is_byte_for_byte_what_protobuf_c_packs)
{
    protobuf_batch_is_what_protobuf_c_packs(false);
    protobuf_batch_is_what_protobuf_c_packs(true);
}

/* A batch goes out as one frame and empties; an empty batch sends nothing. */
Test(wire, a_batch_is_sent_as_one_frame)
{
    ring_pair();
    plx_wire_batch b;
    fill_batch(&whub, &b, false);
    cr_assert_eq(plx_wire_batch_send(&whub, &b, 42, 0), 0);
    cr_assert_eq(b.n, 0);
    cr_assert_eq(plx_wire_batch_send(&whub, &b, 43, 0), 0, "nothing to send");
    Plx__Envelope *o;
    cr_assert_eq(plx_wire_recv(&wdev, &o, 5000), 0);
    check_batch(o, 42, false);
    plx_wire_release(&wdev);
    cr_assert_eq(plx_wire_recv(&wdev, &o, 0), -EAGAIN, "one frame only");
    plx_wire_batch_fini(&b);
    close_pair();
}

/* ---- malformed fixed-layout frames ---------------------------------------------------------------------- */

/* Decode exactly @len bytes from a heap copy (reading past it is an error the sanitizer sees). */
static int decode_copy(const uint8_t *src, size_t len)
{
    plx_wire w = { .fixed = true };
    uint8_t *copy = malloc(len ? len : 1);
    memcpy(copy, src, len);
    Plx__Envelope *o;
    int r = plx_wire_decode(&w, copy, len, &o);
    plx_wire_release(&w);
    plx_wire_fini(&w);
    free(copy);
    return r;
}

static void fixed_head(uint8_t *b, uint8_t type, uint16_t a, uint32_t u)
{
    memset(b, 0, 64);
    b[1] = type;
    b[2] = (uint8_t)a;
    b[3] = (uint8_t)(a >> 8);
    b[4] = (uint8_t)u;
    b[5] = (uint8_t)(u >> 8);
    b[6] = (uint8_t)(u >> 16);
    b[7] = (uint8_t)(u >> 24);
}

Test(wire, malformed_fixed_frames_are_refused)
{
    uint8_t b[64 + 16];
    /* each type at its right length decodes; one byte short or long does not */
    static const struct { uint8_t type; uint16_t a; size_t len; } ok[] = {
        { 1, 4, 32 }, { 2, 0, 32 }, { 8, 0, 48 }, { 3, 4, 40 }, { 4, 1, 24 }, { 10, 0, 24 }, { 9, 1, 16 + 40 },
    };
    for (unsigned i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        fixed_head(b, ok[i].type, ok[i].a, 0);
        cr_assert_eq(decode_copy(b, ok[i].len), 0, "type %u, %zu bytes", ok[i].type, ok[i].len);
        cr_assert_eq(decode_copy(b, ok[i].len - 1), -EBADMSG, "type %u one byte short", ok[i].type);
        cr_assert_eq(decode_copy(b, ok[i].len + 1), -EBADMSG, "type %u one byte long", ok[i].type);
    }
    for (size_t len = 0; len < 16; len++) {
        fixed_head(b, 1, 4, 0);
        cr_assert_eq(decode_copy(b, len), -EBADMSG, "a %zu-byte frame is no header", len);
    }
    fixed_head(b, 99, 0, 0);
    cr_assert_eq(decode_copy(b, 32), -EBADMSG, "unknown type");
    fixed_head(b, 2, 7, 0);
    cr_assert_eq(decode_copy(b, 32), -EBADMSG, "a reply with an unknown MemTx");
    fixed_head(b, 4, 2, 0);
    cr_assert_eq(decode_copy(b, 24), -EBADMSG, "an Irq with an unknown op");
    /* DMA: the length word must match the data that follows */
    fixed_head(b, 5, 1, 8);
    cr_assert_eq(decode_copy(b, 32 + 8), 0, "an 8-byte DMA write");
    cr_assert_eq(decode_copy(b, 32 + 7), -EBADMSG, "data shorter than its length");
    fixed_head(b, 5, 1, 0xffffffffu);
    cr_assert_eq(decode_copy(b, 32 + 8), -EBADMSG, "a length far past the frame");
    fixed_head(b, 5, 0, 8);
    cr_assert_eq(decode_copy(b, 32), 0, "a DMA read carries no data");
    cr_assert_eq(decode_copy(b, 33), -EBADMSG, "a DMA read with data");
    fixed_head(b, 6, 0, 4);
    cr_assert_eq(decode_copy(b, 24 + 4), 0);
    cr_assert_eq(decode_copy(b, 24 + 3), -EBADMSG, "a DMA reply shorter than its length");
    /* batches: a count, no reserved bits, exactly count entries */
    fixed_head(b, 7, 1, 0);
    cr_assert_eq(decode_copy(b, 16 + 32), 0);
    cr_assert_eq(decode_copy(b, 16 + 31), -EBADMSG);
    fixed_head(b, 7, 0, 0);
    cr_assert_eq(decode_copy(b, 16), -EBADMSG, "an empty batch");
    fixed_head(b, 7, 2, 0);
    cr_assert_eq(decode_copy(b, 16 + 32), -EBADMSG, "fewer entries than its count");
    fixed_head(b, 7, 1, 1);
    cr_assert_eq(decode_copy(b, 16 + 32), -EBADMSG, "reserved word set");
    fixed_head(b, 9, 1, 0);
    cr_assert_eq(decode_copy(b, 16 + 32), -EBADMSG, "a timed batch with an untimed entry");
    fixed_head(b, 9, 0, 0);
    cr_assert_eq(decode_copy(b, 16), -EBADMSG, "an empty timed batch");
    fixed_head(b, 10, 1, 0);
    cr_assert_eq(decode_copy(b, 24), -EBADMSG, "a Sync with a reserved field set");
}

/* Random frames in the fixed layout's space decode or are refused; nothing is read past them (ASan). */
Test(wire, random_fixed_frames_never_read_past_their_end)
{
    srand(1234);
    uint8_t b[128];
    unsigned decoded = 0;
    for (unsigned i = 0; i < 20000; i++) {
        size_t len = (size_t)rand() % sizeof(b);
        for (size_t k = 0; k < len; k++)
            b[k] = (uint8_t)rand();
        if (len)
            b[0] = 0;               /* the fixed layout's mark */
        if (len > 1)
            b[1] = (uint8_t)(rand() % 10);
        int r = decode_copy(b, len);
        cr_assert(r == 0 || r == -EBADMSG, "frame %u: %d", i, r);
        decoded += r == 0;
    }
    cr_assert_gt(decoded, 0, "some random frames are valid");
}
