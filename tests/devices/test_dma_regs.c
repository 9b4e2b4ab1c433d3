/* The DMA engine's register logic on its own, over a fake guest memory and a fake clock. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "dma_regs.h"

#define RAM_BASE 0x80000000ULL
#define RAM_SIZE 4096

static struct probe {
    uint8_t ram[RAM_SIZE];
    uint64_t now, deadline;
    bool armed;
    int irq;
    unsigned copies;
} p;

static int fake_copy(void *o, uint64_t dst, uint64_t src, uint64_t len)
{
    if (src < RAM_BASE || src - RAM_BASE > RAM_SIZE || len > RAM_SIZE - (src - RAM_BASE) ||
        dst < RAM_BASE || dst - RAM_BASE > RAM_SIZE || len > RAM_SIZE - (dst - RAM_BASE))
        return -EFAULT;
    memmove(p.ram + (dst - RAM_BASE), p.ram + (src - RAM_BASE), len);
    p.copies++;
    return 0;
}
static void fake_irq(void *o, int level) { p.irq = level; }
static uint64_t fake_now(void *o) { return p.now; }
static void fake_mod(void *o, uint64_t d) { p.deadline = d; p.armed = true; }
static void fake_del(void *o) { p.armed = false; }

static const dma_hooks hooks = {
    .copy = fake_copy, .irq = fake_irq, .now = fake_now, .timer_mod = fake_mod, .timer_del = fake_del,
};
static dma d;

static void setup(void)
{
    memset(&p, 0, sizeof(p));
    p.irq = -1;
    p.now = 5000;
    for (unsigned i = 0; i < RAM_SIZE; i++)
        p.ram[i] = (uint8_t)(i * 7 + 1);
    dma_init(&d, &hooks, NULL, 100, 2);
    dma_reset(&d);
}

static void program(uint64_t dst, uint64_t src, uint32_t len, uint32_t ctrl)
{
    dma_write(&d, DMA_SRC_LO, (uint32_t)src);
    dma_write(&d, DMA_SRC_HI, (uint32_t)(src >> 32));
    dma_write(&d, DMA_DST_LO, (uint32_t)dst);
    dma_write(&d, DMA_DST_HI, (uint32_t)(dst >> 32));
    dma_write(&d, DMA_LEN, len);
    dma_write(&d, DMA_CTRL, ctrl);
}

/* The timer owner fires the completion at the deadline. */
static void fire(void)
{
    cr_assert(p.armed);
    p.now = p.deadline;
    p.armed = false;
    dma_complete(&d);
}

TestSuite(dma_regs, .init = setup);

Test(dma_regs, identity_and_reset_values)
{
    cr_assert_eq(dma_read(&d, DMA_ID), DMA_ID_VALUE);
    cr_assert_eq(dma_read(&d, DMA_VERSION), DMA_VERSION_VALUE);
    cr_assert_eq(dma_read(&d, DMA_STATUS), 0);
    cr_assert_eq(p.irq, 0);
    dma_write(&d, DMA_ID, 0);
    cr_assert_eq(dma_read(&d, DMA_ID), DMA_ID_VALUE, "ID is read-only");
    cr_assert_eq(dma_read(&d, 0x800), 0, "reserved offsets read zero");
}

Test(dma_regs, registers_read_back)
{
    program(0x123456789abcdef0ULL, 0x0fedcba987654321ULL, 77, DMA_CTRL_IE);
    cr_assert_eq(dma_read(&d, DMA_SRC_LO), 0x87654321);
    cr_assert_eq(dma_read(&d, DMA_SRC_HI), 0x0fedcba9);
    cr_assert_eq(dma_read(&d, DMA_DST_LO), 0x9abcdef0);
    cr_assert_eq(dma_read(&d, DMA_DST_HI), 0x12345678);
    cr_assert_eq(dma_read(&d, DMA_LEN), 77);
    cr_assert_eq(dma_read(&d, DMA_CTRL), DMA_CTRL_IE, "START reads as zero");
    cr_assert_eq(dma_read(&d, DMA_STATUS), 0, "nothing started");
}

