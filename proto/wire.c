/* Envelope framing over a device channel with a recycled arena for decoding (see include/plexus/wire.h). */
#include "plexus/wire.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

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
    w->chan = chan;
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
    size_t len = plx__envelope__get_packed_size(env);
    if (len > w->tx_cap) {
        size_t cap = len < 256 ? 256 : len;
        uint8_t *b = realloc(w->tx, cap);
        if (!b)
            return -ENOMEM;
        w->tx = b;
        w->tx_cap = cap;
    }
    plx__envelope__pack(env, w->tx);
    return plx_chan_send(w->chan, w->tx, len, flags);
}

int plx_wire_decode(plx_wire *w, const void *data, size_t len, Plx__Envelope **out)
{
    ProtobufCAllocator alloc = { .alloc = arena_alloc, .free = arena_free, .allocator_data = w };
    plx_wire_release(w);
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
    };
    if (msg_case < 0 || (size_t)msg_case >= sizeof(names) / sizeof(names[0]) || !names[msg_case])
        return "unknown";
    return names[msg_case];
}
