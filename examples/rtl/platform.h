/* The machine the crc32 firmware runs on: the QEMU riscv virt memory map plus the CRC-32 accelerator. */
#ifndef CRC32_FW_PLATFORM_H
#define CRC32_FW_PLATFORM_H

#include <stdint.h>

#define POWEROFF_BASE   0x00100000UL    /* sifive,test0: 0x5555 = pass, 0x3333 | code << 16 = fail */
#define CLINT_BASE      0x02000000UL
#define PLIC_BASE       0x0c000000UL
#define UART_BASE       0x10000000UL    /* ns16550a, reg-shift 0 */
#define CRC_BASE        0x10020000UL    /* plexus,crc32: devices/rtl-crc32 or devices/crc32-model */
#define CRC_IRQ         13

#define TIMEBASE_HZ     10000000UL      /* CLINT mtime ticks per second */
#define CLINT_MTIMECMP  (CLINT_BASE + 0x4000)
#define CLINT_MTIME     (CLINT_BASE + 0xbff8)

/* PLIC, context 0 = hart 0 M-mode */
#define PLIC_PRIORITY(src)  (PLIC_BASE + 4 * (src))
#define PLIC_ENABLE(src)    (PLIC_BASE + 0x2000 + 4 * ((src) / 32))
#define PLIC_THRESHOLD      (PLIC_BASE + 0x200000)
#define PLIC_CLAIM          (PLIC_BASE + 0x200004)

#define UART_THR 0
#define UART_IER 1
#define UART_FCR 2
#define UART_LCR 3
#define UART_LSR 5
#define UART_LSR_THRE 0x20

/* CRC-32 accelerator (register map: devices/rtl-crc32/rtl/crc32_dma.v) */
#define CRC_ID       0x00
#define CRC_CTRL     0x04
#define CRC_STATUS   0x08
#define CRC_SRC_LO   0x0c
#define CRC_SRC_HI   0x10
#define CRC_LEN      0x14
#define CRC_SEED     0x18
#define CRC_RESULT   0x1c
#define CRC_ID_VALUE 0x43523332U
#define CRC_CTRL_START  0x1
#define CRC_CTRL_IRQ_EN 0x2
#define CRC_STATUS_BUSY  0x1
#define CRC_STATUS_DONE  0x2
#define CRC_STATUS_ERROR 0x4

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

#define csr_set(csr, bits) __asm__ volatile("csrs " #csr ", %0" :: "r"(bits))
#define csr_clear(csr, bits) __asm__ volatile("csrc " #csr ", %0" :: "r"(bits))

#endif
