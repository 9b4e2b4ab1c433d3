/*
 * dmacheck: bare-metal RISC-V firmware that puts the plexus DMA engine (plexus,dma at 0x10010000, PLIC source
 * 12) through its register map. The engine is either its SystemC TLM-2.0 model behind the plexus bridge
 * (devices/systemc-dma, machine.yaml) or its C model (devices/dma, machine-c.yaml): the output is the same.
 *
 *   1. ID and VERSION
 *   2. polled copies of many sizes and alignments, checked byte for byte, the bytes around left alone
 *   3. overlapping copies in both directions (memmove)
 *   4. 64-bit register accesses: SRC and DST as one store each, LEN and CTRL (START) in one store
 *   5. a transfer stays BUSY for at least latency + length * ns-per-byte of machine time; START while BUSY is
 *      ignored; LEN 0 completes too
 *   6. a completion interrupt through the PLIC, waited for in WFI
 *   7. errors, with an interrupt: a source that is not memory, a destination that is not memory, a range that
 *      wraps around the address space; COUNT counts only the transfers that completed
 *
 * Ends with "dma: all checks passed" and powers off with 0; a failed check powers off with 1, an unexpected trap
 * with 2. Entry, traps and the linker script are examples/rtl's; the machine's addresses examples/hello's.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "platform.h"

#define DMA_VERSION       0x04
#define DMA_VERSION_VALUE 0x00010000U
#define LATENCY_NS        1000u         /* the machine files' latency-ns and ns-per-byte */
#define NS_PER_BYTE       1u
#define NS_PER_TICK       (1000000000UL / TIMEBASE_HZ)
#define TIMEOUT_TICKS     (TIMEBASE_HZ / 10)

void poweroff(int status) __attribute__((noreturn));
void trap_handler(unsigned long mcause, unsigned long mepc, unsigned long mtval);
int fw_main(void);

static volatile unsigned dma_irqs, timer_irqs;
static volatile uint32_t dma_irq_status;
static unsigned completed;      /* transfers that ended DONE: what COUNT must say */

static uint8_t src_buf[70000] __attribute__((aligned(64)));
static uint8_t dst_buf[70000] __attribute__((aligned(64)));

/* --- console, power, traps ---------------------------------------------------------------------------------- */

static int uart_putc(char c, FILE *f)
{
    if (c == '\n')
        uart_putc('\r', f);
    while (!(mmio_read8(UART_BASE + UART_LSR) & UART_LSR_THRE))
        ;
    mmio_write8(UART_BASE + UART_THR, (uint8_t)c);
    return (unsigned char)c;
}

static FILE console = FDEV_SETUP_STREAM(uart_putc, NULL, NULL, _FDEV_SETUP_WRITE);
FILE *const stdin = &console;
FILE *const stdout = &console;
FILE *const stderr = &console;

void
poweroff(int status)
{
    mmio_write32(POWEROFF_BASE, status ? POWEROFF_FAIL | (uint32_t)status << 16 : POWEROFF_PASS);
    for (;;)
        __asm__ volatile("wfi");
}

#define FAIL(...) do { printf("dma: FAIL: " __VA_ARGS__); printf("\n"); poweroff(1); } while (0)

static uint64_t mtime(void) { return mmio_read64(CLINT_MTIME); }

void
trap_handler(unsigned long mcause, unsigned long mepc, unsigned long mtval)
{
    if (mcause == (MCAUSE_INTR | IRQ_M_EXT)) {
        uint32_t source;
        while ((source = mmio_read32(PLIC_CLAIM))) {
            uint32_t st = source == DMA_IRQ ? mmio_read32(DMA_BASE + DMA_STATUS) : 0;
            /* The line may read high once more after the (posted) write that lowers it: nothing to take then. */
            if (st & (DMA_STATUS_DONE | DMA_STATUS_ERROR)) {
                dma_irq_status = st;
                mmio_write32(DMA_BASE + DMA_STATUS, DMA_STATUS_DONE | DMA_STATUS_ERROR);   /* drops the line */
                dma_irqs++;
            }
            mmio_write32(PLIC_CLAIM, source);
        }
        return;
    }
    if (mcause == (MCAUSE_INTR | IRQ_M_TIMER)) {
        mmio_write64(CLINT_MTIMECMP, UINT64_MAX);
        timer_irqs++;
        return;
    }
    printf("dma: FAIL: unexpected trap mcause=0x%lx mepc=0x%lx mtval=0x%lx\n", mcause, mepc, mtval);
    poweroff(2);
}

