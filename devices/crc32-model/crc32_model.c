/*
 * CRC-32 accelerator register logic (crc32_model.h).
 */
#include "crc32_model.h"

#include <string.h>

static uint32_t crc_table[256];

static void crc_table_init(void)
{
    if (crc_table[1])
        return;
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0xEDB88320u : c >> 1;
        crc_table[i] = c;
    }
}

uint32_t crc32_update(uint32_t crc, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    uint32_t c = ~crc;

    crc_table_init();
    while (len--)
        c = crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
    return ~c;
}

uint64_t crc32_model_cycles(uint64_t src, uint32_t len, unsigned dma_latency)
{
    uint64_t words = ((src & 3) + (uint64_t)len + 3) / 4;
    return words * (1 + (uint64_t)dma_latency) + len;
}

static void update_irq(crc32_model *m)
{
    int level = m->irq_en && (m->done || m->error);
    if (level != m->irq_level) {
        m->irq_level = level;
        if (m->hooks.set_irq)
            m->hooks.set_irq(m->hooks.opaque, level);
    }
}

static void arm(crc32_model *m, uint64_t deadline)
{
    if (m->hooks.arm)
        m->hooks.arm(m->hooks.opaque, deadline);
}

static void complete(crc32_model *m)
{
    if (m->op_error) {
        m->error = true;
    } else {
        m->result = m->op_result;
        m->done = true;
    }
    m->busy = false;
    m->done_at = CRC32_NEVER;
    update_irq(m);
}

/*
 * Fetch the operation's words as the RTL does (aligned 32-bit words covering [src, src+len)), all at START, and
 * work out on which edge it ends: the DONE edge, or the ack edge of the first word whose read fails. Returns
 * that edge in cycles after the START edge.
 */
static uint64_t run_operation(crc32_model *m)
{
    uint8_t buf[4096];
    uint64_t first = m->op_src & ~3ull;
    uint64_t span = ((m->op_src & 3) + (uint64_t)m->op_len + 3) & ~3ull;
    uint64_t lat = 1 + (uint64_t)m->dma_latency;
    uint32_t crc = m->op_seed;

    m->op_error = false;
    for (uint64_t off = 0; off < span;) {
        size_t n = span - off < sizeof(buf) ? (size_t)(span - off) : sizeof(buf);
        int r = m->hooks.dma_read ? m->hooks.dma_read(m->hooks.opaque, first + off, buf, n) : -1;
        size_t good = n;
        if (r != 0) {
            /* Find the first word that cannot be read. */
            for (good = 0; good < n; good += 4)
                if (m->hooks.dma_read(m->hooks.opaque, first + off + good, buf + good, 4) != 0)
                    break;
        }
        /* Bytes of the operation inside the good words of this chunk. */
        uint64_t lo = off < (m->op_src & 3) ? (m->op_src & 3) - off : 0;
        uint64_t end = (m->op_src & 3) + m->op_len;
        uint64_t hi = end - off < good ? end - off : good;
        if (hi > lo)
            crc = crc32_update(crc, buf + lo, (size_t)(hi - lo));
        if (good < n) {
            /* The failing word is word k; its ack edge comes after k words and the bytes of those k words. */
            uint64_t k = (off + good) / 4;
            uint64_t bytes_before = k ? 4 * k - (m->op_src & 3) : 0;
            m->op_error = true;
            return (k + 1) * lat + bytes_before;
        }
        off += n;
    }
    m->op_result = crc;
    return crc32_model_cycles(m->op_src, m->op_len, m->dma_latency);
}

void crc32_model_advance(crc32_model *m, uint64_t now_ns)
{
    if (m->busy && now_ns >= m->done_at)
        complete(m);
}

void crc32_model_init(crc32_model *m, const crc32_model_hooks *hooks, uint64_t clock_hz, unsigned dma_latency)
{
    memset(m, 0, sizeof(*m));
    if (hooks)
        m->hooks = *hooks;
    m->clock_hz = clock_hz ? clock_hz : 1;
    m->dma_latency = dma_latency;
    m->done_at = CRC32_NEVER;
}

void crc32_model_reset(crc32_model *m)
{
    crc32_model_hooks hooks = m->hooks;
    uint64_t hz = m->clock_hz;
    unsigned latency = m->dma_latency;
    bool was_armed = m->busy;

    crc32_model_init(m, &hooks, hz, latency);
    if (was_armed)
        arm(m, CRC32_NEVER);
    m->irq_level = 1;       /* force the report of the low level */
    update_irq(m);
}

static void start(crc32_model *m, uint64_t now_ns)
{
    if (m->busy) {
        m->error = true;
        return;
    }
    if (m->len == 0) {
        m->result = m->seed;
        m->done = true;
        return;
    }
    m->busy = true;
    m->op_src = m->src;
    m->op_len = m->len;
    m->op_seed = m->seed;
    unsigned __int128 cycles = run_operation(m);
    unsigned __int128 ns = (cycles * 1000000000u + m->clock_hz - 1) / m->clock_hz;
    m->done_at = ns > CRC32_NEVER - 1 - now_ns ? CRC32_NEVER - 1 : now_ns + (uint64_t)ns;
    arm(m, m->done_at);
}

static bool mapped(uint64_t offset)
{
    return (offset & 3) == 0 && offset <= CRC32_REG_RESULT;
}

uint32_t crc32_model_read(crc32_model *m, uint64_t now_ns, uint64_t offset, bool *bus_error)
{
    crc32_model_advance(m, now_ns);
    *bus_error = !mapped(offset);
    switch (offset) {
    case CRC32_REG_ID: return CRC32_ID;
    case CRC32_REG_CTRL: return m->irq_en ? CRC32_CTRL_IRQ_EN : 0;
    case CRC32_REG_STATUS:
        return (m->busy ? CRC32_STATUS_BUSY : 0) | (m->done ? CRC32_STATUS_DONE : 0) |
               (m->error ? CRC32_STATUS_ERROR : 0);
    case CRC32_REG_SRC_LO: return (uint32_t)m->src;
    case CRC32_REG_SRC_HI: return (uint32_t)(m->src >> 32);
    case CRC32_REG_LEN: return m->len;
    case CRC32_REG_SEED: return m->seed;
    case CRC32_REG_RESULT: return m->result;
    default: return 0;
    }
}

/*
 * A write at time t acts on the clock edge at t, as the RTL's does: it sees an operation that completes on that
 * same edge as still busy (START then sets ERROR), and the completion, applied after it, wins over a W1C.
 */
void crc32_model_write(crc32_model *m, uint64_t now_ns, uint64_t offset, uint32_t value, bool *bus_error)
{
    if (m->busy && now_ns > m->done_at)
        complete(m);
    *bus_error = !mapped(offset);
    switch (offset) {
    case CRC32_REG_CTRL:
        m->irq_en = value & CRC32_CTRL_IRQ_EN;
        if (value & CRC32_CTRL_START)
            start(m, now_ns);
        break;
    case CRC32_REG_STATUS:
        if (value & CRC32_STATUS_DONE)
            m->done = false;
        if (value & CRC32_STATUS_ERROR)
            m->error = false;
        break;
    case CRC32_REG_SRC_LO: m->src = (m->src & ~0xffffffffull) | value; break;
    case CRC32_REG_SRC_HI: m->src = (m->src & 0xffffffffull) | ((uint64_t)value << 32); break;
    case CRC32_REG_LEN: m->len = value; break;
    case CRC32_REG_SEED: m->seed = value; break;
    default: break;
    }
    update_irq(m);
    crc32_model_advance(m, now_ns);
}
