/*
 * The Verilog CRC-32 accelerator (devices/rtl-crc32/rtl/crc32_dma.v), Verilated and driven cycle by cycle
 * through <plexus/rtl-sim.hpp>: register bus transfers, DMA from a test memory, IRQ output, VCD.
 */
#include <criterion/criterion.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <unistd.h>

#include <plexus/rtl-sim.hpp>

#include "Vcrc32_dma.h"

namespace {

constexpr uint64_t R_ID = 0x00, R_CTRL = 0x04, R_STATUS = 0x08, R_SRC_LO = 0x0C, R_SRC_HI = 0x10, R_LEN = 0x14,
                   R_SEED = 0x18, R_RESULT = 0x1C;
constexpr uint64_t CTRL_START = 1, CTRL_IRQ_EN = 2, ST_BUSY = 1, ST_DONE = 2, ST_ERROR = 4;

constexpr uint64_t MEM_BASE = 0x80000000ull;

struct Bench {
    plexus::rtl::Sim<Vcrc32_dma> sim;
    std::vector<uint8_t> mem = std::vector<uint8_t>(65536);
    unsigned dma_reads = 0;
    std::vector<std::pair<unsigned, int>> irq_events;

    explicit Bench(plexus::rtl::SimOptions opt = plexus::rtl::SimOptions()) : sim(opt)
    {
        sim.on_dma_read([this](uint64_t addr, void *buf, size_t len) -> int {
            dma_reads++;
            if (addr < MEM_BASE || addr - MEM_BASE + len > mem.size())
                return -EFAULT;
            memcpy(buf, &mem[addr - MEM_BASE], len);
            return 0;
        });
        sim.on_irq([this](unsigned line, int level) { irq_events.emplace_back(line, level); });
        sim.reset();
    }

    uint64_t rd(uint64_t reg)
    {
        uint64_t v = ~0ull;
        int r = sim.read(reg, &v);
        cr_assert_eq(r, 0, "read of 0x%02llx failed: %d", (unsigned long long)reg, r);
        return v;
    }

    void wr(uint64_t reg, uint64_t v)
    {
        int r = sim.write(reg, v);
        cr_assert_eq(r, 0, "write of 0x%02llx failed: %d", (unsigned long long)reg, r);
    }

    void start(uint64_t addr, uint32_t len, uint32_t seed, bool irq = false)
    {
        wr(R_SRC_LO, addr & 0xffffffffu);
        wr(R_SRC_HI, addr >> 32);
        wr(R_LEN, len);
        wr(R_SEED, seed);
        wr(R_CTRL, CTRL_START | (irq ? CTRL_IRQ_EN : 0));
    }

    /* Poll STATUS like firmware would; returns the final STATUS. */
    uint64_t wait_idle()
    {
        for (int i = 0; i < 100000; i++) {
            uint64_t st = rd(R_STATUS);
            if (!(st & ST_BUSY))
                return st;
        }
        cr_assert_fail("engine still busy");
        return 0;
    }

    uint32_t crc(uint64_t addr, uint32_t len, uint32_t seed = 0)
    {
        start(addr, len, seed);
        uint64_t st = wait_idle();
        cr_assert_eq(st & (ST_DONE | ST_ERROR), ST_DONE, "STATUS 0x%llx", (unsigned long long)st);
        wr(R_STATUS, ST_DONE);
        return (uint32_t)rd(R_RESULT);
    }

