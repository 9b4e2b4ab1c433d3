/*
 * Register logic of the ns16550a-compatible UART, free of any transport: the device glue (uart16550.c) and the
 * unit tests drive it through uart_read()/uart_write()/uart_rx_push() and see its effects through the hooks.
 *
 * Transmission is instantaneous: a byte written to THR leaves through the tx hook at once, so THR and the
 * transmitter are always empty when the guest looks (LSR.THRE = LSR.TEMT = 1).
 *
 * Lifetime: the caller embeds struct uart and calls uart_init() once; there is nothing to free.
 */
#ifndef PLEXUS_DEVICES_UART_REGS_H
#define PLEXUS_DEVICES_UART_REGS_H

#include <stdbool.h>
#include <stdint.h>

#define UART_FIFO_SIZE 16

/* Register offsets (reg-shift 0). */
enum {
    UART_RBR = 0, UART_THR = 0, UART_DLL = 0,
    UART_IER = 1, UART_DLM = 1,
    UART_IIR = 2, UART_FCR = 2,
    UART_LCR = 3,
    UART_MCR = 4,
    UART_LSR = 5,
    UART_MSR = 6,
    UART_SCR = 7,
    UART_NREGS = 8,
};

enum {
    UART_IER_ERBFI = 0x01, UART_IER_ETBEI = 0x02, UART_IER_ELSI = 0x04, UART_IER_EDSSI = 0x08,

    UART_IIR_NO_INT = 0x01, UART_IIR_MSI = 0x00, UART_IIR_THRI = 0x02, UART_IIR_RDI = 0x04,
    UART_IIR_RLSI = 0x06, UART_IIR_CTI = 0x0c, UART_IIR_FIFO_ON = 0xc0,

    UART_FCR_ENABLE = 0x01, UART_FCR_CLEAR_RX = 0x02, UART_FCR_CLEAR_TX = 0x04, UART_FCR_TRIGGER = 0xc0,

    UART_LCR_DLAB = 0x80,

    UART_MCR_DTR = 0x01, UART_MCR_RTS = 0x02, UART_MCR_OUT1 = 0x04, UART_MCR_OUT2 = 0x08, UART_MCR_LOOP = 0x10,

    UART_LSR_DR = 0x01, UART_LSR_OE = 0x02, UART_LSR_PE = 0x04, UART_LSR_FE = 0x08, UART_LSR_BI = 0x10,
    UART_LSR_THRE = 0x20, UART_LSR_TEMT = 0x40, UART_LSR_FIFOE = 0x80,

    UART_MSR_DCTS = 0x01, UART_MSR_DDSR = 0x02, UART_MSR_TERI = 0x04, UART_MSR_DDCD = 0x08,
    UART_MSR_CTS = 0x10, UART_MSR_DSR = 0x20, UART_MSR_RI = 0x40, UART_MSR_DCD = 0x80,
};

typedef struct uart_hooks {
    /* A byte leaves the transmitter (not called in loopback mode). */
    void (*tx)(void *opaque, uint8_t byte);
    /* The interrupt output changed level. */
    void (*irq)(void *opaque, int level);
    /* A register the guest may read without side effects (LCR, MCR, LSR, SCR) changed its readable value. */
    void (*shadow)(void *opaque, unsigned offset, uint8_t value);
    /* The receive FIFO went from full to having room: more input may be pushed. */
    void (*rx_room)(void *opaque);
} uart_hooks;

typedef struct uart {
    const uart_hooks *hooks;
    void *opaque;

    uint8_t rx[UART_FIFO_SIZE];
    unsigned rx_head, rx_count;
    uint8_t ier, lcr, mcr, lsr, msr, scr, fcr;
    uint16_t divisor;
    bool thre_pending;      /* the THR-empty interrupt condition, cleared by an IIR read that reports it */
    int irq_level;
    uint8_t shadow[UART_NREGS]; /* last value handed to the shadow hook, per offset */
    bool shadow_valid;
} uart;

void uart_init(uart *u, const uart_hooks *hooks, void *opaque);
/* Power-on state; reports every shadowed register and the interrupt level through the hooks. */
void uart_reset(uart *u);
/* Carry on with registers a previous process left in @u (a restart): new hooks; every shadowed register and
 * the interrupt level are reported again through them. */
void uart_resume(uart *u, const uart_hooks *hooks, void *opaque);

/* Guest access to register @reg (0..7); other offsets read 0 and ignore writes. */
uint8_t uart_read(uart *u, unsigned reg);
void uart_write(uart *u, unsigned reg, uint8_t value);

/* Bytes the receive FIFO can still take from the line (1 at most in non-FIFO mode). */
unsigned uart_rx_room(const uart *u);
/* A byte arrives on the line. Returns false (and sets LSR.OE, losing the byte) if there is no room. */
bool uart_rx_push(uart *u, uint8_t byte);

/* Readable value of the IIR without its read side effect, for tests and logs. */
uint8_t uart_peek_iir(const uart *u);

#endif
