/* Envelope framing over a device channel with a recycled arena for decoding (see include/plexus/wire.h). */
#include "plexus/wire.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <endian.h>

/* plexus/protocol.h is the one place the numbers are written down for C; the .proto must agree with it. */
_Static_assert(PLX_CAP_SHADOW == PLX__CAPABILITY__CAP_SHADOW && PLX_CAP_RAM_FDS == PLX__CAPABILITY__CAP_RAM_FDS &&
               PLX_CAP_DMA_MESSAGE == PLX__CAPABILITY__CAP_DMA_MESSAGE &&
               PLX_CAP_WRITE_BATCH == PLX__CAPABILITY__CAP_WRITE_BATCH &&
               PLX_CAP_TIMER_DONE == PLX__CAPABILITY__CAP_TIMER_DONE && PLX_CAP_RING == PLX__CAPABILITY__CAP_RING &&
               PLX_CAP_LOCKSTEP == PLX__CAPABILITY__CAP_LOCKSTEP &&
               PLX_CAP_DMA_WRITTEN == PLX__CAPABILITY__CAP_DMA_WRITTEN && PLX_CAP_SYNC == PLX__CAPABILITY__CAP_SYNC &&
               PLX_CAP_WRITE_TIMES == PLX__CAPABILITY__CAP_WRITE_TIMES &&
               PLX_CAP_CONSOLE == PLX__CAPABILITY__CAP_CONSOLE, "capability bits differ from plexus.proto");

struct plx_arena_extra {
    plx_arena_extra *next;
    max_align_t data[];
};

static void *arena_alloc(void *data, size_t size)
{
    plx_wire *w = data;
    size = (size + 15) & ~(size_t)15;
    w->arena_want += size;
    if (w->arena_used + size <= w->arena_cap) {
        void *p = w->arena + w->arena_used;
        w->arena_used += size;
        return p;
    }
    plx_arena_extra *e = malloc(sizeof(*e) + size);
    if (!e)
        return NULL;
    e->next = w->extra;
    w->extra = e;
    return e->data;
}

static void arena_free(void *data, void *ptr)
{
    (void)data;
    (void)ptr;  /* everything goes at once in plx_wire_release() */
}

void plx_wire_init(plx_wire *w, plx_chan *chan)
{
    memset(w, 0, sizeof(*w));
    plx_wire_set_chan(w, chan);
}

void plx_wire_set_chan(plx_wire *w, plx_chan *chan)
{
    w->chan = chan;
    w->fixed = chan && plx_chan_get_kind(chan) == PLX_CHAN_RING;
}

/* ---- fixed-layout frames (the ring's hot messages; docs/protocol.md "Fixed-layout frames") ---------------- */

enum { FIX_READ = 1, FIX_REPLY = 2, FIX_WRITE = 3, FIX_IRQ = 4, FIX_DMA = 5, FIX_DMA_REPLY = 6, FIX_BATCH = 7,
       FIX_REPLY_TIMED = 8, FIX_BATCH_TIMED = 9, FIX_SYNC = 10 };
#define FIX_HEAD 16u
#define FIX_BATCH_ENTRY 32u
#define FIX_BATCH_TIMED_ENTRY 40u
#define FIX_POSTED 0x8000u

static void put16(uint8_t *p, uint16_t v) { v = htole16(v); memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { v = htole32(v); memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { v = htole64(v); memcpy(p, &v, 8); }
static uint16_t get16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return le16toh(v); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return le32toh(v); }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return le64toh(v); }

static bool memtx_ok(int r)
{
    return r >= PLX__MEM_TX__MEMTX_OK && r <= PLX__MEM_TX__MEMTX_DECODE_ERROR;
}

