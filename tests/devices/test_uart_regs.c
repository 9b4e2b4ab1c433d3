/* The 16550 register logic on its own: every guest-visible behaviour, observed through the hooks. */
#include <criterion/criterion.h>
#include <string.h>

#include "uart_regs.h"

static struct probe {
    uint8_t tx[256];
    unsigned n_tx;
    int irq;
    unsigned irq_changes;
    uint8_t shadow[UART_NREGS];
    unsigned shadow_stores;
    unsigned rx_room_calls;
} p;

static void on_tx(void *o, uint8_t b) { p.tx[p.n_tx++ % sizeof(p.tx)] = b; }
static void on_irq(void *o, int level) { p.irq = level; p.irq_changes++; }
static void on_shadow(void *o, unsigned off, uint8_t v) { p.shadow[off] = v; p.shadow_stores++; }
static void on_rx_room(void *o) { p.rx_room_calls++; }

static const uart_hooks hooks = { .tx = on_tx, .irq = on_irq, .shadow = on_shadow, .rx_room = on_rx_room };
static uart u;

static void setup(void)
{
    memset(&p, 0, sizeof(p));
    p.irq = -1;
    uart_init(&u, &hooks, NULL);
    uart_reset(&u);
}

TestSuite(uart_regs, .init = setup);

Test(uart_regs, reset_state_reported_through_hooks)
{
    cr_assert_eq(p.irq, 0);
    cr_assert_eq(p.shadow[UART_LSR], UART_LSR_THRE | UART_LSR_TEMT);
    cr_assert_eq(p.shadow[UART_LCR], 0);
    cr_assert_eq(p.shadow_stores, 4, "LCR, MCR, LSR and SCR are pushed once at reset");
    cr_assert_eq(uart_read(&u, UART_IIR), UART_IIR_NO_INT);
    cr_assert_eq(uart_read(&u, UART_MSR), UART_MSR_CTS | UART_MSR_DSR | UART_MSR_DCD);
}

Test(uart_regs, thr_write_transmits)
{
    uart_write(&u, UART_THR, 'h');
    uart_write(&u, UART_THR, 'i');
    cr_assert_eq(p.n_tx, 2);
    cr_assert_eq(p.tx[0], 'h');
    cr_assert_eq(p.tx[1], 'i');
    cr_assert_eq(uart_read(&u, UART_LSR) & (UART_LSR_THRE | UART_LSR_TEMT), UART_LSR_THRE | UART_LSR_TEMT);
}

Test(uart_regs, dlab_selects_divisor_latch)
{
    uart_write(&u, UART_LCR, UART_LCR_DLAB | 0x03);
    uart_write(&u, UART_DLL, 0x34);
    uart_write(&u, UART_DLM, 0x12);
    cr_assert_eq(p.n_tx, 0, "a DLL write must not transmit");
    cr_assert_eq(uart_read(&u, UART_DLL), 0x34);
    cr_assert_eq(uart_read(&u, UART_DLM), 0x12);
    cr_assert_eq(p.shadow[UART_LCR], UART_LCR_DLAB | 0x03);
    uart_write(&u, UART_LCR, 0x03);
    cr_assert_eq(uart_read(&u, UART_IER), 0, "IER untouched by DLM writes");
    uart_write(&u, UART_IER, 0xff);
    cr_assert_eq(uart_read(&u, UART_IER), 0x0f, "IER bits 4-7 read as zero");
}

Test(uart_regs, rx_sets_dr_and_rbr_pops_in_order)
{
    cr_assert(uart_rx_push(&u, 'a'));
    cr_assert_eq(p.shadow[UART_LSR] & UART_LSR_DR, UART_LSR_DR);
    cr_assert_eq(uart_rx_room(&u), 0, "non-FIFO mode holds one byte");
    uart_write(&u, UART_FCR, UART_FCR_ENABLE);
    cr_assert_eq(p.shadow[UART_LSR] & UART_LSR_DR, 0, "enabling the FIFO resets it");
    cr_assert_eq(uart_rx_room(&u), UART_FIFO_SIZE);
    for (int i = 0; i < 3; i++)
        cr_assert(uart_rx_push(&u, (uint8_t)('x' + i)));
    cr_assert_eq(uart_read(&u, UART_RBR), 'x');
    cr_assert_eq(uart_read(&u, UART_RBR), 'y');
    cr_assert_eq(p.shadow[UART_LSR] & UART_LSR_DR, UART_LSR_DR);
    cr_assert_eq(uart_read(&u, UART_RBR), 'z');
    cr_assert_eq(p.shadow[UART_LSR] & UART_LSR_DR, 0);
}

