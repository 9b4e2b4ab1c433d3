/*
 * The DMA write side of the RTL port contract (dma_we, dma_wdata, dma_wstrb) with a small test peripheral
 * (tests/rtl/rtl/dma_xor.v: copy words from SRC to DST XORed with KEY, writing the byte lanes in MASK), driven
 * through <plexus/rtl-sim.hpp>: reads and writes alternate, back-to-back requests start on the ack edge.
 */
#include <criterion/criterion.h>

#include <cstring>
#include <vector>

#include <plexus/rtl-sim.hpp>

#include "Vdma_xor.h"

namespace {

constexpr uint64_t BASE = 0x80000000ull;

struct Bench {
    plexus::rtl::Sim<Vdma_xor> sim;
    std::vector<uint8_t> mem = std::vector<uint8_t>(4096);
    std::vector<std::pair<uint64_t, size_t>> writes;

    explicit Bench(unsigned latency = 0) : sim([&] {
        plexus::rtl::SimOptions o;
        o.dma_latency = latency;
        return o;
    }())
    {
        sim.on_dma_read([this](uint64_t a, void *b, size_t n) -> int {
            if (a < BASE || a - BASE + n > mem.size())
                return -EFAULT;
            memcpy(b, &mem[a - BASE], n);
            return 0;
        });
        sim.on_dma_write([this](uint64_t a, const void *b, size_t n) -> int {
            if (a < BASE || a - BASE + n > mem.size())
                return -EFAULT;
            memcpy(&mem[a - BASE], b, n);
            writes.emplace_back(a, n);
            return 0;
        });
        sim.reset();
    }

    uint32_t run(uint32_t src, uint32_t dst, uint32_t words, uint32_t key, uint32_t mask)
    {
        cr_assert_eq(sim.write(0x08, src), 0);
        cr_assert_eq(sim.write(0x0C, dst), 0);
        cr_assert_eq(sim.write(0x10, words), 0);
        cr_assert_eq(sim.write(0x14, key), 0);
        cr_assert_eq(sim.write(0x18, mask), 0);
        cr_assert_eq(sim.write(0x00, 1), 0);
        sim.run_while_active(100000);
        uint64_t st = 0;
        cr_assert_eq(sim.read(0x04, &st), 0);
        return (uint32_t)st;
    }
};

uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

} // namespace

Test(rtl_dma_write, copies_words_with_all_lanes)
{
    for (unsigned latency = 0; latency < 3; latency++) {
        Bench b(latency);
        for (size_t i = 0; i < 256; i++)
            b.mem[i] = (uint8_t)(i * 7 + 1);
        cr_assert_eq(b.run(BASE, BASE + 0x800, 64, 0xA5A5A5A5u, 0xF), 2u, "DONE");
        for (size_t w = 0; w < 64; w++)
            cr_assert_eq(le32(&b.mem[0x800 + 4 * w]), le32(&b.mem[4 * w]) ^ 0xA5A5A5A5u, "word %zu", w);
        cr_assert_eq(b.writes.size(), 64u, "one write call per word when every lane is enabled");
        cr_assert_eq(b.writes[1].first, BASE + 0x804);
        cr_assert_eq(b.writes[1].second, 4u);
    }
}

Test(rtl_dma_write, byte_strobes_leave_other_bytes_alone)
{
    Bench b;
    for (size_t i = 0; i < 16; i++)
        b.mem[i] = (uint8_t)(0x10 + i);
    memset(&b.mem[0x100], 0xEE, 16);
    cr_assert_eq(b.run(BASE, BASE + 0x100, 4, 0, 0x9), 2u);      /* lanes 0 and 3 */
    for (size_t w = 0; w < 4; w++) {
        cr_assert_eq(b.mem[0x100 + 4 * w + 0], b.mem[4 * w + 0]);
        cr_assert_eq(b.mem[0x100 + 4 * w + 1], 0xEE);
        cr_assert_eq(b.mem[0x100 + 4 * w + 2], 0xEE);
        cr_assert_eq(b.mem[0x100 + 4 * w + 3], b.mem[4 * w + 3]);
    }
    cr_assert_eq(b.writes.size(), 8u, "two runs of lanes per word");
    cr_assert_eq(b.writes[0].first, BASE + 0x100);
    cr_assert_eq(b.writes[1].first, BASE + 0x103);
    cr_assert_eq(b.writes[1].second, 1u);

    b.writes.clear();
    memset(&b.mem[0x200], 0x11, 16);
    cr_assert_eq(b.run(BASE, BASE + 0x200, 4, 0, 0x6), 2u);      /* lanes 1 and 2: one run */
    cr_assert_eq(b.writes.size(), 4u);
    cr_assert_eq(b.writes[0].first, BASE + 0x201);
    cr_assert_eq(b.writes[0].second, 2u);
    cr_assert_eq(b.mem[0x200], 0x11);
    cr_assert_eq(b.mem[0x201], b.mem[1]);
}

Test(rtl_dma_write, failed_write_is_a_dma_error)
{
    Bench b;
    cr_assert_eq(b.run(BASE, BASE + 4096 - 8, 4, 0, 0xF), 4u, "ERROR once the destination leaves memory");
    cr_assert_eq(b.writes.size(), 2u, "the two words inside memory were written");
}