/* Sleep in WFI until the DMA interrupt count passes @seen, or fail after 100 ms of machine time (a CLINT timer
 * ends the sleep then; interrupts stay enabled around the check, as the hub takes them between slices). */
static void wait_dma_irq(unsigned seen, const char *what)
{
    mmio_write64(CLINT_MTIMECMP, mtime() + TIMEOUT_TICKS);
    unsigned timeouts = timer_irqs;
    csr_set(mie, MIE_MEIE | MIE_MTIE);
    csr_set(mstatus, MSTATUS_MIE);
    while (dma_irqs == seen && timer_irqs == timeouts)
        __asm__ volatile("wfi");
    csr_clear(mstatus, MSTATUS_MIE);
    csr_clear(mie, MIE_MEIE | MIE_MTIE);
    mmio_write64(CLINT_MTIMECMP, UINT64_MAX);
    if (dma_irqs == seen)
        FAIL("%s: no interrupt within 100 ms of machine time", what);
}

/* --- the engine ------------------------------------------------------------------------------------------------ */

static void start(uint64_t dst, uint64_t src, uint32_t len, uint32_t ctrl)
{
    __asm__ volatile("fence w, o" ::: "memory");   /* the source written before the engine reads it */
    mmio_write64(DMA_BASE + DMA_SRC, src);
    mmio_write64(DMA_BASE + DMA_DST, dst);
    mmio_write32(DMA_BASE + DMA_LEN, len);
    mmio_write32(DMA_BASE + DMA_CTRL, ctrl | DMA_CTRL_START);
}

/* Poll until not BUSY; the final STATUS, cleared afterwards. */
static uint32_t finish(void)
{
    uint64_t deadline = mtime() + TIMEOUT_TICKS;
    uint32_t st;
    while ((st = mmio_read32(DMA_BASE + DMA_STATUS)) & DMA_STATUS_BUSY)
        if (mtime() > deadline)
            FAIL("the engine stayed busy for 100 ms of machine time");
    __asm__ volatile("fence i, r" ::: "memory");   /* STATUS seen before the copied bytes are read */
    mmio_write32(DMA_BASE + DMA_STATUS, DMA_STATUS_DONE | DMA_STATUS_ERROR);
    if (st == DMA_STATUS_DONE)
        completed++;
    return st;
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 151 + seed + (i >> 8));
}

static void expect(const uint8_t *got, const uint8_t *want, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++)
        if (got[i] != want[i])
            FAIL("%s: byte %u is 0x%02x, expected 0x%02x", what, (unsigned)i, got[i], want[i]);
}

static void expect_count(void)
{
    uint32_t count = mmio_read32(DMA_BASE + DMA_COUNT);
    if (count != completed)
        FAIL("COUNT is %lu, %u transfers completed", (unsigned long)count, completed);
}

/* 2. one polled copy of @len bytes from src_buf + @so to dst_buf + @dof; the guard bytes around stay 0xee */
static void copy_check(uint32_t len, unsigned so, unsigned dof)
{
    fill(src_buf, sizeof(src_buf), len + so);
    memset(dst_buf, 0xee, sizeof(dst_buf));
    start((uintptr_t)(dst_buf + dof), (uintptr_t)(src_buf + so), len, 0);
    uint32_t st = finish();
    if (st != DMA_STATUS_DONE)
        FAIL("copy of %lu bytes ended with STATUS 0x%lx", (unsigned long)len, (unsigned long)st);
    expect(dst_buf + dof, src_buf + so, len, "copy");
    if ((dof && dst_buf[dof - 1] != 0xee) || dst_buf[dof + len] != 0xee)
        FAIL("a copy of %lu bytes wrote outside its destination", (unsigned long)len);
}