Test(dma_regs, copy_then_busy_until_deadline)
{
    uint8_t expect[256];

    memcpy(expect, p.ram, sizeof(expect));
    program(RAM_BASE + 2048, RAM_BASE, 256, DMA_CTRL_START);
    cr_assert_eq(memcmp(p.ram + 2048, expect, 256), 0);
    cr_assert_eq(dma_read(&d, DMA_STATUS), DMA_STATUS_BUSY);
    cr_assert_eq(p.deadline, 5000 + 100 + 2 * 256, "latency plus ns per byte");
    fire();
    cr_assert_eq(dma_read(&d, DMA_STATUS), DMA_STATUS_DONE);
    cr_assert_eq(dma_read(&d, DMA_COUNT), 1);
    cr_assert_eq(p.irq, 0, "interrupt not enabled");
    dma_write(&d, DMA_STATUS, DMA_STATUS_DONE);
    cr_assert_eq(dma_read(&d, DMA_STATUS), 0, "DONE is write-1-to-clear");
}

Test(dma_regs, completion_interrupt_level_until_cleared)
{
    program(RAM_BASE + 100, RAM_BASE + 200, 16, DMA_CTRL_START | DMA_CTRL_IE);
    cr_assert_eq(p.irq, 0);
    fire();
    cr_assert_eq(p.irq, 1);
    dma_write(&d, DMA_STATUS, DMA_STATUS_ERROR);
    cr_assert_eq(p.irq, 1, "clearing a bit that is not set changes nothing");
    dma_write(&d, DMA_STATUS, DMA_STATUS_DONE);
    cr_assert_eq(p.irq, 0);
}

Test(dma_regs, disabling_ie_lowers_irq)
{
    program(RAM_BASE + 100, RAM_BASE + 200, 16, DMA_CTRL_START | DMA_CTRL_IE);
    fire();
    cr_assert_eq(p.irq, 1);
    dma_write(&d, DMA_CTRL, 0);
    cr_assert_eq(p.irq, 0);
    cr_assert_eq(dma_read(&d, DMA_STATUS), DMA_STATUS_DONE);
}

Test(dma_regs, overlapping_copy_is_memmove)
{
    uint8_t expect[64];

    memcpy(expect, p.ram, sizeof(expect));
    program(RAM_BASE + 8, RAM_BASE, 64, DMA_CTRL_START);
    cr_assert_eq(memcmp(p.ram + 8, expect, 64), 0);
}

Test(dma_regs, bad_address_sets_error_and_irq_at_once)
{
    program(RAM_BASE, 0x1000, 16, DMA_CTRL_START | DMA_CTRL_IE);
    cr_assert_eq(dma_read(&d, DMA_STATUS), DMA_STATUS_ERROR);
    cr_assert_eq(p.irq, 1);
    cr_assert_not(p.armed);
    cr_assert_eq(p.copies, 0);
    cr_assert_eq(dma_read(&d, DMA_COUNT), 0);
    dma_write(&d, DMA_STATUS, DMA_STATUS_ERROR);
    cr_assert_eq(p.irq, 0);
}

Test(dma_regs, range_past_end_of_ram_is_an_error)
{
    program(RAM_BASE + RAM_SIZE - 8, RAM_BASE, 9, DMA_CTRL_START);
    cr_assert_eq(dma_read(&d, DMA_STATUS), DMA_STATUS_ERROR);
}

Test(dma_regs, wrapping_range_is_an_error)
{
    program(RAM_BASE, 0xfffffffffffffff0ULL, 0x20, DMA_CTRL_START);
    cr_assert_eq(dma_read(&d, DMA_STATUS), DMA_STATUS_ERROR);
    cr_assert_eq(p.copies, 0);
}

Test(dma_regs, start_while_busy_is_ignored)
{
    program(RAM_BASE + 1024, RAM_BASE, 32, DMA_CTRL_START);
    uint64_t deadline = p.deadline;
    program(RAM_BASE + 3000, RAM_BASE, 32, DMA_CTRL_START);
    cr_assert_eq(p.copies, 1);
    cr_assert_eq(p.deadline, deadline);
    fire();
    cr_assert_eq(dma_read(&d, DMA_STATUS), DMA_STATUS_DONE);
}

