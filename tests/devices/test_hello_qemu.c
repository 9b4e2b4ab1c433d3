/*
 * The hello firmware against the reference machine: QEMU's riscv virt board runs hello-qemu.elf (the build
 * without the DMA engine) and must print every check and power off with status 0. This pins down that the
 * firmware itself drives the UART, CLINT, PLIC and poweroff device correctly, independently of plexus.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>

#include "run_capture.h"

static const char *const expected[] = {
    "hello: plexus hello firmware\n",
    "hello: uart scratch register ok\n",
    "hello: uart loopback ok\n",
    "hello: timer interrupt ok",
    "hello: uart THR-empty interrupt through the PLIC ok\n",
    "hello: dma checks skipped (built without the DMA engine)\n",
    "hello: all checks passed\n",
};

Test(hello_qemu, passes_every_check_and_powers_off_with_zero)
{
    char elf[4096];
    run_result *r = malloc(sizeof(*r));
    const char *build = getenv("PLEXUS_BUILD_DIR");

    cr_assert_not_null(build, "PLEXUS_BUILD_DIR is not set");
    snprintf(elf, sizeof(elf), "%s/examples/hello/hello-qemu.elf", build);
    cr_assert_eq(access(elf, R_OK), 0, "%s is missing", elf);

    char *argv[] = { "qemu-system-riscv64", "-M", "virt", "-nographic", "-bios", "none", "-kernel", elf, NULL };
    cr_assert_eq(run_capture(argv, NULL, NULL, 60000, r), 0);
    cr_assert_eq(r->status, 0, "qemu exit status %d, output:\n%s", r->status, r->out);
    const char *at = r->out;
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
        const char *hit = strstr(at, expected[i]);

        cr_assert_not_null(hit, "missing (in order) \"%s\" in:\n%s", expected[i], r->out);
        at = hit + strlen(expected[i]);
    }
    cr_assert_null(strstr(r->out, "FAIL"), "%s", r->out);
    free(r);
}

Test(hello_qemu, full_firmware_reports_the_missing_dma_engine)
{
    char elf[4096];
    run_result *r = malloc(sizeof(*r));

    snprintf(elf, sizeof(elf), "%s/examples/hello/hello.elf", getenv("PLEXUS_BUILD_DIR"));
    char *argv[] = { "qemu-system-riscv64", "-M", "virt", "-nographic", "-bios", "none", "-kernel", elf, NULL };
    cr_assert_eq(run_capture(argv, NULL, NULL, 60000, r), 0);
    /* QEMU has nothing at 0x10010000: the first DMA access faults and the trap handler reports it. */
    cr_assert_eq(r->status, 2, "exit status %d, output:\n%s", r->status, r->out);
    cr_assert_not_null(strstr(r->out, "hello: FAIL: unexpected trap mcause=0x5"), "%s", r->out);
    cr_assert_not_null(strstr(r->out, "mtval=0x10010000"), "%s", r->out);
    cr_assert_null(strstr(r->out, "all checks passed"), "%s", r->out);
    free(r);
}