/* Length of @env in the fixed layout, or 0 if it has none (or carries something the layout cannot). */
static size_t fixed_size(const Plx__Envelope *env)
{
    switch (env->msg_case) {
    case PLX__ENVELOPE__MSG_READ:
        return env->read->size <= 0xffff ? 32 : 0;
    case PLX__ENVELOPE__MSG_REPLY:      /* with lockstep timing: the longer form */
        if (!memtx_ok(env->reply->result))
            return 0;
        return env->reply->busy_ns || env->reply->next_event_ns ? 48 : 32;
    case PLX__ENVELOPE__MSG_WRITE:
        return env->write->size < FIX_POSTED ? 40 : 0;
    case PLX__ENVELOPE__MSG_IRQ:        /* so does a stamped one */
        return (unsigned)env->irq->op <= 1 && !env->irq->at_ns ? 24 : 0;
    case PLX__ENVELOPE__MSG_DMA:
        return (env->dma->write ? env->dma->data.len == env->dma->len : env->dma->data.len == 0)
                   ? 32 + env->dma->data.len : 0;
    case PLX__ENVELOPE__MSG_DMA_REPLY:
        return memtx_ok(env->dma_reply->result) && env->dma_reply->data.len <= UINT32_MAX
                   ? 24 + env->dma_reply->data.len : 0;
    case PLX__ENVELOPE__MSG_SYNC:
        return 24;
    default:
        return 0;
    }
}

static void fixed_pack(const Plx__Envelope *env, uint8_t *b, size_t len)
{
    memset(b, 0, len < 48 ? len : 48);
    put64(b + 8, env->now_ns);
    switch (env->msg_case) {
    case PLX__ENVELOPE__MSG_READ:
        b[1] = FIX_READ;
        put16(b + 2, (uint16_t)env->read->size);
        put32(b + 4, env->read->region);
        put64(b + 16, env->read->seq);
        put64(b + 24, env->read->addr);
        break;
    case PLX__ENVELOPE__MSG_REPLY:
        b[1] = len == 48 ? FIX_REPLY_TIMED : FIX_REPLY;
        put16(b + 2, (uint16_t)env->reply->result);
        put64(b + 16, env->reply->seq);
        put64(b + 24, env->reply->data);
        if (len == 48) {
            put64(b + 32, env->reply->busy_ns);
            put64(b + 40, env->reply->next_event_ns);
        }
        break;
    case PLX__ENVELOPE__MSG_WRITE:
        b[1] = FIX_WRITE;
        put16(b + 2, (uint16_t)(env->write->size | (env->write->posted ? FIX_POSTED : 0)));
        put32(b + 4, env->write->region);
        put64(b + 16, env->write->seq);
        put64(b + 24, env->write->addr);
        put64(b + 32, env->write->data);
        break;
    case PLX__ENVELOPE__MSG_IRQ:
        b[1] = FIX_IRQ;
        put16(b + 2, (uint16_t)env->irq->op);
        put32(b + 4, env->irq->line);
        put32(b + 16, env->irq->level);
        break;
    case PLX__ENVELOPE__MSG_DMA:
        b[1] = FIX_DMA;
        put16(b + 2, env->dma->write ? 1 : 0);
        put32(b + 4, env->dma->len);
        put64(b + 16, env->dma->seq);
        put64(b + 24, env->dma->addr);
        if (env->dma->data.len)
            memcpy(b + 32, env->dma->data.data, env->dma->data.len);
        break;
    case PLX__ENVELOPE__MSG_DMA_REPLY:
        b[1] = FIX_DMA_REPLY;
        put16(b + 2, (uint16_t)env->dma_reply->result);
        put32(b + 4, (uint32_t)env->dma_reply->data.len);
        put64(b + 16, env->dma_reply->seq);
        if (env->dma_reply->data.len)
            memcpy(b + 24, env->dma_reply->data.data, env->dma_reply->data.len);
        break;
    case PLX__ENVELOPE__MSG_SYNC:
        b[1] = FIX_SYNC;
        put64(b + 16, env->sync->seq);
        break;
    default:
        break;
    }
}

