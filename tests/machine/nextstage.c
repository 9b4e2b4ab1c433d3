/*
 * What a kernel checks first: the hart id in a0, a device tree in a1 whose /chosen has the command line and
 * the initrd, and the initrd's bytes where /chosen says. Returns the word for the sifive,test0 device: 0x5555
 * when all is as the test arranged, else 0x3333 | code << 16, code naming the first check that failed.
 */
#include <stdint.h>

#define EXPECTED_ARGS "next-stage [args] ok"
#define EXPECTED_INITRD "plexus-initrd-16"      /* the test's initrd: these 16 bytes */

uint32_t nextstage_check(uint64_t hartid, const uint8_t *fdt);

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int same(const char *a, const char *b)
{
    while (*a && *a == *b)
        a++, b++;
    return *a == *b;
}

static uint64_t cells(const uint8_t *v, uint32_t len)
{
    return len == 8 ? (uint64_t)be32(v) << 32 | be32(v + 4) : be32(v);
}

static uint32_t fail(uint32_t code)
{
    return 0x3333 | code << 16;
}

uint32_t nextstage_check(uint64_t hartid, const uint8_t *fdt)
{
    if (hartid != 0)
        return fail(2);
    if (be32(fdt) != 0xd00dfeed)
        return fail(3);
    const uint8_t *p = fdt + be32(fdt + 8);
    const char *strings = (const char *)fdt + be32(fdt + 12);
    int depth = 0, in_chosen = 0, have_start = 0, have_end = 0;
    const char *args = 0;
    uint64_t start = 0, end = 0;
    for (;;) {
        uint32_t tok = be32(p);
        p += 4;
        if (tok == 1) {                         /* FDT_BEGIN_NODE: name, NUL, padding */
            const char *name = (const char *)p;
            depth++;
            in_chosen = depth == 2 && same(name, "chosen");
            while (*p)
                p++;
            p = (const uint8_t *)(((uintptr_t)p + 4) & ~(uintptr_t)3);
        } else if (tok == 2) {                  /* FDT_END_NODE */
            depth--;
            in_chosen = 0;
        } else if (tok == 3) {                  /* FDT_PROP: len, name offset, value, padding */
            uint32_t len = be32(p);
            const char *name = strings + be32(p + 4);
            const uint8_t *v = p + 8;
            if (in_chosen && same(name, "bootargs"))
                args = (const char *)v;
            if (in_chosen && same(name, "linux,initrd-start"))
                start = cells(v, len), have_start = 1;
            if (in_chosen && same(name, "linux,initrd-end"))
                end = cells(v, len), have_end = 1;
            p = v + ((len + 3) & ~3u);
        } else if (tok == 4) {                  /* FDT_NOP */
        } else {
            break;                              /* FDT_END, or garbage */
        }
    }
    if (!args || !same(args, EXPECTED_ARGS))
        return fail(4);
    if (!have_start || !have_end)
        return fail(5);
    if (end - start != 16)
        return fail(6);
    const char *rd = (const char *)(uintptr_t)start, *want = EXPECTED_INITRD;
    for (int i = 0; i < 16; i++)
        if (rd[i] != want[i])
            return fail(7);
    return 0x5555;
}
