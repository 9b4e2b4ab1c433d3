/*
 * Prints LINES numbered lines through the ns16550a at 0x10000000, slowly, each showing registers it programmed
 * once at the start (LCR, SCR, and IIR's FIFO bits from FCR) as the UART reports them now. The restart test
 * kills the UART process while this runs: the output must still be complete and show the same registers.
 */
#define UART ((volatile unsigned char *)0x10000000UL)
#define LINES 60
#define DELAY 300000

static void put(char c)
{
    while (!(UART[5] & 0x20))
        ;
    UART[0] = (unsigned char)c;
}

static void hex2(unsigned v)
{
    static const char digits[] = "0123456789abcdef";
    put(digits[(v >> 4) & 15]);
    put(digits[v & 15]);
}

static void text(const char *s)
{
    while (*s)
        put(*s++);
}

int main(void);
int main(void)
{
    UART[3] = 0x80;     /* DLAB: divisor 1 */
    UART[0] = 1;
    UART[1] = 0;
    UART[3] = 0x03;     /* 8N1 */
    UART[2] = 0x07;     /* FIFO on, both cleared */
    UART[1] = 0x00;
    UART[7] = 0x5a;     /* scratch */
    for (unsigned i = 0; i < LINES; i++) {
        unsigned lcr = UART[3], scr = UART[7], iir = UART[2];
        text("line ");
        put((char)('0' + i / 100));
        put((char)('0' + i / 10 % 10));
        put((char)('0' + i % 10));
        text(" lcr=");
        hex2(lcr);
        text(" scr=");
        hex2(scr);
        text(" iir=");
        hex2(iir);
        put('\n');
        for (volatile unsigned long k = 0; k < DELAY; k++)
            ;
    }
    return 0x5555;
}