/* Decode a fixed-layout frame into an Envelope in the arena. -EBADMSG unless every length and value fits. */
static int fixed_decode(plx_wire *w, const uint8_t *b, size_t len, Plx__Envelope **out)
{
    if (len < FIX_HEAD)
        return -EBADMSG;
    Plx__Envelope *env = arena_alloc(w, sizeof(*env));
    if (!env)
        return -ENOMEM;
    *env = (Plx__Envelope)PLX__ENVELOPE__INIT;
    env->now_ns = get64(b + 8);
    uint16_t a = get16(b + 2);
    uint32_t u = get32(b + 4);
    switch (b[1]) {
    case FIX_READ: {
        Plx__MmioRead *m = arena_alloc(w, sizeof(*m));
        if (len != 32 || !m)
            return len != 32 ? -EBADMSG : -ENOMEM;
        *m = (Plx__MmioRead)PLX__MMIO_READ__INIT;
        m->size = a;
        m->region = u;
        m->seq = get64(b + 16);
        m->addr = get64(b + 24);
        env->msg_case = PLX__ENVELOPE__MSG_READ;
        env->read = m;
        break;
    }
    case FIX_REPLY:
    case FIX_REPLY_TIMED: {
        Plx__MmioReply *m = arena_alloc(w, sizeof(*m));
        if (len != (b[1] == FIX_REPLY ? 32u : 48u) || !m || !memtx_ok(a))
            return m ? -EBADMSG : -ENOMEM;
        *m = (Plx__MmioReply)PLX__MMIO_REPLY__INIT;
        m->result = (Plx__MemTx)a;
        m->seq = get64(b + 16);
        m->data = get64(b + 24);
        if (b[1] == FIX_REPLY_TIMED) {
            m->busy_ns = get64(b + 32);
            m->next_event_ns = get64(b + 40);
        }
        env->msg_case = PLX__ENVELOPE__MSG_REPLY;
        env->reply = m;
        break;
    }
    case FIX_WRITE: {
        Plx__MmioWrite *m = arena_alloc(w, sizeof(*m));
        if (len != 40 || !m)
            return m ? -EBADMSG : -ENOMEM;
        *m = (Plx__MmioWrite)PLX__MMIO_WRITE__INIT;
        m->size = a & ~FIX_POSTED;
        m->posted = (a & FIX_POSTED) != 0;
        m->region = u;
        m->seq = get64(b + 16);
        m->addr = get64(b + 24);
        m->data = get64(b + 32);
        env->msg_case = PLX__ENVELOPE__MSG_WRITE;
        env->write = m;
        break;
    }
    case FIX_IRQ: {
        Plx__Irq *m = arena_alloc(w, sizeof(*m));
        if (len != 24 || !m || a > 1)
            return m ? -EBADMSG : -ENOMEM;
        *m = (Plx__Irq)PLX__IRQ__INIT;
        m->op = (Plx__IrqOp)a;
        m->line = u;
        m->level = get32(b + 16);
        env->msg_case = PLX__ENVELOPE__MSG_IRQ;
        env->irq = m;
        break;
    }
    case FIX_DMA: {
        Plx__DmaRequest *m = arena_alloc(w, sizeof(*m));
        size_t n = len >= 32 ? len - 32 : 0;
        if (len < 32 || !m || a > 1 || (a ? n != u : n != 0))
            return m ? -EBADMSG : -ENOMEM;
        *m = (Plx__DmaRequest)PLX__DMA_REQUEST__INIT;
        m->write = a;
        m->len = u;
        m->seq = get64(b + 16);
        m->addr = get64(b + 24);
        if (n) {
            if (!(m->data.data = arena_alloc(w, n)))
                return -ENOMEM;
            memcpy(m->data.data, b + 32, n);
            m->data.len = n;
        }
        env->msg_case = PLX__ENVELOPE__MSG_DMA;
        env->dma = m;
        break;
    }
    case FIX_DMA_REPLY: {
        Plx__DmaReply *m = arena_alloc(w, sizeof(*m));
        size_t n = len >= 24 ? len - 24 : 0;
        if (len < 24 || !m || !memtx_ok(a) || n != u)
            return m ? -EBADMSG : -ENOMEM;
        *m = (Plx__DmaReply)PLX__DMA_REPLY__INIT;
        m->result = (Plx__MemTx)a;
        m->seq = get64(b + 16);
        if (n) {
            if (!(m->data.data = arena_alloc(w, n)))
                return -ENOMEM;
            memcpy(m->data.data, b + 24, n);
            m->data.len = n;
        }
        env->msg_case = PLX__ENVELOPE__MSG_DMA_REPLY;
        env->dma_reply = m;
        break;
    }
    case FIX_BATCH:
    case FIX_BATCH_TIMED: {
        /* a writes of FIX_BATCH_ENTRY bytes: u64 seq, u64 addr, u64 data, u32 region, u16 size, u16 0; timed:
         * FIX_BATCH_TIMED_ENTRY bytes, u64 at_ns after data */
        bool timed = b[1] == FIX_BATCH_TIMED;
        size_t esize = timed ? FIX_BATCH_TIMED_ENTRY : FIX_BATCH_ENTRY, tail = timed ? 32 : 24;
        Plx__MmioWriteBatch *m = arena_alloc(w, sizeof(*m));
        if (!m)
            return -ENOMEM;
        if (a == 0 || u != 0 || len != FIX_HEAD + (size_t)a * esize)
            return -EBADMSG;
        *m = (Plx__MmioWriteBatch)PLX__MMIO_WRITE_BATCH__INIT;
        Plx__MmioWrite **v = arena_alloc(w, sizeof(*v) * a), *ws = arena_alloc(w, sizeof(*ws) * a);
        if (!v || !ws)
            return -ENOMEM;
        for (unsigned i = 0; i < a; i++) {
            const uint8_t *e = b + FIX_HEAD + (size_t)i * esize;
            ws[i] = (Plx__MmioWrite)PLX__MMIO_WRITE__INIT;
            ws[i].seq = get64(e);
            ws[i].addr = get64(e + 8);
            ws[i].data = get64(e + 16);
            ws[i].at_ns = timed ? get64(e + 24) : 0;
            ws[i].region = get32(e + tail);
            ws[i].size = get16(e + tail + 4);
            ws[i].posted = true;
            v[i] = &ws[i];
        }
        m->n_writes = a;
        m->writes = v;
        env->msg_case = PLX__ENVELOPE__MSG_WRITE_BATCH;
        env->write_batch = m;
        break;
    }
    case FIX_SYNC: {
        Plx__Sync *m = arena_alloc(w, sizeof(*m));
        if (len != 24 || !m || a || u)
            return m ? -EBADMSG : -ENOMEM;
        *m = (Plx__Sync)PLX__SYNC__INIT;
        m->seq = get64(b + 16);
        env->msg_case = PLX__ENVELOPE__MSG_SYNC;
        env->sync = m;
        break;
    }
    default:
        return -EBADMSG;
    }
    *out = env;
    return 0;
}

