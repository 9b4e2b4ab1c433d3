/*
 * hello: bare-metal RISC-V firmware that exercises a plexus machine end to end.
 *
 *   1. prints through the ns16550a UART (polling LSR.THRE)         - out-of-process device, shadow page
 *   2. checks the UART scratch register reads back what it wrote   - shadow read ordered after a posted write
 *      and loops bytes back through the UART (MCR.LOOP)           - receive path, RBR read-through
 *   3. takes a CLINT timer interrupt (mtimecmp, MTIE)
 *   4. takes a UART THR-empty interrupt through the PLIC (MEIE, claim/complete)
 *   5. copies buffers with the DMA engine, polled and by interrupt, checking them byte for byte
 *   6. checks that a DMA from an address that is not memory reports an error (with an interrupt)
 *
 * It ends with "hello: all checks passed" and powers off with status 0 through the sifive,test0 device; any
 * failure prints what failed and powers off with a non-zero status (1: a check failed, 2: unexpected trap).
 * Built with -DHELLO_NO_DMA it skips 5 and 6, to run on QEMU's virt machine, which has no such DMA engine.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "platform.h"

#define TIMEOUT_TICKS (TIMEBASE_HZ / 10)    /* 100 ms of machine time for anything we wait for */
#define FDT_MAGIC 0xd00dfeedU

void poweroff(int status) __attribute__((noreturn));
void trap_handler(unsigned long mcause, unsigned long mepc, unsigned long mtval);
int hello_main(unsigned long hartid, const void *dtb);

/* Written by the trap handler. */
static volatile unsigned timer_irqs, uart_irqs, dma_irqs, spurious_irqs;
static volatile uint64_t timer_fired_at;
static volatile uint32_t dma_irq_status;

/* --- console and power ---------------------------------------------------------------------------------- */

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

static void uart_setup(void)
{
    unsigned divisor = UART_CLOCK_HZ / (16 * 115200);

    mmio_write8(UART_BASE + UART_IER, 0);
    mmio_write8(UART_BASE + UART_LCR, UART_LCR_DLAB);
    mmio_write8(UART_BASE + UART_DLL, divisor & 0xff);
    mmio_write8(UART_BASE + UART_DLM, divisor >> 8);
    mmio_write8(UART_BASE + UART_LCR, UART_LCR_8N1);
    mmio_write8(UART_BASE + UART_FCR, 0x07);    /* FIFOs on, both cleared */
}

void
poweroff(int status)
{
    mmio_write32(POWEROFF_BASE, status ? POWEROFF_FAIL | (uint32_t)status << 16 : POWEROFF_PASS);
    for (;;)
        __asm__ volatile("wfi");
}

#define FAIL(...) do { printf("hello: FAIL: " __VA_ARGS__); printf("\n"); poweroff(1); } while (0)

static uint64_t mtime(void) { return mmio_read64(CLINT_MTIME); }

/* Spin until *@counter reaches @want, or fail after TIMEOUT_TICKS of machine time. */
static void wait_for(volatile unsigned *counter, unsigned want, const char *what)
{
    uint64_t deadline = mtime() + TIMEOUT_TICKS;

    while (*counter < want)
        if (mtime() > deadline)
            FAIL("%s did not arrive (mip=0x%lx)", what, csr_read(mip));
}

/* --- traps ----------------------------------------------------------------------------------------------- */

static void uart_interrupt(void)
{
    uint8_t iir = mmio_read8(UART_BASE + UART_IIR);     /* reading IIR clears the THR-empty condition */

    if ((iir & UART_IIR_ID) != UART_IIR_THRI) {
        spurious_irqs++;    /* the line may still read high once after we lowered it */
        return;
    }
    mmio_write8(UART_BASE + UART_IER, 0);
    uart_irqs++;
}

static void dma_interrupt(void)
{
    uint32_t status = mmio_read32(DMA_BASE + DMA_STATUS);

    if (!(status & (DMA_STATUS_DONE | DMA_STATUS_ERROR))) {
        spurious_irqs++;
        return;
    }
    mmio_write32(DMA_BASE + DMA_STATUS, status & (DMA_STATUS_DONE | DMA_STATUS_ERROR));
    dma_irq_status = status;
    dma_irqs++;
}

