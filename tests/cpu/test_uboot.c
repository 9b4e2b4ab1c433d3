/* Debian's U-Boot on the hub's CPU: the firmware the machine is built for must reach its prompt. */
#include <criterion/criterion.h>
#include <string.h>
#include <unistd.h>

#include "uboot_machine.h"

static uboot_result R;

static void need_firmware(void)
{
    if (access(UBOOT_BIN, R_OK) != 0 || access(UBOOT_DTB, R_OK) != 0)
        cr_skip_test("needs %s and %s", UBOOT_BIN, UBOOT_DTB);
}

Test(uboot, reaches_the_prompt_and_answers_a_command)
{
    need_firmware();
    uboot_opts o = { .uboot_bin = UBOOT_BIN, .dtb = UBOOT_DTB, .limit_s = 60 };
    cr_assert_eq(uboot_boot(&o, &R), 0, "%s", R.error);
    cr_assert_eq(R.status, 0, "status %d %s; console:\n%s", R.status, R.error, R.out);
    cr_assert_eq(R.stage, 3, "console:\n%s", R.out);
    const char *v = strstr(R.out, "=> version");
    cr_assert_not_null(v, "console:\n%s", R.out);
    cr_assert_not_null(strstr(v, "\nU-Boot 20"), "console:\n%s", R.out);
    cr_assert_not_null(strstr(R.out, "DRAM:  128 MiB"));
    cr_assert_eq(R.stats.mmio_errors, 0);
}

Test(uboot, autoboot_countdown_takes_two_virtual_seconds)
{
    need_firmware();
    uboot_opts o = { .uboot_bin = UBOOT_BIN, .dtb = UBOOT_DTB, .limit_s = 100, .no_key = true,
                     .stop_at = "\b\b\b 0" };
    cr_assert_eq(uboot_boot(&o, &R), 0, "%s", R.error);
    cr_assert_eq(R.stage, 3, "console:\n%s", R.out);
    cr_assert_not_null(strstr(R.out, "autoboot:  2"), "console:\n%s", R.out);
    /* the countdown is timed with the CLINT's mtime: two seconds of virtual time, not of instructions */
    cr_assert_geq(R.virtual_s, 2.0, "countdown ended at %.3f s", R.virtual_s);
    cr_assert_lt(R.virtual_s, 3.0, "countdown ended at %.3f s", R.virtual_s);
}