Test(uart_regs, full_fifo_reports_room_when_drained)
{
    uart_write(&u, UART_FCR, UART_FCR_ENABLE);
    for (int i = 0; i < UART_FIFO_SIZE; i++)
        cr_assert(uart_rx_push(&u, (uint8_t)i));
    cr_assert_eq(uart_rx_room(&u), 0);
    cr_assert_eq(p.rx_room_calls, 0);
    cr_assert_eq(uart_read(&u, UART_RBR), 0);
    cr_assert_eq(p.rx_room_calls, 1);
    cr_assert_eq(uart_rx_room(&u), 1);
}

Test(uart_regs, overrun_sets_oe_and_rls_interrupt)
{
    uart_write(&u, UART_IER, UART_IER_ELSI);
    cr_assert(uart_rx_push(&u, '1'));
    cr_assert_not(uart_rx_push(&u, '2'));
    cr_assert_eq(p.shadow[UART_LSR] & UART_LSR_OE, UART_LSR_OE);
    cr_assert_eq(p.irq, 1);
    cr_assert_eq(uart_read(&u, UART_IIR), UART_IIR_RLSI);
    cr_assert_eq(p.shadow[UART_LSR] & UART_LSR_OE, 0, "an IIR read reporting RLS clears the error bits");
    cr_assert_eq(p.irq, 0);
    cr_assert_eq(uart_read(&u, UART_RBR), '1', "the byte that was in the holding register survives");
}

Test(uart_regs, rda_interrupt_at_trigger_level_timeout_below)
{
    uart_write(&u, UART_FCR, UART_FCR_ENABLE | 0x40);   /* trigger level 4 */
    uart_write(&u, UART_IER, UART_IER_ERBFI);
    cr_assert_eq(p.irq, 0);
    uart_rx_push(&u, 'a');
    cr_assert_eq(p.irq, 1);
    cr_assert_eq(uart_read(&u, UART_IIR), UART_IIR_FIFO_ON | UART_IIR_CTI);
    for (int i = 0; i < 3; i++)
        uart_rx_push(&u, 'b');
    cr_assert_eq(uart_read(&u, UART_IIR), UART_IIR_FIFO_ON | UART_IIR_RDI);
    for (int i = 0; i < 4; i++)
        uart_read(&u, UART_RBR);
    cr_assert_eq(p.irq, 0);
    cr_assert_eq(uart_read(&u, UART_IIR), UART_IIR_FIFO_ON | UART_IIR_NO_INT);
}

Test(uart_regs, thre_interrupt_on_enable_cleared_by_iir_read)
{
    uart_write(&u, UART_IER, UART_IER_ETBEI);
    cr_assert_eq(p.irq, 1, "enabling ETBEI while THR is empty raises the interrupt");
    cr_assert_eq(uart_read(&u, UART_IIR), UART_IIR_THRI);
    cr_assert_eq(p.irq, 0, "reading IIR while THRE is the source clears it");
    cr_assert_eq(uart_read(&u, UART_IIR), UART_IIR_NO_INT);
    uart_write(&u, UART_THR, '!');
    cr_assert_eq(p.irq, 1, "THR empties again after the write: THRE is pending again");
    uart_write(&u, UART_IER, 0);
    cr_assert_eq(p.irq, 0);
    uart_write(&u, UART_IER, UART_IER_ETBEI);
    cr_assert_eq(p.irq, 1);
}