static void check_copies(void)
{
    static const struct { uint32_t len; unsigned so, dof; } cases[] = {
        { 1, 0, 0 }, { 3, 1, 2 }, { 64, 0, 64 }, { 1000, 3, 1001 }, { 4096, 0, 0 }, { 4097, 7, 5 },
        { 65536, 0, 8 }, { 65536 + 123, 9, 1 },
    };
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        copy_check(cases[i].len, cases[i].so, cases[i].dof);
    expect_count();
    printf("dma: %u polled copies from 1 to %u bytes at odd alignments ok\n",
           (unsigned)(sizeof(cases) / sizeof(cases[0])), 65536 + 123);
}

/* 3. memmove semantics, forward and backward */
static void check_overlap(void)
{
    static uint8_t want[9000];
    fill(src_buf, 9000, 5);
    memcpy(want, src_buf, 9000);
    start((uintptr_t)(src_buf + 1000), (uintptr_t)src_buf, 8000, 0);
    if (finish() != DMA_STATUS_DONE)
        FAIL("overlapping copy upwards");
    expect(src_buf + 1000, want, 8000, "overlapping copy upwards");
    fill(src_buf, 9000, 6);
    memcpy(want, src_buf, 9000);
    start((uintptr_t)src_buf, (uintptr_t)(src_buf + 999), 8001, 0);
    if (finish() != DMA_STATUS_DONE)
        FAIL("overlapping copy downwards");
    expect(src_buf, want + 999, 8001, "overlapping copy downwards");
    printf("dma: overlapping copies in both directions ok\n");
}

/* 4. 64-bit accesses are two 32-bit registers, the lower address first */
static void check_wide_registers(void)
{
    mmio_write64(DMA_BASE + DMA_SRC, 0x1122334455667788ull);
    if (mmio_read32(DMA_BASE + DMA_SRC) != 0x55667788u || mmio_read32(DMA_BASE + DMA_SRC + 4) != 0x11223344u ||
        mmio_read64(DMA_BASE + DMA_SRC) != 0x1122334455667788ull)
        FAIL("SRC reads back 0x%llx", (unsigned long long)mmio_read64(DMA_BASE + DMA_SRC));
    fill(src_buf, 512, 77);
    memset(dst_buf, 0, 512);
    mmio_write64(DMA_BASE + DMA_SRC, (uintptr_t)src_buf);
    mmio_write64(DMA_BASE + DMA_DST, (uintptr_t)dst_buf);
    __asm__ volatile("fence w, o" ::: "memory");
    mmio_write64(DMA_BASE + DMA_LEN, (uint64_t)DMA_CTRL_START << 32 | 512);     /* LEN, then CTRL: START */
    if (finish() != DMA_STATUS_DONE)
        FAIL("a transfer started by a 64-bit store at LEN");
    expect(dst_buf, src_buf, 512, "copy started by a 64-bit store");
    if (mmio_read64(DMA_BASE + DMA_LEN) != 512)
        FAIL("LEN:CTRL reads 0x%llx", (unsigned long long)mmio_read64(DMA_BASE + DMA_LEN));
    expect_count();
    printf("dma: 64-bit register accesses ok\n");
}

/* 5. time: BUSY for at least the transfer's length in machine time; START while BUSY changes nothing */
static void check_timing(void)
{
    const uint32_t len = 20000;
    fill(src_buf, len, 3);
    uint64_t t0 = mtime();
    start((uintptr_t)dst_buf, (uintptr_t)src_buf, len, 0);
    if (!(mmio_read32(DMA_BASE + DMA_STATUS) & DMA_STATUS_BUSY))
        FAIL("a transfer of %lu bytes is not BUSY right after START", (unsigned long)len);
    mmio_write32(DMA_BASE + DMA_LEN, 1);
    mmio_write32(DMA_BASE + DMA_CTRL, DMA_CTRL_START);      /* ignored: busy */
    uint32_t st = finish();
    uint64_t ticks = mtime() - t0;
    if (st != DMA_STATUS_DONE)
        FAIL("timed transfer ended with STATUS 0x%lx", (unsigned long)st);
    if (ticks * NS_PER_TICK + NS_PER_TICK < LATENCY_NS + len * NS_PER_BYTE)
        FAIL("a transfer of %lu bytes was BUSY for only %llu ns", (unsigned long)len,
             (unsigned long long)(ticks * NS_PER_TICK));
    expect(dst_buf, src_buf, len, "timed copy");
    expect_count();
    start((uintptr_t)dst_buf, (uintptr_t)src_buf, 0, 0);
    if (finish() != DMA_STATUS_DONE)
        FAIL("a transfer of 0 bytes did not complete");
    expect_count();
    printf("dma: busy for latency + length in machine time, START while busy ignored, LEN 0 ok\n");
}