/* ---- posted-write batches (MmioWriteBatch) ------------------------------------------------------------------ */

#define BATCH_HEAD 24u          /* room in front of the entries for the frame's header, either layout */
#define BATCH_ENTRY_MAX 56u     /* one entry, either layout */

/* The fixed layout (docs/protocol.md, types 7 and 9): a 16-byte header, then 32-byte entries, or 40-byte entries
 * that carry the write's time. */
static size_t fix_batch_entry(uint8_t *e, bool timed, uint64_t seq, uint32_t region, uint64_t addr, uint32_t size,
                              uint64_t data, uint64_t at_ns)
{
    put64(e, seq);
    put64(e + 8, addr);
    put64(e + 16, data);
    if (timed) {
        put64(e + 24, at_ns);
        e += 8;
    }
    put32(e + 24, region);
    put16(e + 28, (uint16_t)size);
    put16(e + 30, 0);
    return timed ? FIX_BATCH_TIMED_ENTRY : FIX_BATCH_ENTRY;
}

static size_t fix_batch_head(uint8_t *h, bool timed, unsigned n, uint64_t now_ns)
{
    memset(h, 0, FIX_HEAD);
    h[1] = timed ? FIX_BATCH_TIMED : FIX_BATCH;
    put16(h + 2, (uint16_t)n);
    put64(h + 8, now_ns);
    return FIX_HEAD;
}