Test(uart_regs, rewriting_etbei_does_not_rearm)
{
    uart_write(&u, UART_IER, UART_IER_ETBEI);
    uart_read(&u, UART_IIR);
    cr_assert_eq(p.irq, 0);
    uart_write(&u, UART_IER, UART_IER_ETBEI | UART_IER_ERBFI);
    cr_assert_eq(p.irq, 0, "only a 0->1 change of ETBEI raises THRE");
}

Test(uart_regs, priorities_rls_over_rda_over_thre)
{
    uart_write(&u, UART_IER, UART_IER_ERBFI | UART_IER_ETBEI | UART_IER_ELSI);
    uart_rx_push(&u, 'a');
    uart_rx_push(&u, 'b');      /* overrun in non-FIFO mode */
    cr_assert_eq(uart_peek_iir(&u), UART_IIR_RLSI);
    uart_read(&u, UART_IIR);
    cr_assert_eq(uart_peek_iir(&u), UART_IIR_RDI);
    uart_read(&u, UART_RBR);
    cr_assert_eq(uart_peek_iir(&u), UART_IIR_THRI);
    uart_read(&u, UART_IIR);
    cr_assert_eq(uart_peek_iir(&u), UART_IIR_NO_INT);
    cr_assert_eq(p.irq, 0);
}

Test(uart_regs, loopback_routes_tx_to_rx_and_modem_lines)
{
    uart_write(&u, UART_FCR, UART_FCR_ENABLE);
    uart_write(&u, UART_MCR, UART_MCR_LOOP);
    cr_assert_eq(uart_rx_room(&u), 0, "the line is disconnected in loopback");
    cr_assert_not(uart_rx_push(&u, 'z'));
    uart_write(&u, UART_THR, 'L');
    cr_assert_eq(p.n_tx, 0, "nothing leaves in loopback");
    cr_assert_eq(p.shadow[UART_LSR] & UART_LSR_DR, UART_LSR_DR);
    cr_assert_eq(uart_read(&u, UART_RBR), 'L');

    uint8_t msr = uart_read(&u, UART_MSR);
    cr_assert_eq(msr & 0xf0, 0, "all inputs low with MCR outputs low");
    cr_assert_eq(msr & 0x0f, UART_MSR_DCTS | UART_MSR_DDSR | UART_MSR_DDCD);
    cr_assert_eq(uart_read(&u, UART_MSR) & 0x0f, 0, "reading MSR clears the deltas");

    uart_write(&u, UART_MCR, UART_MCR_LOOP | UART_MCR_RTS | UART_MCR_DTR | UART_MCR_OUT1 | UART_MCR_OUT2);
    msr = uart_read(&u, UART_MSR);
    cr_assert_eq(msr & 0xf0, UART_MSR_CTS | UART_MSR_DSR | UART_MSR_RI | UART_MSR_DCD);
    uart_write(&u, UART_MCR, UART_MCR_LOOP | UART_MCR_RTS | UART_MCR_DTR | UART_MCR_OUT2);
    cr_assert_eq(uart_read(&u, UART_MSR) & 0x0f, UART_MSR_TERI, "RI trailing edge");

    unsigned calls = p.rx_room_calls;
    uart_write(&u, UART_MCR, 0);
    cr_assert_eq(p.rx_room_calls, calls + 1, "leaving loopback reconnects the line");
    cr_assert_eq(uart_rx_room(&u), UART_FIFO_SIZE);
}

Test(uart_regs, modem_status_interrupt)
{
    uart_write(&u, UART_IER, UART_IER_EDSSI);
    cr_assert_eq(p.irq, 0);
    uart_write(&u, UART_MCR, UART_MCR_LOOP);
    cr_assert_eq(p.irq, 1);
    cr_assert_eq(uart_read(&u, UART_IIR), UART_IIR_MSI);
    cr_assert_eq(p.irq, 1, "IIR does not clear modem status");
    uart_read(&u, UART_MSR);
    cr_assert_eq(p.irq, 0);
}

