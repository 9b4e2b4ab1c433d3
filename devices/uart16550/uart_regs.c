/* ns16550a register logic; see uart_regs.h and README.md for the behaviour. */
#include "uart_regs.h"

#include <string.h>

#define LSR_ERRORS (UART_LSR_OE | UART_LSR_PE | UART_LSR_FE | UART_LSR_BI)

static const unsigned shadowed[] = { UART_LCR, UART_MCR, UART_LSR, UART_SCR };

static bool fifo_on(const uart *u) { return u->fcr & UART_FCR_ENABLE; }
static bool loopback(const uart *u) { return u->mcr & UART_MCR_LOOP; }

static unsigned rx_capacity(const uart *u) { return fifo_on(u) ? UART_FIFO_SIZE : 1; }

static unsigned rx_trigger(const uart *u)
{
    static const unsigned levels[4] = { 1, 4, 8, 14 };

    return fifo_on(u) ? levels[u->fcr >> 6] : 1;
}

static void rx_clear(uart *u)
{
    u->rx_head = 0;
    u->rx_count = 0;
    u->lsr &= ~UART_LSR_DR;
}

/* Into the receive FIFO, from the line or from the transmitter in loopback mode. */
static bool rx_enqueue(uart *u, uint8_t byte)
{
    if (u->rx_count >= rx_capacity(u)) {
        u->lsr |= UART_LSR_OE;
        return false;
    }
    u->rx[(u->rx_head + u->rx_count) % UART_FIFO_SIZE] = byte;
    u->rx_count++;
    u->lsr |= UART_LSR_DR;
    return true;
}

static uint8_t rx_dequeue(uart *u)
{
    uint8_t byte;

    if (!u->rx_count)
        return 0;
    byte = u->rx[u->rx_head];
    u->rx_head = (u->rx_head + 1) % UART_FIFO_SIZE;
    if (!--u->rx_count)
        u->lsr &= ~UART_LSR_DR;
    return byte;
}

/* The modem inputs: looped back from MCR in loopback mode, otherwise a modem that is always ready. */
static uint8_t modem_inputs(const uart *u)
{
    uint8_t v = 0;

    if (!loopback(u))
        return UART_MSR_CTS | UART_MSR_DSR | UART_MSR_DCD;
    if (u->mcr & UART_MCR_RTS)
        v |= UART_MSR_CTS;
    if (u->mcr & UART_MCR_DTR)
        v |= UART_MSR_DSR;
    if (u->mcr & UART_MCR_OUT1)
        v |= UART_MSR_RI;
    if (u->mcr & UART_MCR_OUT2)
        v |= UART_MSR_DCD;
    return v;
}

static void update_msr(uart *u)
{
    uint8_t now = modem_inputs(u), before = u->msr & 0xf0, delta = 0;

    if ((now ^ before) & UART_MSR_CTS)
        delta |= UART_MSR_DCTS;
    if ((now ^ before) & UART_MSR_DSR)
        delta |= UART_MSR_DDSR;
    if ((before & UART_MSR_RI) && !(now & UART_MSR_RI))
        delta |= UART_MSR_TERI;
    if ((now ^ before) & UART_MSR_DCD)
        delta |= UART_MSR_DDCD;
    u->msr = now | (u->msr & 0x0f) | delta;
}

uint8_t
uart_peek_iir(const uart *u)
{
    uint8_t id = UART_IIR_NO_INT;

    if ((u->ier & UART_IER_ELSI) && (u->lsr & LSR_ERRORS))
        id = UART_IIR_RLSI;
    else if ((u->ier & UART_IER_ERBFI) && u->rx_count >= rx_trigger(u))
        id = UART_IIR_RDI;
    else if ((u->ier & UART_IER_ERBFI) && u->rx_count)
        id = UART_IIR_CTI;          /* below the trigger level: the character timeout, with no wait */
    else if ((u->ier & UART_IER_ETBEI) && u->thre_pending)
        id = UART_IIR_THRI;
    else if ((u->ier & UART_IER_EDSSI) && (u->msr & 0x0f))
        id = UART_IIR_MSI;
    return id | (fifo_on(u) ? UART_IIR_FIFO_ON : 0);
}

unsigned
uart_rx_room(const uart *u)
{
    if (loopback(u))
        return 0;   /* the line is disconnected from the receiver */
    return rx_capacity(u) - u->rx_count;
}

/* After every change: interrupt level, shadowed registers, and room for more input. */
static void settle(uart *u, unsigned room_before)
{
    int level = !(uart_peek_iir(u) & UART_IIR_NO_INT);
    const uint8_t value[UART_NREGS] = {
        [UART_LCR] = u->lcr, [UART_MCR] = u->mcr, [UART_LSR] = u->lsr, [UART_SCR] = u->scr,
    };

    for (unsigned i = 0; i < sizeof(shadowed) / sizeof(shadowed[0]); i++) {
        unsigned off = shadowed[i];

        if (!u->shadow_valid || u->shadow[off] != value[off]) {
            u->shadow[off] = value[off];
            if (u->hooks->shadow)
                u->hooks->shadow(u->opaque, off, value[off]);
        }
    }
    u->shadow_valid = true;
    if (level != u->irq_level) {
        u->irq_level = level;
        if (u->hooks->irq)
            u->hooks->irq(u->opaque, level);
    }
    if (!room_before && uart_rx_room(u) && u->hooks->rx_room)
        u->hooks->rx_room(u->opaque);
}