/*
 * The protobuf layout, written directly (the same bytes protobuf-c would produce, without building a message per
 * write): the field numbers come from the generated descriptors, so the .proto stays the only place they are
 * written down.
 */
static struct {
    bool ready;
    uint32_t env_now, env_batch, batch_writes;
    uint32_t seq, region, addr, size, data, posted, at_ns;
    /* One-byte keys of the entry's fields (field number < 16, checked in pb_ready), for the hot path. */
    uint8_t k_writes, k_seq, k_region, k_addr, k_size, k_data, k_posted, k_at_ns;
} pb;

static uint32_t field_id(const ProtobufCMessageDescriptor *d, const char *name)
{
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, name);
    return f ? f->id : 0;
}

static void pb_ready(void)
{
    if (__atomic_load_n(&pb.ready, __ATOMIC_ACQUIRE))
        return;
    pb.env_now = field_id(&plx__envelope__descriptor, "now_ns");
    pb.env_batch = field_id(&plx__envelope__descriptor, "write_batch");
    pb.batch_writes = field_id(&plx__mmio_write_batch__descriptor, "writes");
    pb.seq = field_id(&plx__mmio_write__descriptor, "seq");
    pb.region = field_id(&plx__mmio_write__descriptor, "region");
    pb.addr = field_id(&plx__mmio_write__descriptor, "addr");
    pb.size = field_id(&plx__mmio_write__descriptor, "size");
    pb.data = field_id(&plx__mmio_write__descriptor, "data");
    pb.posted = field_id(&plx__mmio_write__descriptor, "posted");
    pb.at_ns = field_id(&plx__mmio_write__descriptor, "at_ns");
    const uint32_t ids[] = { pb.batch_writes, pb.seq, pb.region, pb.addr, pb.size, pb.data, pb.posted, pb.at_ns };
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
        if (ids[i] == 0 || ids[i] >= 16)
            abort();        /* the .proto renumbered a batch field beyond one-byte keys: widen the keys here */
    pb.k_writes = (uint8_t)(pb.batch_writes << 3 | 2);      /* length-delimited */
    pb.k_seq = (uint8_t)(pb.seq << 3);                      /* varint */
    pb.k_region = (uint8_t)(pb.region << 3);
    pb.k_addr = (uint8_t)(pb.addr << 3);
    pb.k_size = (uint8_t)(pb.size << 3);
    pb.k_data = (uint8_t)(pb.data << 3);
    pb.k_posted = (uint8_t)(pb.posted << 3);
    pb.k_at_ns = (uint8_t)(pb.at_ns << 3);
    __atomic_store_n(&pb.ready, true, __ATOMIC_RELEASE);
}

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* A varint field, omitted when zero (proto3). */
static uint8_t *put_uint(uint8_t *p, uint32_t field, uint64_t v)
{
    if (!v)
        return p;
    p = put_varint(p, (uint64_t)field << 3);
    return put_varint(p, v);
}

/* A varint field with a one-byte key, omitted when zero (proto3). */
static inline uint8_t *put_key_uint(uint8_t *p, uint8_t key, uint64_t v)
{
    if (!v)
        return p;
    *p++ = key;
    return put_varint(p, v);
}