Test(uart_regs, loopback_overrun)
{
    uart_write(&u, UART_MCR, UART_MCR_LOOP);
    uart_write(&u, UART_THR, '1');
    uart_write(&u, UART_THR, '2');
    cr_assert_eq(p.shadow[UART_LSR] & (UART_LSR_OE | UART_LSR_DR), UART_LSR_OE | UART_LSR_DR);
    cr_assert_eq(uart_read(&u, UART_RBR), '1');
    cr_assert_eq(p.shadow[UART_LSR] & UART_LSR_OE, 0, "reading RBR clears the error bits");
}

Test(uart_regs, scratch_and_shadow_only_on_change)
{
    unsigned stores = p.shadow_stores;

    uart_write(&u, UART_SCR, 0xa5);
    cr_assert_eq(p.shadow[UART_SCR], 0xa5);
    cr_assert_eq(uart_read(&u, UART_SCR), 0xa5);
    cr_assert_eq(p.shadow_stores, stores + 1);
    uart_write(&u, UART_SCR, 0xa5);
    uart_read(&u, UART_LSR);
    cr_assert_eq(p.shadow_stores, stores + 1, "unchanged registers are not stored again");
}

Test(uart_regs, fcr_clear_rx_and_reserved_offsets)
{
    uart_write(&u, UART_FCR, UART_FCR_ENABLE);
    uart_rx_push(&u, 'q');
    uart_write(&u, UART_FCR, UART_FCR_ENABLE | UART_FCR_CLEAR_RX);
    cr_assert_eq(p.shadow[UART_LSR] & UART_LSR_DR, 0);
    cr_assert_eq(uart_read(&u, UART_IIR) & UART_IIR_FIFO_ON, UART_IIR_FIFO_ON);
    uart_write(&u, 0x40, 0xff);
    cr_assert_eq(uart_read(&u, 0x40), 0);
    uart_write(&u, UART_LSR, 0);
    cr_assert_eq(uart_read(&u, UART_LSR), UART_LSR_THRE | UART_LSR_TEMT, "LSR ignores writes");
}

Test(uart_regs, reset_drops_state_and_lowers_irq)
{
    uart_write(&u, UART_IER, UART_IER_ETBEI);
    uart_write(&u, UART_SCR, 7);
    cr_assert_eq(p.irq, 1);
    uart_reset(&u);
    cr_assert_eq(p.irq, 0);
    cr_assert_eq(p.shadow[UART_SCR], 0);
    cr_assert_eq(uart_read(&u, UART_IER), 0);
}

/* Random guest accesses and line input (fixed seed): after every step the interrupt line, the shadowed
 * registers and LSR.DR must agree with the model's state. */
Test(uart_regs, invariants_hold_under_random_accesses)
{
    unsigned seed = 12345;

    for (int step = 0; step < 200000; step++) {
        unsigned r = rand_r(&seed), reg = r % 8, kind = (r >> 3) % 4;
        uint8_t val = (uint8_t)(r >> 8);

        if (reg == UART_MCR)
            val &= 0x0f | (((r >> 16) % 8 == 0) ? UART_MCR_LOOP : 0);   /* mostly out of loopback */
        if (kind == 0)
            uart_write(&u, reg, val);
        else if (kind == 1)
            uart_read(&u, reg);
        else if (uart_rx_room(&u))
            uart_rx_push(&u, val);

        uint8_t iir = uart_peek_iir(&u);
        cr_assert_eq(p.irq, !(iir & UART_IIR_NO_INT), "step %d: irq %d but IIR 0x%02x", step, p.irq, iir);
        cr_assert_eq(p.shadow[UART_LSR], u.lsr, "step %d", step);
        cr_assert_eq(p.shadow[UART_LCR], u.lcr, "step %d", step);
        cr_assert_eq(p.shadow[UART_MCR], u.mcr, "step %d", step);
        cr_assert_eq(p.shadow[UART_SCR], u.scr, "step %d", step);
        cr_assert_eq(!!(u.lsr & UART_LSR_DR), u.rx_count > 0, "step %d", step);
        cr_assert_leq(u.rx_count, (u.fcr & UART_FCR_ENABLE) ? UART_FIFO_SIZE : 1u, "step %d", step);
        cr_assert_eq(u.lsr & (UART_LSR_THRE | UART_LSR_TEMT), UART_LSR_THRE | UART_LSR_TEMT);
    }
}
