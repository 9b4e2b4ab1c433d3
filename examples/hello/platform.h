/* The machine the hello firmware runs on: the QEMU riscv virt memory map plus the plexus DMA engine. */
#ifndef HELLO_PLATFORM_H
#define HELLO_PLATFORM_H

#include <stdint.h>

#define POWEROFF_BASE   0x00100000UL    /* sifive,test0 */
#define CLINT_BASE      0x02000000UL
#define PLIC_BASE       0x0c000000UL
#define UART_BASE       0x10000000UL    /* ns16550a, reg-shift 0 */
#define DMA_BASE        0x10010000UL    /* plexus,dma (devices/dma/README.md) */

#define UART_IRQ        10
#define DMA_IRQ         12

#define TIMEBASE_HZ     10000000UL      /* CLINT mtime ticks per second */

/* sifive,test0 */
#define POWEROFF_PASS   0x5555
#define POWEROFF_FAIL   0x3333          /* | exit code << 16 */

/* CLINT, hart 0 */
#define CLINT_MTIMECMP  (CLINT_BASE + 0x4000)
#define CLINT_MTIME     (CLINT_BASE + 0xbff8)

/* PLIC, context 0 = hart 0 M-mode */
#define PLIC_PRIORITY(src)  (PLIC_BASE + 4 * (src))
#define PLIC_ENABLE(src)    (PLIC_BASE + 0x2000 + 4 * ((src) / 32))
#define PLIC_THRESHOLD      (PLIC_BASE + 0x200000)
#define PLIC_CLAIM          (PLIC_BASE + 0x200004)

/* ns16550a registers (byte offsets) and bits */
#define UART_RBR 0
#define UART_THR 0
#define UART_DLL 0
#define UART_IER 1
#define UART_DLM 1
#define UART_IIR 2
#define UART_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_MSR 6
#define UART_SCR 7
#define UART_IER_ETBEI 0x02
#define UART_IIR_ID    0x0f
#define UART_IIR_THRI  0x02
#define UART_LCR_DLAB  0x80
#define UART_LCR_8N1   0x03
#define UART_MCR_RTS   0x02
#define UART_MCR_LOOP  0x10
#define UART_LSR_DR    0x01
#define UART_LSR_THRE  0x20
#define UART_MSR_CTS   0x10
#define UART_CLOCK_HZ  3686400

/* plexus DMA engine registers and bits */
#define DMA_ID       0x00
#define DMA_SRC      0x08
#define DMA_DST      0x10
#define DMA_LEN      0x18
#define DMA_CTRL     0x1c
#define DMA_STATUS   0x20
#define DMA_COUNT    0x24
#define DMA_ID_VALUE 0x504c444dU
#define DMA_CTRL_START 0x1
#define DMA_CTRL_IE    0x2
#define DMA_STATUS_BUSY  0x1
#define DMA_STATUS_DONE  0x2
#define DMA_STATUS_ERROR 0x4

/* Machine-level CSR bits */
#define MSTATUS_MIE     (1UL << 3)
#define MIE_MTIE        (1UL << 7)
#define MIE_MEIE        (1UL << 11)
#define MCAUSE_INTR     (1UL << 63)
#define IRQ_M_TIMER     7
#define IRQ_M_EXT       11

static inline uint8_t mmio_read8(uintptr_t a) { return *(volatile uint8_t *)a; }
static inline uint32_t mmio_read32(uintptr_t a) { return *(volatile uint32_t *)a; }
static inline uint64_t mmio_read64(uintptr_t a) { return *(volatile uint64_t *)a; }
static inline void mmio_write8(uintptr_t a, uint8_t v) { *(volatile uint8_t *)a = v; }
static inline void mmio_write32(uintptr_t a, uint32_t v) { *(volatile uint32_t *)a = v; }
static inline void mmio_write64(uintptr_t a, uint64_t v) { *(volatile uint64_t *)a = v; }

#define csr_read(csr) ({ unsigned long v_; __asm__ volatile("csrr %0, " #csr : "=r"(v_)); v_; })
#define csr_set(csr, bits) __asm__ volatile("csrs " #csr ", %0" :: "r"(bits))
#define csr_clear(csr, bits) __asm__ volatile("csrc " #csr ", %0" :: "r"(bits))

#endif
