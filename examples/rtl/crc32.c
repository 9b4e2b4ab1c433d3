/*
 * crc32: bare-metal RISC-V firmware for the CRC-32 accelerator at 0x10020000 (PLIC source 13), which is either
 * the Verilog peripheral run by Verilator (devices/rtl-crc32) or its C model (devices/crc32-model).
 *
 *   1. identifies the accelerator (ID register)
 *   2. computes CRC-32 of the check string "123456789" and of other buffers in RAM with the accelerator,
 *      polling STATUS, and compares each with a software CRC-32
 *   3. odd alignments and lengths, and a CRC continued from a SEED
 *   4. an operation that completes with an interrupt (IRQ_EN, PLIC claim/complete), waited for with WFI
 *   5. a DMA from an address that is not memory: ERROR, with an interrupt
 *
 * Output is the same whichever implementation runs (it does not depend on timing). Ends with
 * "crc32: all checks passed" and powers off with 0; a failed check powers off with 1, an unexpected trap with 2.
 */
#include <stdbool.h>
#include <stdint.h>

#include "platform.h"

void poweroff(int status) __attribute__((noreturn));
void trap_handler(unsigned long mcause, unsigned long mepc, unsigned long mtval);
int fw_main(void);

static volatile unsigned crc_irqs, timer_irqs;
static volatile uint32_t crc_irq_status;

static uint8_t buffer[8192] __attribute__((aligned(8)));

/* --- console ---------------------------------------------------------------------------------------------- */

static void putc_(char c)
{
    if (c == '\n')
        putc_('\r');
    while (!(mmio_read8(UART_BASE + UART_LSR) & UART_LSR_THRE))
        ;
    mmio_write8(UART_BASE + UART_THR, (uint8_t)c);
}

static void puts_(const char *s)
{
    while (*s)
        putc_(*s++);
}

static void puthex(uint32_t v)
{
    puts_("0x");
    for (int i = 28; i >= 0; i -= 4)
        putc_("0123456789abcdef"[(v >> i) & 0xf]);
}