/* 6. the completion interrupt */
static void check_interrupt(void)
{
    mmio_write32(PLIC_THRESHOLD, 0);
    mmio_write32(PLIC_PRIORITY(DMA_IRQ), 1);
    mmio_write32(PLIC_ENABLE(DMA_IRQ), 1u << (DMA_IRQ % 32));
    fill(src_buf, 3000, 11);
    memset(dst_buf, 0, 3000);
    unsigned seen = dma_irqs;
    start((uintptr_t)(dst_buf + 1), (uintptr_t)(src_buf + 2), 2997, DMA_CTRL_IE);
    wait_dma_irq(seen, "completion");
    __asm__ volatile("fence i, r" ::: "memory");
    if (dma_irq_status != DMA_STATUS_DONE)
        FAIL("the interrupt came with STATUS 0x%lx", (unsigned long)dma_irq_status);
    completed++;
    expect(dst_buf + 1, src_buf + 2, 2997, "interrupt-driven copy");
    expect_count();
    printf("dma: completion interrupt ok\n");
}

/* 7. errors end a transfer at once with ERROR (an interrupt with IE), and do not count */
#define BUF UINT64_MAX      /* in the table below: the firmware's own buffer */
static void check_errors(void)
{
    static const struct { uint64_t dst, src; uint32_t len; const char *what; } cases[] = {
        { BUF, 0, 64, "a source that is not memory" },
        { 0x1000, BUF, 64, "a destination that is not memory" },
        { BUF, 0xfffffffffffffff0ull, 0x100, "a source range that wraps around" },
    };
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        unsigned seen = dma_irqs;
        start(cases[i].dst == BUF ? (uintptr_t)dst_buf : cases[i].dst,
              cases[i].src == BUF ? (uintptr_t)src_buf : cases[i].src, cases[i].len, DMA_CTRL_IE);
        wait_dma_irq(seen, cases[i].what);
        if (dma_irq_status != DMA_STATUS_ERROR)
            FAIL("%s: STATUS 0x%lx, expected ERROR", cases[i].what, (unsigned long)dma_irq_status);
        expect_count();
        printf("dma: %s reported as ERROR with an interrupt ok\n", cases[i].what);
    }
    mmio_write32(DMA_BASE + DMA_CTRL, 0);
}

int fw_main(void)
{
    mmio_write8(UART_BASE + UART_IER, 0);
    mmio_write8(UART_BASE + UART_LCR, UART_LCR_8N1);
    mmio_write8(UART_BASE + UART_FCR, 0x07);
    mmio_write64(CLINT_MTIMECMP, UINT64_MAX);

    uint32_t id = mmio_read32(DMA_BASE + DMA_ID), version = mmio_read32(DMA_BASE + DMA_VERSION);
    if (id != DMA_ID_VALUE || version != DMA_VERSION_VALUE)
        FAIL("ID 0x%08lx VERSION 0x%08lx", (unsigned long)id, (unsigned long)version);
    printf("dma: engine id 0x%08lx version 0x%08lx\n", (unsigned long)id, (unsigned long)version);
    expect_count();
    check_copies();
    check_overlap();
    check_wide_registers();
    check_timing();
    check_interrupt();
    check_errors();
    printf("dma: %u transfers completed\n", completed);
    printf("dma: all checks passed\n");
    return 0;
}