/* Written in place: the entry's body is at most 54 bytes, so its length is one byte. */
static size_t pb_batch_entry(uint8_t *e, bool timed, uint64_t seq, uint32_t region, uint64_t addr, uint32_t size,
                             uint64_t data, uint64_t at_ns)
{
    uint8_t *body = e + 2, *q = body;
    q = put_key_uint(q, pb.k_seq, seq);
    q = put_key_uint(q, pb.k_region, region);
    q = put_key_uint(q, pb.k_addr, addr);
    q = put_key_uint(q, pb.k_size, size);
    q = put_key_uint(q, pb.k_data, data);
    *q++ = pb.k_posted;
    *q++ = 1;
    if (timed)
        q = put_key_uint(q, pb.k_at_ns, at_ns);
    e[0] = pb.k_writes;
    e[1] = (uint8_t)(q - body);
    return (size_t)(q - e);
}

static size_t pb_batch_head(uint8_t *h, size_t body_len, uint64_t now_ns)
{
    uint8_t *p = put_uint(h, pb.env_now, now_ns);
    p = put_varint(p, (uint64_t)pb.env_batch << 3 | 2);
    p = put_varint(p, body_len);
    return (size_t)(p - h);
}

int plx_wire_batch_init(plx_wire_batch *b, bool timed)
{
    memset(b, 0, sizeof(*b));
    b->timed = timed;
    pb_ready();
    b->buf = malloc(BATCH_HEAD + PLX_WIRE_BATCH_MAX * BATCH_ENTRY_MAX);
    return b->buf ? 0 : -ENOMEM;
}

void plx_wire_batch_fini(plx_wire_batch *b)
{
    free(b->buf);
    memset(b, 0, sizeof(*b));
}

void plx_wire_batch_add(const plx_wire *w, plx_wire_batch *b, uint64_t seq, uint32_t region, uint64_t addr,
                        uint32_t size, uint64_t data, uint64_t at_ns)
{
    uint8_t *e = b->buf + BATCH_HEAD + b->len;
    b->len += w->fixed ? fix_batch_entry(e, b->timed, seq, region, addr, size, data, at_ns)
                       : pb_batch_entry(e, b->timed, seq, region, addr, size, data, at_ns);
    b->n++;
}

size_t plx_wire_batch_frame(const plx_wire *w, plx_wire_batch *b, uint64_t now_ns, const uint8_t **frame)
{
    uint8_t head[BATCH_HEAD];
    size_t hl = w->fixed ? fix_batch_head(head, b->timed, b->n, now_ns) : pb_batch_head(head, b->len, now_ns);
    uint8_t *f = b->buf + BATCH_HEAD - hl;
    memcpy(f, head, hl);
    *frame = f;
    return hl + b->len;
}

int plx_wire_batch_send(plx_wire *w, plx_wire_batch *b, uint64_t now_ns, int flags)
{
    if (!b->n)
        return 0;
    const uint8_t *frame;
    size_t len = plx_wire_batch_frame(w, b, now_ns, &frame);
    b->n = 0;
    b->len = 0;
    return plx_chan_send(w->chan, frame, len, flags);
}

void plx_wire_release(plx_wire *w)
{
    bool spilled = w->extra != NULL;
    while (w->extra) {
        plx_arena_extra *n = w->extra->next;
        free(w->extra);
        w->extra = n;
    }
    if (spilled && w->arena_want > w->arena_cap) {
        /* Grow so the next message of this size decodes without malloc. */
        size_t cap = w->arena_want + w->arena_want / 2 + 256;
        uint8_t *a = malloc(cap);
        if (a) {
            free(w->arena);
            w->arena = a;
            w->arena_cap = cap;
        }
    }
    w->arena_used = 0;
    w->arena_want = 0;
    w->cur = NULL;
}

void plx_wire_fini(plx_wire *w)
{
    plx_wire_release(w);
    free(w->tx);
    free(w->arena);
    w->tx = w->arena = NULL;
    w->tx_cap = w->arena_cap = 0;
}

