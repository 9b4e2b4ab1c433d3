/*
 * Linux boots to a shell on plexus: Debian 13's riscv64 kernel and a busybox initramfs (fetched once by
 * examples/linux/fetch.sh into BUILD/linux and kept there), examples/linux/machine.yaml, driven through a pty as
 * a person would: the /init marker appears, a command typed at the shell answers, and `poweroff` in the guest
 * ends plexus with status 0 (Linux -> SBI system reset -> OpenSBI -> the sifive,test0 device).
 *
 * Without Debian's archive the download fails: under CI (CI set in the environment) that is a failure naming
 * the cause, elsewhere the test is skipped with the same message.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <sys/stat.h>

#include "pty_session.h"

#define MARKER "plexus-linux: init ready"
#define BOOT_TIMEOUT_S 600.0
#define STEP_TIMEOUT_S 120.0

static bool nonempty(const char *dir, const char *name)
{
    char *p;
    struct stat st;
    cr_assert(asprintf(&p, "%s/%s", dir, name) > 0);
    bool ok = stat(p, &st) == 0 && st.st_size > 0;
    free(p);
    return ok;
}

/* The last @n bytes of @s, for messages. */
static const char *tail(const char *s, size_t len, size_t n)
{
    return len > n ? s + len - n : s;
}

/* BUILD/linux with Image and initramfs.cpio.gz, fetching them the first time. */
static char *guest_files(void)
{
    char *dir, *log, *cmd;
    cr_assert(asprintf(&dir, "%s/linux", getenv("PLEXUS_BUILD_DIR")) > 0);
    if (nonempty(dir, "Image") && nonempty(dir, "initramfs.cpio.gz") && nonempty(dir, "versions"))
        return dir;
    cr_assert(asprintf(&log, "%s/linux-fetch.log", getenv("PLEXUS_BUILD_DIR")) > 0);
    cr_assert(asprintf(&cmd, "'%s/examples/linux/fetch.sh' '%s' > '%s' 2>&1", getenv("PLEXUS_SOURCE_DIR"), dir,
                       log) > 0);
    int st = system(cmd);
    if (st != 0) {
        char text[4096] = "";
        FILE *f = fopen(log, "r");
        size_t n = f ? fread(text, 1, sizeof(text) - 1, f) : 0;
        text[n] = 0;
        if (f)
            fclose(f);
        if (getenv("CI") && *getenv("CI"))
            cr_assert_fail("cannot fetch Debian's riscv64 kernel and busybox (examples/linux/fetch.sh exit %d); "
                           "this test needs Debian's archive:\n%s", WEXITSTATUS(st), text);
        cr_skip_test("cannot fetch Debian's riscv64 kernel and busybox (no Debian archive?):\n%s", text);
    }
    free(cmd);
    free(log);
    return dir;
}

Test(linux_boot, boots_to_a_shell_runs_a_typed_command_and_powers_off)
{
    char *dir = guest_files(), *plexus, *yaml, *kernel, *initrd;
    cr_assert(asprintf(&plexus, "%s/bin/plexus", getenv("PLEXUS_BUILD_DIR")) > 0);
    cr_assert(asprintf(&yaml, "%s/examples/linux/machine.yaml", getenv("PLEXUS_SOURCE_DIR")) > 0);
    cr_assert(asprintf(&kernel, "%s/Image", dir) > 0);
    cr_assert(asprintf(&initrd, "%s/initramfs.cpio.gz", dir) > 0);
    char *argv[] = { plexus, "run", yaml, "--kernel", kernel, "--initrd", initrd, NULL };
    pty_session s;
    cr_assert_eq(pty_start(&s, argv), 0);
    double t0 = pty_now_s();

    long at = pty_expect(&s, 0, MARKER, t0 + BOOT_TIMEOUT_S);
    cr_assert_geq(at, 0, "no '%s' within %.0f s (%s); output ends:\n%s", MARKER, BOOT_TIMEOUT_S,
                  at == -ETIMEDOUT ? "timed out" : "plexus closed the terminal", tail(s.buf, s.len, 3000));
    fprintf(stderr, "linux: /init marker after %.1f s\n", pty_now_s() - t0);
    at = pty_expect(&s, (size_t)at, "# ", pty_now_s() + STEP_TIMEOUT_S);
    cr_assert_geq(at, 0, "no shell prompt after the marker; output ends:\n%s", tail(s.buf, s.len, 3000));

    /* the answer differs from the typed text, so the echo of what was typed cannot pass for it */
    size_t mark = s.len;
    cr_assert_eq(pty_type(&s, "echo typed-$((6*7))-$(uname -m)\n"), 0);
    at = pty_expect(&s, mark, "typed-42-riscv64", pty_now_s() + STEP_TIMEOUT_S);
    cr_assert_geq(at, 0, "the typed command did not answer; output ends:\n%s", tail(s.buf, s.len, 3000));

    mark = s.len;
    cr_assert_eq(pty_type(&s, "poweroff\n"), 0);
    at = pty_expect(&s, mark, "reboot: Power down", pty_now_s() + STEP_TIMEOUT_S);
    int st = pty_finish(&s, STEP_TIMEOUT_S);
    cr_expect_geq(at, 0, "the kernel did not power down; output ends:\n%s", tail(s.buf, s.len, 3000));
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "plexus ended with %s %d after poweroff; output ends:\n%s",
              WIFEXITED(st) ? "status" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st),
              tail(s.buf, s.len, 3000));
    fprintf(stderr, "linux: whole run %.1f s\n", pty_now_s() - t0);
    pty_free(&s);
    free(initrd);
    free(kernel);
    free(yaml);
    free(plexus);
    free(dir);
}