    uint64_t put(uint64_t off, const void *data, size_t len)
    {
        memcpy(&mem[off], data, len);
        return MEM_BASE + off;
    }
};

/* Bitwise reference CRC-32 (reflected 0xEDB88320), continuing from @seed like zlib's crc32(). */
uint32_t ref_crc(uint32_t seed, const uint8_t *p, size_t n)
{
    uint32_t c = ~seed;
    while (n--) {
        c ^= *p++;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return ~c;
}

} // namespace

Test(rtl_crc32, id_register_and_reset_values)
{
    Bench b;
    cr_assert_eq(b.rd(R_ID), 0x43523332u);
    cr_assert_eq(b.rd(R_STATUS), 0u);
    cr_assert_eq(b.rd(R_CTRL), 0u);
    cr_assert_eq(b.rd(R_RESULT), 0u);
    cr_assert_eq(b.sim.irq_levels(), 0u);
}

Test(rtl_crc32, registers_read_back)
{
    Bench b;
    b.wr(R_SRC_LO, 0x89abcdefu);
    b.wr(R_SRC_HI, 0x01234567u);
    b.wr(R_LEN, 0x1000u);
    b.wr(R_SEED, 0xdeadbeefu);
    b.wr(R_CTRL, CTRL_IRQ_EN);
    cr_assert_eq(b.rd(R_SRC_LO), 0x89abcdefu);
    cr_assert_eq(b.rd(R_SRC_HI), 0x01234567u);
    cr_assert_eq(b.rd(R_LEN), 0x1000u);
    cr_assert_eq(b.rd(R_SEED), 0xdeadbeefu);
    cr_assert_eq(b.rd(R_CTRL), CTRL_IRQ_EN, "START reads 0, IRQ_EN reads back");
}

Test(rtl_crc32, known_vectors)
{
    Bench b;
    const char *check = "123456789";
    const char *fox = "The quick brown fox jumps over the lazy dog";
    cr_assert_eq(b.crc(b.put(0, check, 9), 9), 0xCBF43926u);
    cr_assert_eq(b.crc(b.put(0x100, fox, strlen(fox)), (uint32_t)strlen(fox)), 0x414FA339u);
    cr_assert_eq(b.crc(b.put(0x200, "a", 1), 1), 0xE8B7BE43u);
    cr_assert_eq(b.crc(MEM_BASE, 0), 0u, "LEN=0 gives the seed");
    cr_assert_eq(b.crc(MEM_BASE, 0, 0x12345678u), 0x12345678u);
}

Test(rtl_crc32, every_alignment_and_length_matches_reference)
{
    Bench b;
    for (size_t i = 0; i < 256; i++)
        b.mem[i] = (uint8_t)(i * 37 + 11);
    for (uint64_t off = 0; off < 4; off++) {
        for (uint32_t len = 1; len <= 23; len++) {
            uint32_t want = ref_crc(0, &b.mem[off], len);
            uint32_t got = b.crc(MEM_BASE + off, len);
            cr_assert_eq(got, want, "offset %llu length %u: 0x%08x != 0x%08x", (unsigned long long)off, len, got,
                         want);
        }
    }
}

Test(rtl_crc32, large_buffer_word_per_transfer)
{
    Bench b;
    for (size_t i = 0; i < 4096; i++)
        b.mem[0x1000 + i] = (uint8_t)((i * 2654435761u) >> 13);
    uint32_t got = b.crc(MEM_BASE + 0x1000, 4096);
    cr_assert_eq(got, ref_crc(0, &b.mem[0x1000], 4096));
    cr_assert_eq(b.dma_reads, 4096u / 4, "one DMA transfer per 32-bit word");
}

Test(rtl_crc32, seed_continues_a_crc)
{
    Bench b;
    const char *msg = "plexus runs RTL next to C models";
    size_t n = strlen(msg);
    uint64_t a = b.put(0x40, msg, n);
    uint32_t first = b.crc(a, 10);
    uint32_t whole = b.crc(a + 10, (uint32_t)(n - 10), first);
    cr_assert_eq(whole, ref_crc(0, (const uint8_t *)msg, n));
    cr_assert_eq(whole, b.crc(a, (uint32_t)n));
}

Test(rtl_crc32, busy_while_running_then_done)
{
    Bench b;
    b.start(MEM_BASE, 64, 0);
    cr_assert_eq(b.rd(R_STATUS) & (ST_BUSY | ST_DONE), ST_BUSY);
    cr_assert(b.sim.active());
    b.sim.run_while_active(10000);
    cr_assert_not(b.sim.active());
    cr_assert_eq(b.rd(R_STATUS), ST_DONE);
    cr_assert_eq(b.rd(R_RESULT), ref_crc(0, b.mem.data(), 64));
}

Test(rtl_crc32, irq_on_done_and_w1c)
{
    Bench b;
    b.put(0, "123456789", 9);
    b.start(MEM_BASE, 9, 0, true);
    cr_assert_eq(b.sim.irq_levels(), 0u, "no IRQ while busy");
    b.sim.run_while_active(1000);
    cr_assert_eq(b.sim.irq_levels(), 1u);
    cr_assert_eq(b.irq_events.size(), 1u);
    cr_assert_eq(b.irq_events[0].first, 0u);
    cr_assert_eq(b.irq_events[0].second, 1);
    cr_assert_eq(b.rd(R_RESULT), 0xCBF43926u);
    b.wr(R_STATUS, ST_DONE);
    cr_assert_eq(b.sim.irq_levels(), 0u, "W1C of DONE drops the IRQ");
    cr_assert_eq(b.irq_events.size(), 2u);
    cr_assert_eq(b.irq_events[1].second, 0);
}

Test(rtl_crc32, irq_disabled_stays_low)
{
    Bench b;
    b.start(MEM_BASE, 8, 0, false);
    b.sim.run_while_active(1000);
    cr_assert_eq(b.rd(R_STATUS), ST_DONE);
    cr_assert_eq(b.sim.irq_levels(), 0u);
    b.wr(R_CTRL, CTRL_IRQ_EN);
    cr_assert_eq(b.sim.irq_levels(), 1u, "enabling with DONE pending raises the line");
}

Test(rtl_crc32, dma_error_aborts_with_error)
{
    Bench b;
    b.put(0, "123456789", 9);
    uint32_t before = b.crc(MEM_BASE, 9);
    b.start(0x1000, 16, 0, true);                     /* outside the test memory */
    uint64_t st = b.wait_idle();
    cr_assert_eq(st, ST_ERROR);
    cr_assert_eq(b.rd(R_RESULT), before, "RESULT keeps its previous value");
    cr_assert_eq(b.sim.irq_levels(), 1u, "ERROR raises the IRQ");
    b.wr(R_STATUS, ST_ERROR);
    cr_assert_eq(b.rd(R_STATUS), 0u);
    cr_assert_eq(b.sim.irq_levels(), 0u);
}

Test(rtl_crc32, start_while_busy_sets_error_and_keeps_running)
{
    Bench b;
    for (size_t i = 0; i < 128; i++)
        b.mem[i] = (uint8_t)i;
    b.start(MEM_BASE, 128, 0);
    b.wr(R_LEN, 4);                                   /* does not disturb the running operation */
    b.wr(R_CTRL, CTRL_START);
    uint64_t st = b.wait_idle();
    cr_assert_eq(st, ST_DONE | ST_ERROR);
    cr_assert_eq(b.rd(R_RESULT), ref_crc(0, b.mem.data(), 128));
}

Test(rtl_crc32, unmapped_offset_is_a_bus_error)
{
    Bench b;
    uint64_t v = 0;
    cr_assert_eq(b.sim.read(0x20, &v), -EIO);
    cr_assert_eq(b.sim.write(0x40, 1), -EIO);
    cr_assert_eq(b.sim.read(0x06, &v), -EIO, "unaligned offset");
    cr_assert_eq(b.rd(R_ID), 0x43523332u, "the bus still works after an error");
}

Test(rtl_crc32, reads_take_one_wait_state)
{
    Bench b;
    uint64_t c0 = b.sim.cycles();
    b.rd(R_ID);
    uint64_t c1 = b.sim.cycles();
    b.wr(R_LEN, 1);
    uint64_t c2 = b.sim.cycles();
    cr_assert_eq(c1 - c0, 3u, "setup + wait state + access");
    cr_assert_eq(c2 - c1, 2u, "setup + access");
}

Test(rtl_crc32, dma_latency_stretches_the_operation)
{
    plexus::rtl::SimOptions fast, slow;
    slow.dma_latency = 5;
    Bench a(fast), b(slow);
    a.start(MEM_BASE, 64, 0);
    b.start(MEM_BASE, 64, 0);
    uint64_t na = a.sim.run_while_active(10000);
    uint64_t nb = b.sim.run_while_active(10000);
    cr_assert_eq(nb - na, 16u * 5u, "five more cycles for each of the 16 words");
    cr_assert_eq(a.rd(R_RESULT), b.rd(R_RESULT));
}

Test(rtl_crc32, vcd_records_the_bus_and_dma)
{
    char path[] = "/tmp/plexus-rtl-vcd-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    {
        plexus::rtl::SimOptions opt;
        opt.clock_hz = 50000000;
        Bench b(opt);
        cr_assert_eq(b.sim.open_vcd(path), 0);
        b.put(0, "123456789", 9);
        cr_assert_eq(b.crc(MEM_BASE, 9), 0xCBF43926u);
    }
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    std::string text;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        text.append(buf, n);
    fclose(f);
    unlink(path);
    cr_assert(text.find("$enddefinitions") != std::string::npos);
    cr_assert(text.find(" dma_req ") != std::string::npos);
    cr_assert(text.find(" prdata ") != std::string::npos);
    /* Opened after the 2 reset cycles: 50 MHz puts the edges at 40000, 60000, ... ps, falling edges between. */
    cr_assert(text.find("\n#40000\n") != std::string::npos);
    cr_assert(text.find("\n#50000\n") != std::string::npos);
    cr_assert(text.find("\n#60000\n") != std::string::npos);
    cr_assert(text.find("\n#45000\n") == std::string::npos);
}

Test(rtl_crc32, open_vcd_reports_errors)
{
    Bench b;
    cr_assert_lt(b.sim.open_vcd("/nonexistent-dir/x.vcd"), 0);
    cr_assert_eq(b.rd(R_ID), 0x43523332u);
}

Test(rtl_crc32, transfer_without_pready_times_out)
{
    plexus::rtl::SimOptions opt;
    opt.max_wait = 0;                               /* one access cycle: reads need two (a wait state) */
    Bench b(opt);
    uint64_t v = 0x1234;
    cr_assert_eq(b.sim.read(R_ID, &v), -ETIMEDOUT);
    cr_assert_eq(v, 0x1234u, "no data on failure");
    cr_assert_eq(b.sim.write(R_LEN, 7), 0, "writes need no wait state");
    b.sim.run(2);                                   /* the abandoned read's wait state flop settles */
    opt.max_wait = 1;
    Bench c(opt);
    cr_assert_eq(c.rd(R_ID), 0x43523332u);
}