void
trap_handler(unsigned long mcause, unsigned long mepc, unsigned long mtval)
{
    uint32_t source;

    if (mcause == (MCAUSE_INTR | IRQ_M_TIMER)) {
        mmio_write64(CLINT_MTIMECMP, UINT64_MAX);   /* lowers MTIP */
        timer_fired_at = mtime();
        timer_irqs++;
        return;
    }
    if (mcause == (MCAUSE_INTR | IRQ_M_EXT)) {
        while ((source = mmio_read32(PLIC_CLAIM))) {
            if (source == UART_IRQ)
                uart_interrupt();
            else if (source == DMA_IRQ)
                dma_interrupt();
            else
                printf("hello: unexpected interrupt from PLIC source %u\n", (unsigned)source);
            mmio_write32(PLIC_CLAIM, source);
        }
        return;
    }
    printf("hello: FAIL: unexpected trap mcause=0x%lx mepc=0x%lx mtval=0x%lx\n", mcause, mepc, mtval);
    poweroff(2);
}

static void plic_enable(unsigned source)
{
    mmio_write32(PLIC_PRIORITY(source), 1);
    mmio_write32(PLIC_ENABLE(source), mmio_read32(PLIC_ENABLE(source)) | 1U << (source % 32));
}

/* --- checks ---------------------------------------------------------------------------------------------- */

static void check_device_tree(unsigned long hartid, const void *dtb)
{
    const uint8_t *p = dtb;
    uint32_t magic;

    if (!dtb)
        FAIL("no device tree address in a1");
    magic = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    if (magic != FDT_MAGIC)
        FAIL("a1=%p does not point at a device tree (magic 0x%08lx)", dtb, (unsigned long)magic);
    printf("hello: hart %lu, device tree at %p\n", hartid, dtb);
}

static void check_uart_scratch(void)
{
    mmio_write8(UART_BASE + UART_SCR, 0xa5);
    if (mmio_read8(UART_BASE + UART_SCR) != 0xa5)
        FAIL("uart scratch register reads 0x%02x after writing 0xa5", mmio_read8(UART_BASE + UART_SCR));
    mmio_write8(UART_BASE + UART_SCR, 0x5a);
    if (mmio_read8(UART_BASE + UART_SCR) != 0x5a)
        FAIL("uart scratch register reads 0x%02x after writing 0x5a", mmio_read8(UART_BASE + UART_SCR));
    printf("hello: uart scratch register ok\n");
}

static void check_uart_loopback(void)
{
    static const char text[] = "loop";
    uint64_t deadline;
    uint8_t msr;

    while (mmio_read8(UART_BASE + UART_LSR) & UART_LSR_DR)     /* nothing received may be mistaken for ours */
        (void)mmio_read8(UART_BASE + UART_RBR);
    mmio_write8(UART_BASE + UART_MCR, UART_MCR_LOOP | UART_MCR_RTS);
    msr = mmio_read8(UART_BASE + UART_MSR);
    for (const char *p = text; *p; p++) {
        mmio_write8(UART_BASE + UART_THR, (uint8_t)*p);
        deadline = mtime() + TIMEOUT_TICKS;
        while (!(mmio_read8(UART_BASE + UART_LSR) & UART_LSR_DR)) {
            if (mtime() > deadline) {
                mmio_write8(UART_BASE + UART_MCR, 0);
                FAIL("uart loopback: '%c' did not come back", *p);
            }
        }
        uint8_t got = mmio_read8(UART_BASE + UART_RBR);
        if (got != (uint8_t)*p) {
            mmio_write8(UART_BASE + UART_MCR, 0);
            FAIL("uart loopback: sent '%c', received 0x%02x", *p, got);
        }
    }
    mmio_write8(UART_BASE + UART_MCR, 0);   /* back to the line before printing again */
    if ((msr & 0xf0) != UART_MSR_CTS)
        FAIL("uart loopback: MSR 0x%02x, expected CTS (from RTS) only", msr);
    printf("hello: uart loopback ok\n");
}

static void check_timer_interrupt(void)
{
    uint64_t target = mtime() + TIMEBASE_HZ / 1000;     /* 1 ms */

    mmio_write64(CLINT_MTIMECMP, target);
    csr_set(mie, MIE_MTIE);
    wait_for(&timer_irqs, 1, "timer interrupt");
    csr_clear(mie, MIE_MTIE);
    if (timer_fired_at < target)
        FAIL("timer interrupt at mtime %llu, before mtimecmp %llu",
             (unsigned long long)timer_fired_at, (unsigned long long)target);
    printf("hello: timer interrupt ok (mtime %llu >= mtimecmp %llu)\n",
           (unsigned long long)timer_fired_at, (unsigned long long)target);
}

static void check_uart_interrupt(void)
{
    plic_enable(UART_IRQ);
    mmio_write8(UART_BASE + UART_IER, UART_IER_ETBEI);  /* THR is empty: this raises the interrupt */
    wait_for(&uart_irqs, 1, "uart THR-empty interrupt");
    printf("hello: uart THR-empty interrupt through the PLIC ok\n");
}

#ifndef HELLO_NO_DMA
static uint8_t src_buf[4096] __attribute__((aligned(64)));
static uint8_t dst_buf[4096] __attribute__((aligned(64)));