void
uart_init(uart *u, const uart_hooks *hooks, void *opaque)
{
    memset(u, 0, sizeof(*u));
    u->hooks = hooks;
    u->opaque = opaque;
    u->irq_level = -1;
}

void
uart_reset(uart *u)
{
    unsigned room_before = uart_rx_room(u);

    rx_clear(u);
    u->ier = 0;
    u->lcr = 0;
    u->mcr = 0;
    u->fcr = 0;
    u->scr = 0;
    u->divisor = 0;
    u->lsr = UART_LSR_THRE | UART_LSR_TEMT;
    u->msr = modem_inputs(u);
    u->thre_pending = false;
    u->shadow_valid = false;
    u->irq_level = -1;
    settle(u, room_before);
}

void
uart_resume(uart *u, const uart_hooks *hooks, void *opaque)
{
    u->hooks = hooks;
    u->opaque = opaque;
    u->shadow_valid = false;
    u->irq_level = -1;
    settle(u, uart_rx_room(u));
}

static void transmit(uart *u, uint8_t byte)
{
    if (loopback(u))
        rx_enqueue(u, byte);
    else if (u->hooks->tx)
        u->hooks->tx(u->opaque, byte);
    /* Writing THR clears the THR-empty condition; the byte leaves at once, so THR is empty again. */
    u->thre_pending = true;
}

static void write_fcr(uart *u, uint8_t value)
{
    if ((value ^ u->fcr) & UART_FCR_ENABLE)
        rx_clear(u);        /* switching FIFO mode resets both FIFOs */
    if (value & UART_FCR_CLEAR_RX)
        rx_clear(u);
    /* The transmit FIFO is always empty: UART_FCR_CLEAR_TX has nothing to do. */
    u->fcr = value & (UART_FCR_ENABLE | 0x08 | UART_FCR_TRIGGER);
}

void
uart_write(uart *u, unsigned reg, uint8_t value)
{
    unsigned room_before = uart_rx_room(u);
    bool dlab = u->lcr & UART_LCR_DLAB;

    switch (reg) {
    case UART_THR:
        if (dlab)
            u->divisor = (u->divisor & 0xff00) | value;
        else
            transmit(u, value);
        break;
    case UART_IER:
        if (dlab) {
            u->divisor = (uint16_t)((u->divisor & 0x00ff) | (value << 8));
        } else {
            value &= 0x0f;
            if ((value & UART_IER_ETBEI) && !(u->ier & UART_IER_ETBEI))
                u->thre_pending = true;     /* enabling it while THR is empty raises it */
            u->ier = value;
        }
        break;
    case UART_FCR:
        write_fcr(u, value);
        break;
    case UART_LCR:
        u->lcr = value;
        break;
    case UART_MCR:
        u->mcr = value & 0x1f;
        update_msr(u);
        break;
    case UART_SCR:
        u->scr = value;
        break;
    default:
        break;      /* LSR and MSR are read-only; offsets past 7 are reserved */
    }
    settle(u, room_before);
}

uint8_t
uart_read(uart *u, unsigned reg)
{
    unsigned room_before = uart_rx_room(u);
    bool dlab = u->lcr & UART_LCR_DLAB;
    uint8_t v = 0;

    switch (reg) {
    case UART_RBR:
        if (dlab) {
            v = u->divisor & 0xff;
        } else {
            v = rx_dequeue(u);
            u->lsr &= ~LSR_ERRORS;
        }
        break;
    case UART_IER:
        v = dlab ? u->divisor >> 8 : u->ier;
        break;
    case UART_IIR:
        v = uart_peek_iir(u);
        if ((v & 0x0f) == UART_IIR_THRI)
            u->thre_pending = false;
        else if ((v & 0x0f) == UART_IIR_RLSI)
            u->lsr &= ~LSR_ERRORS;
        break;
    case UART_LCR:
        v = u->lcr;
        break;
    case UART_MCR:
        v = u->mcr;
        break;
    case UART_LSR:
        v = u->lsr;
        break;
    case UART_MSR:
        v = u->msr;
        u->msr &= 0xf0;
        break;
    case UART_SCR:
        v = u->scr;
        break;
    default:
        break;
    }
    settle(u, room_before);
    return v;
}

bool
uart_rx_push(uart *u, uint8_t byte)
{
    unsigned room_before = uart_rx_room(u);
    bool ok;

    if (loopback(u))
        return false;
    ok = rx_enqueue(u, byte);
    settle(u, room_before);
    return ok;
}
