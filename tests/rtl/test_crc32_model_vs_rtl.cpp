/*
 * The C model of the CRC-32 accelerator (devices/crc32-model) against its RTL (devices/rtl-crc32), in lock step:
 * the same register accesses at the same clock edges must give the same values and the same IRQ level, cycle
 * for cycle, over randomised operations (alignments, lengths, seeds, IRQ enable, START while busy, W1C, DMA
 * errors, polling at different rates).
 *
 * Time mapping: the RTL runs at 100 MHz (10 ns per cycle). A register read that starts at cycle c samples the
 * state after edge c+1 (setup edge) and a write takes effect on edge c+2 (access edge); the C model gets those
 * edges' times.
 */
#include <criterion/criterion.h>

#include <cstring>
#include <random>
#include <vector>

#include <plexus/rtl-sim.hpp>

#include "Vcrc32_dma.h"
#include "crc32_model.h"

namespace {

constexpr uint64_t MEM_BASE = 0x80000000ull;
constexpr uint64_t NS_PER_CYCLE = 10;

struct Pair {
    std::vector<uint8_t> mem = std::vector<uint8_t>(8192);
    plexus::rtl::Sim<Vcrc32_dma> rtl;
    crc32_model model;
    int model_irq = 0;
    uint64_t accesses = 0;

    static int mem_read(std::vector<uint8_t> &mem, uint64_t addr, void *buf, size_t len)
    {
        if (addr < MEM_BASE || addr - MEM_BASE + len > mem.size())
            return -EFAULT;
        memcpy(buf, &mem[addr - MEM_BASE], len);
        return 0;
    }

    explicit Pair(unsigned dma_latency)
        : rtl([&] {
              plexus::rtl::SimOptions o;
              o.clock_hz = 1000000000 / NS_PER_CYCLE;
              o.dma_latency = dma_latency;
              return o;
          }())
    {
        rtl.on_dma_read([this](uint64_t a, void *b, size_t n) { return mem_read(mem, a, b, n); });
        rtl.reset();
        crc32_model_hooks h{};
        h.dma_read = [](void *o, uint64_t a, void *b, size_t n) {
            return mem_read(static_cast<Pair *>(o)->mem, a, b, n);
        };
        h.set_irq = [](void *o, int level) { static_cast<Pair *>(o)->model_irq = level; };
        h.opaque = this;
        crc32_model_init(&model, &h, 1000000000 / NS_PER_CYCLE, dma_latency);
    }

    void check_irq()
    {
        crc32_model_advance(&model, rtl.cycles() * NS_PER_CYCLE);
        cr_assert_eq((int)rtl.irq_levels(), model_irq, "IRQ differs at cycle %llu (access %llu)",
                     (unsigned long long)rtl.cycles(), (unsigned long long)accesses);
    }

    uint32_t rd(uint64_t off)
    {
        uint64_t c = rtl.cycles();
        uint64_t v = 0;
        int r = rtl.read(off, &v);
        bool err = false;
        uint32_t m = crc32_model_read(&model, (c + 1) * NS_PER_CYCLE, off, &err);
        accesses++;
        cr_assert_eq(r == -EIO, err, "bus error differs at 0x%02llx", (unsigned long long)off);
        cr_assert_eq((uint32_t)v, m, "read 0x%02llx at cycle %llu: RTL 0x%08x, C model 0x%08x", (unsigned long long)off,
                     (unsigned long long)c, (uint32_t)v, m);
        check_irq();
        return m;
    }