static void putdec(uint32_t v)
{
    char buf[11];
    int n = 0;
    do {
        buf[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        putc_(buf[--n]);
}

void
poweroff(int status)
{
    mmio_write32(POWEROFF_BASE, status ? 0x3333u | (uint32_t)status << 16 : 0x5555u);
    for (;;)
        __asm__ volatile("wfi");
}

static void fail(const char *what)
{
    puts_("crc32: FAIL: ");
    puts_(what);
    puts_("\n");
    poweroff(1);
}

/* --- traps ------------------------------------------------------------------------------------------------ */

void
trap_handler(unsigned long mcause, unsigned long mepc, unsigned long mtval)
{
    if (mcause == (MCAUSE_INTR | IRQ_M_EXT)) {
        uint32_t src = mmio_read32(PLIC_CLAIM);
        if (src == CRC_IRQ) {
            crc_irq_status = mmio_read32(CRC_BASE + CRC_STATUS);
            mmio_write32(CRC_BASE + CRC_STATUS, CRC_STATUS_DONE | CRC_STATUS_ERROR);   /* drops the line */
            crc_irqs++;
        }
        if (src)
            mmio_write32(PLIC_CLAIM, src);
        return;
    }
    if (mcause == (MCAUSE_INTR | IRQ_M_TIMER)) {
        mmio_write64(CLINT_MTIMECMP, UINT64_MAX);
        timer_irqs++;
        return;
    }
    puts_("crc32: unexpected trap mcause=");
    puthex((uint32_t)mcause);
    puts_(" mepc=");
    puthex((uint32_t)mepc);
    puts_(" mtval=");
    puthex((uint32_t)mtval);
    puts_("\n");
    poweroff(2);
}

/*
 * Sleep in WFI until *@counter moves past @seen, or 100 ms of machine time pass (then fail). Interrupts stay
 * globally enabled during the loop (the hub delivers them between execution slices, so a one-instruction MIE
 * window would not do): if the interrupt lands between the check and the WFI, the timeout ends the wait and the
 * counter is checked once more.
 */
static void wait_irq(volatile unsigned *counter, unsigned seen, const char *what)
{
    mmio_write64(CLINT_MTIMECMP, mmio_read64(CLINT_MTIME) + TIMEBASE_HZ / 10);
    unsigned timeouts = timer_irqs;
    csr_set(mie, MIE_MEIE | MIE_MTIE);
    csr_set(mstatus, MSTATUS_MIE);
    while (*counter == seen && timer_irqs == timeouts)
        __asm__ volatile("wfi");
    csr_clear(mstatus, MSTATUS_MIE);
    csr_clear(mie, MIE_MEIE | MIE_MTIE);
    mmio_write64(CLINT_MTIMECMP, UINT64_MAX);
    if (*counter == seen)
        fail(what);
}

/* --- CRC-32 ----------------------------------------------------------------------------------------------- */

static uint32_t sw_crc32(uint32_t crc, const uint8_t *p, uint32_t n)
{
    crc = ~crc;
    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

static void crc_start(const void *p, uint32_t len, uint32_t seed, uint32_t ctrl)
{
    uintptr_t a = (uintptr_t)p;
    mmio_write32(CRC_BASE + CRC_SRC_LO, (uint32_t)a);
    mmio_write32(CRC_BASE + CRC_SRC_HI, (uint32_t)((uint64_t)a >> 32));
    mmio_write32(CRC_BASE + CRC_LEN, len);
    mmio_write32(CRC_BASE + CRC_SEED, seed);
    mmio_write32(CRC_BASE + CRC_CTRL, ctrl | CRC_CTRL_START);
}

/* Poll until the engine is idle; returns STATUS (DONE and ERROR cleared afterwards). */
static uint32_t crc_wait(void)
{
    uint32_t st;
    uint64_t deadline = mmio_read64(CLINT_MTIME) + TIMEBASE_HZ / 10;
    while ((st = mmio_read32(CRC_BASE + CRC_STATUS)) & CRC_STATUS_BUSY)
        if (mmio_read64(CLINT_MTIME) > deadline)
            fail("the accelerator stayed busy for 100 ms of machine time");
    mmio_write32(CRC_BASE + CRC_STATUS, CRC_STATUS_DONE | CRC_STATUS_ERROR);
    return st;
}

static unsigned checks;

static void check(const char *name, const void *p, uint32_t len, uint32_t seed)
{
    crc_start(p, len, seed, 0);
    uint32_t st = crc_wait();
    if (st != CRC_STATUS_DONE)
        fail("STATUS is not DONE after an operation");
    uint32_t hw = mmio_read32(CRC_BASE + CRC_RESULT);
    uint32_t sw = sw_crc32(seed, p, len);
    puts_("crc32: ");
    puts_(name);
    puts_(": ");
    putdec(len);
    puts_(" bytes, accelerator ");
    puthex(hw);
    puts_(", software ");
    puthex(sw);
    puts_(hw == sw ? " ok\n" : " MISMATCH\n");
    if (hw != sw)
        fail(name);
    checks++;
}

int fw_main(void)
{
    mmio_write8(UART_BASE + UART_IER, 0);
    mmio_write8(UART_BASE + UART_LCR, 0x03);
    mmio_write8(UART_BASE + UART_FCR, 0x07);
    mmio_write64(CLINT_MTIMECMP, UINT64_MAX);

    uint32_t id = mmio_read32(CRC_BASE + CRC_ID);
    puts_("crc32: accelerator id ");
    puthex(id);
    puts_("\n");
    if (id != CRC_ID_VALUE)
        fail("unexpected ID");

    /* 2. the check value and buffers in RAM */
    static const char check_string[] = "123456789";
    check("check string", check_string, 9, 0);
    if (mmio_read32(CRC_BASE + CRC_RESULT) != 0xCBF43926u)
        fail("CRC-32 of \"123456789\" is not 0xcbf43926");
    uint32_t x = 0x12345678;
    for (unsigned i = 0; i < sizeof(buffer); i++) {
        x = x * 1103515245u + 12345u;
        buffer[i] = (uint8_t)(x >> 16);
    }
    check("4 KiB buffer", buffer, 4096, 0);
    check("8 KiB buffer", buffer, sizeof(buffer), 0);

    /* 3. alignments, lengths, SEED */
    check("offset 1", buffer + 1, 1001, 0);
    check("offset 2", buffer + 2, 2, 0);
    check("offset 3", buffer + 3, 7, 0);
    check("one byte", buffer + 5, 1, 0);
    uint32_t first = sw_crc32(0, buffer, 1000);
    check("continued from SEED", buffer + 1000, 3000, first);
    if (mmio_read32(CRC_BASE + CRC_RESULT) != sw_crc32(0, buffer, 4000))
        fail("a CRC continued from SEED differs from the whole buffer's");
    crc_start(buffer, 0, 0xfeedf00du, 0);
    if (crc_wait() != CRC_STATUS_DONE || mmio_read32(CRC_BASE + CRC_RESULT) != 0xfeedf00du)
        fail("LEN=0 must complete at once with RESULT=SEED");
    puts_("crc32: LEN=0 gives SEED ok\n");

    /* 4. completion interrupt through the PLIC */
    mmio_write32(PLIC_PRIORITY(CRC_IRQ), 1);
    mmio_write32(PLIC_ENABLE(CRC_IRQ), 1u << (CRC_IRQ % 32));
    mmio_write32(PLIC_THRESHOLD, 0);
    unsigned seen = crc_irqs;
    crc_start(buffer, 2048, 0, CRC_CTRL_IRQ_EN);
    wait_irq(&crc_irqs, seen, "no completion interrupt within 100 ms of machine time");
    if (crc_irq_status != CRC_STATUS_DONE)
        fail("the interrupt did not report DONE");
    uint32_t hw = mmio_read32(CRC_BASE + CRC_RESULT);
    puts_("crc32: interrupt-driven 2048 bytes ");
    puthex(hw);
    puts_(hw == sw_crc32(0, buffer, 2048) ? " ok\n" : " MISMATCH\n");
    if (hw != sw_crc32(0, buffer, 2048))
        fail("interrupt-driven CRC");

    /* 5. a DMA error: address 0 is not memory */
    seen = crc_irqs;
    crc_start((const void *)0x0, 64, 0, CRC_CTRL_IRQ_EN);
    wait_irq(&crc_irqs, seen, "no error interrupt within 100 ms of machine time");
    if (crc_irq_status != CRC_STATUS_ERROR)
        fail("a DMA from address 0 did not report ERROR");
    if (mmio_read32(CRC_BASE + CRC_RESULT) != hw)
        fail("RESULT changed after a DMA error");
    puts_("crc32: DMA error reported with an interrupt ok\n");
    mmio_write32(CRC_BASE + CRC_CTRL, 0);

    puts_("crc32: ");
    putdec(checks);
    puts_(" CRCs match software\n");
#ifdef CRC32_BENCH_ROUNDS
    /* The benchmark build (crc32-bench.elf): the accelerator kept busy, polled, many times over. */
    uint32_t want = sw_crc32(0, buffer, sizeof(buffer));
    for (unsigned r = 0; r < CRC32_BENCH_ROUNDS; r++) {
        crc_start(buffer, sizeof(buffer), 0, 0);
        if (crc_wait() != CRC_STATUS_DONE || mmio_read32(CRC_BASE + CRC_RESULT) != want)
            fail("benchmark round");
    }
    puts_("crc32: ");
    putdec(CRC32_BENCH_ROUNDS);
    puts_(" benchmark rounds of 8 KiB ok\n");
#endif
    puts_("crc32: all checks passed\n");
    return 0;
}