int plx_wire_send(plx_wire *w, const Plx__Envelope *env, int flags)
{
    size_t flen = w->fixed ? fixed_size(env) : 0;
    size_t len = flen ? flen : plx__envelope__get_packed_size(env);
    if (len > w->tx_cap) {
        size_t cap = len < 256 ? 256 : len;
        uint8_t *b = realloc(w->tx, cap);
        if (!b)
            return -ENOMEM;
        w->tx = b;
        w->tx_cap = cap;
    }
    if (flen)
        fixed_pack(env, w->tx, len);
    else
        plx__envelope__pack(env, w->tx);
    return plx_chan_send(w->chan, w->tx, len, flags);
}

int plx_wire_decode(plx_wire *w, const void *data, size_t len, Plx__Envelope **out)
{
    ProtobufCAllocator alloc = { .alloc = arena_alloc, .free = arena_free, .allocator_data = w };
    plx_wire_release(w);
    if (w->fixed && len && ((const uint8_t *)data)[0] == 0) {
        int r = fixed_decode(w, data, len, out);
        if (r < 0)
            plx_wire_release(w);
        else
            w->cur = *out;
        return r;
    }
    Plx__Envelope *env = plx__envelope__unpack(&alloc, len, data);
    if (!env || env->msg_case == PLX__ENVELOPE__MSG__NOT_SET) {
        plx_wire_release(w);
        return -EBADMSG;
    }
    w->cur = env;
    *out = env;
    return 0;
}

int plx_wire_recv(plx_wire *w, Plx__Envelope **out, int timeout_ms)
{
    const void *data;
    size_t len;
    int r = plx_chan_recv(w->chan, &data, &len, timeout_ms);
    if (r < 0)
        return r;
    return plx_wire_decode(w, data, len, out);
}

const char *plx_wire_msg_name(int msg_case)
{
    static const char *const names[] = {
        [PLX__ENVELOPE__MSG_HELLO] = "Hello",          [PLX__ENVELOPE__MSG_DECLARE] = "Declare",
        [PLX__ENVELOPE__MSG_CONFIG] = "Config",        [PLX__ENVELOPE__MSG_READY] = "Ready",
        [PLX__ENVELOPE__MSG_READ] = "MmioRead",        [PLX__ENVELOPE__MSG_WRITE] = "MmioWrite",
        [PLX__ENVELOPE__MSG_REPLY] = "MmioReply",      [PLX__ENVELOPE__MSG_IRQ] = "Irq",
        [PLX__ENVELOPE__MSG_DMA] = "DmaRequest",       [PLX__ENVELOPE__MSG_DMA_REPLY] = "DmaReply",
        [PLX__ENVELOPE__MSG_TIMER_ARM] = "TimerArm",   [PLX__ENVELOPE__MSG_TIMER_CANCEL] = "TimerCancel",
        [PLX__ENVELOPE__MSG_TIMER_FIRE] = "TimerFire", [PLX__ENVELOPE__MSG_LOG] = "Log",
        [PLX__ENVELOPE__MSG_SHUTDOWN] = "Shutdown",    [PLX__ENVELOPE__MSG_GOODBYE] = "Goodbye",
        [PLX__ENVELOPE__MSG_ERROR] = "Error",          [PLX__ENVELOPE__MSG_RESET] = "Reset",
        [PLX__ENVELOPE__MSG_WRITE_BATCH] = "MmioWriteBatch", [PLX__ENVELOPE__MSG_TIMER_DONE] = "TimerDone",
        [PLX__ENVELOPE__MSG_TIME_GRANT] = "TimeGrant",      [PLX__ENVELOPE__MSG_TIME_REACHED] = "TimeReached",
        [PLX__ENVELOPE__MSG_DMA_WRITTEN] = "DmaWritten",
        [PLX__ENVELOPE__MSG_SYNC] = "Sync",
        [PLX__ENVELOPE__MSG_CONSOLE_INPUT] = "ConsoleInput", [PLX__ENVELOPE__MSG_CONSOLE_OUTPUT] = "ConsoleOutput",
    };
    if (msg_case < 0 || (size_t)msg_case >= sizeof(names) / sizeof(names[0]) || !names[msg_case])
        return "unknown";
    return names[msg_case];
}