    void wr(uint64_t off, uint32_t v)
    {
        uint64_t c = rtl.cycles();
        int r = rtl.write(off, v);
        bool err = false;
        crc32_model_write(&model, (c + 2) * NS_PER_CYCLE, off, v, &err);
        accesses++;
        cr_assert_eq(r == -EIO, err, "bus error differs at 0x%02llx", (unsigned long long)off);
        check_irq();
    }
};

void random_session(unsigned dma_latency, unsigned seed, int ops)
{
    Pair p(dma_latency);
    std::mt19937 rng(seed);
    for (auto &b : p.mem)
        b = (uint8_t)rng();
    auto pick = [&](uint32_t n) { return (uint32_t)(rng() % n); };

    unsigned n_done = 0, n_error = 0, n_busy_polls = 0, n_irq = 0;
    p.rd(CRC32_REG_ID);
    for (int op = 0; op < ops; op++) {
        uint64_t src = MEM_BASE + pick(256);
        uint32_t len = pick(8) == 0 ? 0 : pick(200);
        if (pick(16) == 0)
            src = 0x1000 + pick(64);                    /* outside memory: DMA error on the first word */
        else if (pick(16) == 0)
            src = MEM_BASE + p.mem.size() - 1 - pick(100);  /* runs off the end: DMA error on a later word */
        uint32_t seedv = pick(4) == 0 ? (uint32_t)rng() : 0;
        bool irq = pick(2);
        p.wr(CRC32_REG_SRC_LO, (uint32_t)src);
        p.wr(CRC32_REG_SRC_HI, (uint32_t)(src >> 32));
        p.wr(CRC32_REG_LEN, len);
        p.wr(CRC32_REG_SEED, seedv);
        p.wr(CRC32_REG_CTRL, CRC32_CTRL_START | (irq ? CRC32_CTRL_IRQ_EN : 0));
        if (pick(6) == 0)
            p.wr(CRC32_REG_CTRL, CRC32_CTRL_START | (irq ? CRC32_CTRL_IRQ_EN : 0));   /* START while busy */
        unsigned idle = pick(20);                         /* polling rate */
        for (int n = 0; n < 100000; n++) {
            p.rtl.run(idle);
            if (!(p.rd(CRC32_REG_STATUS) & CRC32_STATUS_BUSY))
                break;
            n_busy_polls++;
            if (pick(10) == 0)
                p.rd(pick(10) * 4);                       /* other registers, and bus errors, while busy */
        }
        uint32_t st = p.rd(CRC32_REG_STATUS);
        cr_assert_eq(st & CRC32_STATUS_BUSY, 0u);
        uint32_t result = p.rd(CRC32_REG_RESULT);
        n_done += (st & CRC32_STATUS_DONE) != 0;
        n_error += (st & CRC32_STATUS_ERROR) != 0;
        n_irq += p.model_irq;
        if (st == CRC32_STATUS_DONE && src >= MEM_BASE && src - MEM_BASE + len <= p.mem.size())
            cr_assert_eq(result, crc32_update(seedv, &p.mem[src - MEM_BASE], len), "operation %d", op);
        if (pick(3) != 0)
            p.wr(CRC32_REG_STATUS, CRC32_STATUS_DONE | CRC32_STATUS_ERROR);
        else
            p.wr(CRC32_REG_STATUS, pick(2) ? CRC32_STATUS_DONE : CRC32_STATUS_ERROR);
    }
    cr_assert_gt(p.accesses, (uint64_t)ops * 8);
    /* The session did exercise every outcome. */
    cr_assert_gt(n_done, 0u);
    cr_assert_gt(n_error, 0u);
    cr_assert_gt(n_busy_polls, 0u);
    cr_assert_gt(n_irq, 0u);
}

} // namespace

Test(crc32_model_vs_rtl, random_operations_no_latency)
{
    random_session(0, 1, 150);
}

Test(crc32_model_vs_rtl, random_operations_with_dma_latency)
{
    random_session(3, 2, 150);
}

Test(crc32_model_vs_rtl, operation_length_in_cycles)
{
    for (unsigned lat = 0; lat < 3; lat++) {
        for (uint64_t off = 0; off < 4; off++) {
            for (uint32_t len = 1; len < 20; len++) {
                Pair p(lat);
                p.wr(CRC32_REG_SRC_LO, (uint32_t)(MEM_BASE + off));
                p.wr(CRC32_REG_SRC_HI, 0);
                p.wr(CRC32_REG_LEN, len);
                p.wr(CRC32_REG_CTRL, CRC32_CTRL_START);
                uint64_t n = p.rtl.run_while_active(100000);
                /* The START edge was the last one; n more edges until the one that set DONE. */
                cr_assert_eq(n, crc32_model_cycles(MEM_BASE + off, len, lat), "latency %u offset %llu length %u", lat,
                             (unsigned long long)off, len);
            }
        }
    }
}