static void dma_start(const void *dst, const void *src, uint32_t len, uint32_t ctrl)
{
    __asm__ volatile("fence w, o" ::: "memory");   /* buffers written before the engine reads them */
    mmio_write64(DMA_BASE + DMA_SRC, (uintptr_t)src);
    mmio_write64(DMA_BASE + DMA_DST, (uintptr_t)dst);
    mmio_write32(DMA_BASE + DMA_LEN, len);
    mmio_write32(DMA_BASE + DMA_CTRL, ctrl | DMA_CTRL_START);
}

static uint32_t dma_poll(void)
{
    uint64_t deadline = mtime() + TIMEOUT_TICKS;
    uint32_t status;

    while ((status = mmio_read32(DMA_BASE + DMA_STATUS)) & DMA_STATUS_BUSY)
        if (mtime() > deadline)
            FAIL("dma still busy after %lu ticks", (unsigned long)TIMEOUT_TICKS);
    __asm__ volatile("fence i, r" ::: "memory");   /* status seen before the copied bytes are read */
    return status;
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 131 + seed);
}

static void compare(const uint8_t *got, const uint8_t *want, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++)
        if (got[i] != want[i])
            FAIL("%s: byte %u is 0x%02x, expected 0x%02x", what, (unsigned)i, got[i], want[i]);
}

static void check_dma(void)
{
    uint32_t id = mmio_read32(DMA_BASE + DMA_ID), status;

    if (id != DMA_ID_VALUE)
        FAIL("dma engine id reads 0x%08lx, expected 0x%08lx", (unsigned long)id, (unsigned long)DMA_ID_VALUE);

    /* Polled: a whole page. */
    fill(src_buf, sizeof(src_buf), 17);
    memset(dst_buf, 0, sizeof(dst_buf));
    dma_start(dst_buf, src_buf, sizeof(src_buf), 0);
    status = dma_poll();
    if (status != DMA_STATUS_DONE)
        FAIL("polled dma copy ended with status 0x%lx", (unsigned long)status);
    compare(dst_buf, src_buf, sizeof(dst_buf), "polled dma copy");
    mmio_write32(DMA_BASE + DMA_STATUS, DMA_STATUS_DONE);
    printf("hello: dma polled copy of %u bytes ok\n", (unsigned)sizeof(src_buf));

    /* By interrupt: odd length at odd addresses; the bytes around the destination must stay untouched. */
    plic_enable(DMA_IRQ);
    fill(src_buf, sizeof(src_buf), 99);
    memset(dst_buf, 0, sizeof(dst_buf));
    dma_start(dst_buf + 1001, src_buf + 3, 1000, DMA_CTRL_IE);
    wait_for(&dma_irqs, 1, "dma completion interrupt");
    __asm__ volatile("fence i, r" ::: "memory");
    if (dma_irq_status != DMA_STATUS_DONE)
        FAIL("dma interrupt with status 0x%lx, expected DONE", (unsigned long)dma_irq_status);
    compare(dst_buf + 1001, src_buf + 3, 1000, "interrupt dma copy");
    if (dst_buf[1000] || dst_buf[2001])
        FAIL("interrupt dma copy wrote outside its destination");
    if (mmio_read32(DMA_BASE + DMA_COUNT) != 2)
        FAIL("dma transfer count is %lu, expected 2", (unsigned long)mmio_read32(DMA_BASE + DMA_COUNT));
    printf("hello: dma interrupt copy of 1000 bytes ok\n");

    /* Nothing is mapped at address 0: the engine must report an error, and interrupt for it. */
    dma_start(dst_buf, (const void *)0, 64, DMA_CTRL_IE);
    wait_for(&dma_irqs, 2, "dma error interrupt");
    if (dma_irq_status != DMA_STATUS_ERROR)
        FAIL("dma from address 0 ended with status 0x%lx, expected ERROR", (unsigned long)dma_irq_status);
    mmio_write32(DMA_BASE + DMA_CTRL, 0);
    printf("hello: dma error for a source that is not memory ok\n");
}
#endif

int
hello_main(unsigned long hartid, const void *dtb)
{
    uart_setup();
    printf("hello: plexus hello firmware\n");
    check_device_tree(hartid, dtb);
    check_uart_scratch();
    check_uart_loopback();

    mmio_write32(PLIC_THRESHOLD, 0);
    csr_set(mie, MIE_MEIE);
    csr_set(mstatus, MSTATUS_MIE);

    check_timer_interrupt();
    check_uart_interrupt();
#ifdef HELLO_NO_DMA
    printf("hello: dma checks skipped (built without the DMA engine)\n");
#else
    check_dma();
#endif
    printf("hello: all checks passed\n");
    return 0;
}