Test(dma_regs, new_start_clears_previous_done)
{
    program(RAM_BASE + 1024, RAM_BASE, 32, DMA_CTRL_START);
    fire();
    dma_write(&d, DMA_CTRL, DMA_CTRL_START);
    cr_assert_eq(dma_read(&d, DMA_STATUS), DMA_STATUS_BUSY);
    fire();
    cr_assert_eq(dma_read(&d, DMA_COUNT), 2);
}

Test(dma_regs, zero_delay_completes_inside_start)
{
    dma_init(&d, &hooks, NULL, 0, 0);
    dma_reset(&d);
    program(RAM_BASE + 1024, RAM_BASE, 32, DMA_CTRL_START | DMA_CTRL_IE);
    cr_assert_not(p.armed);
    cr_assert_eq(dma_read(&d, DMA_STATUS), DMA_STATUS_DONE);
    cr_assert_eq(p.irq, 1);
}

Test(dma_regs, zero_length_transfer_completes_without_copy)
{
    program(0, 0, 0, DMA_CTRL_START);
    cr_assert_eq(p.copies, 0);
    fire();
    cr_assert_eq(dma_read(&d, DMA_STATUS), DMA_STATUS_DONE);
}

Test(dma_regs, reset_cancels_transfer)
{
    program(RAM_BASE + 1024, RAM_BASE, 32, DMA_CTRL_START | DMA_CTRL_IE);
    dma_reset(&d);
    cr_assert_not(p.armed);
    cr_assert_eq(dma_read(&d, DMA_STATUS), 0);
    dma_complete(&d);
    cr_assert_eq(dma_read(&d, DMA_STATUS), 0, "a late completion after reset is ignored");
    cr_assert_eq(p.irq, 0);
}

/* Random register writes, completions and resets (fixed seed): the interrupt line always equals
 * IE && (DONE || ERROR), BUSY always has an armed completion, and BUSY/DONE/ERROR are exclusive. */
Test(dma_regs, invariants_hold_under_random_accesses)
{
    static const uint64_t offs[] = { DMA_SRC_LO, DMA_SRC_HI, DMA_DST_LO, DMA_DST_HI, DMA_LEN, DMA_CTRL, DMA_STATUS };
    unsigned seed = 777;

    for (int step = 0; step < 100000; step++) {
        unsigned r = rand_r(&seed), what = r % 16;
        uint32_t v = (uint32_t)rand_r(&seed);

        if (what < 9) {
            uint64_t off = offs[what % 7];
            if (off == DMA_SRC_LO || off == DMA_DST_LO)
                v = (uint32_t)RAM_BASE + v % (RAM_SIZE + 64);      /* mostly inside the fake RAM */
            else if (off == DMA_SRC_HI || off == DMA_DST_HI)
                v = v % 16 == 0 ? v : 0;
            else if (off == DMA_LEN)
                v %= 128;
            dma_write(&d, off, v);
        } else if (what < 14) {
            dma_read(&d, offs[what % 7]);
        } else if (what == 14 && p.armed) {
            fire();
        } else if (what == 15 && r % 64 == 0) {
            dma_reset(&d);
        }

        uint32_t st = dma_read(&d, DMA_STATUS), ctrl = dma_read(&d, DMA_CTRL);
        int want = (ctrl & DMA_CTRL_IE) && (st & (DMA_STATUS_DONE | DMA_STATUS_ERROR));
        cr_assert_eq(p.irq, want, "step %d: irq %d, CTRL 0x%x STATUS 0x%x", step, p.irq, ctrl, st);
        cr_assert_leq(__builtin_popcount(st), 1, "step %d: STATUS 0x%x", step, st);
        if (st & DMA_STATUS_BUSY)
            cr_assert(p.armed, "step %d: BUSY without a completion armed", step);
    }
}
