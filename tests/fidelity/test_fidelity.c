/*
 * What the guest sees of a device in another process, through the real hub (build/bin/plexus), a real device
 * process (rtcdev.c, a goldfish-style RTC whose writes are posted) and firmware (fw/): the guest never observes
 * interrupt state older than a write it made before; every access carries the virtual time of its instruction.
 * Each case runs over the shared-memory ring and over ZeroMQ.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>

#include "../devices/run_capture.h"
#include "../machine/common.h"

static const char *const transports[] = { "ring", "zeromq" };

/* A machine: 16 MiB of RAM, @fw, and the device rtc0 (@device: the RTC at 0x10020000 on PLIC source 5 unless
 * given). */
static char *machine(const char *dir, const char *fw, const char *device)
{
    char *text, *path, *rtc = NULL;
    cr_assert(asprintf(&rtc, "    program: %s/bin/fidelity-rtc\n    base: 0x10020000\n    irq: 5\n",
                       getenv("PLEXUS_BUILD_DIR")) > 0);
    cr_assert(asprintf(&text,
                       "name: fidelity\n"
                       "ram:\n  - name: ram\n    base: 0x80000000\n    size: 16M\n"
                       "firmware:\n  - file: %s/%s.elf\n"
                       "cpu:\n  insns_per_ns: 0.1\n"
                       "devices:\n"
                       "  - name: rtc0\n%s",
                       FW_DIR, fw, device ? device : rtc) > 0);
    path = write_file(dir, "machine.yaml", text, strlen(text), 0644);
    free(text);
    free(rtc);
    return path;
}

/* Run @fw's machine (its device @device, NULL: the RTC) on @transport, and "--set" @set (or NULL) and @more. */
static void run_machine(const char *fw, const char *device, const char *transport, const char *set,
                        char *const more[], run_result *r)
{
    char *dir = tmpdir_new(), *yaml = machine(dir, fw, device), *bin, *tr;
    cr_assert(asprintf(&bin, "%s/bin/plexus", getenv("PLEXUS_BUILD_DIR")) > 0);
    cr_assert(asprintf(&tr, "devices.rtc0.transport=%s", transport) > 0);
    char *argv[16] = { bin, "run", yaml, "--stats", "--set", tr };
    unsigned n = 6;
    if (set) {
        argv[n++] = "--set";
        argv[n++] = (char *)set;
    }
    for (unsigned i = 0; more && more[i]; i++)
        argv[n++] = more[i];
    argv[n] = NULL;
    cr_assert_eq(run_capture(argv, NULL, NULL, 60000, r), 0);
    free(bin);
    free(tr);
    free(yaml);
    tmpdir_remove(dir);
}

static void run_fw(const char *fw, const char *transport, const char *set, char *const more[], run_result *r)
{
    run_machine(fw, NULL, transport, set, more, r);
}

/* A device that failed (its process died while answering a read) and is not restarted: the read is a load
 * access fault, later stores are store access faults (docs/protocol.md "Errors"); nothing reads all-ones. */
Test(fidelity, accesses_to_a_failed_device_are_access_faults)
{
    char *regdev;
    cr_assert(asprintf(&regdev,
                       "    program: %s/bin/hubdev-regdev\n"
                       "    regions:\n"
                       "      - { name: regs, base: 0x10020000 }\n"
                       "      - { name: posted, base: 0x10021000 }\n"
                       "      - { name: shadow, base: 0x10022000 }\n"
                       "      - { name: be, base: 0x10023000 }\n"
                       "    irqs: [5, 6]\n", getenv("PLEXUS_BUILD_DIR")) > 0);
    for (unsigned t = 0; t < 2; t++) {
        run_result r;
        run_machine("failed", regdev, transports[t], NULL, NULL, &r);
        cr_assert_eq(r.status, 0, "%s: check %d failed:\n%s", transports[t], r.status, r.out);
        cr_assert(strstr(r.out, "rtc0: error: device process was killed by signal 6"), "%s", r.out);
    }
    free(regdev);
}

/* A driver clears the device's interrupt with a posted write and completes it at the PLIC: the interrupt is not
 * taken again (it used to be: the clear was still in flight when the completion re-armed the source). */
Test(fidelity, clearing_then_completing_never_interrupts_again)
{
    for (unsigned t = 0; t < 2; t++) {
        run_result r;
        run_fw("clearcomplete", transports[t], NULL, NULL, &r);
        cr_assert_eq(r.status, 0, "%s: %d interrupts for 3 alarms (status %d):\n%s", transports[t], r.status,
                     r.status, r.out);
        cr_assert_gt(stat_value(r.out, "syncs "), 0, "%s: no sync counted:\n%s", transports[t], r.out);
    }
}

/* A posted write starts an operation, WFI waits for its completion with a timeout of the guest's own: the
 * device's interrupt wakes the hart at its virtual time (not a time jump to the timeout), whether idle time
 * jumps or follows the host's clock. */
Test(fidelity, wfi_after_a_posted_start_wakes_at_the_completion)
{
    static const char *const idle[] = { "cpu.idle=jump", "cpu.idle=sleep" };
    for (unsigned t = 0; t < 2; t++)
        for (unsigned i = 0; i < 2; i++) {
            run_result r;
            run_fw("wfistart", transports[t], idle[i], NULL, &r);
            cr_assert_eq(r.status, 0, "%s, %s: status %d (1 not the device's interrupt, 2 the timeout's too, "
                         "3 early, 4 late):\n%s", transports[t], idle[i], r.status, r.out);
        }
}

/* Polling: after a posted clear of the interrupt status and a shadow read that shows it cleared, the PLIC no
 * longer shows the source pending. */
Test(fidelity, a_shadow_read_after_a_posted_clear_sees_the_line_dropped)
{
    for (unsigned t = 0; t < 2; t++) {
        run_result r;
        run_fw("shadowclear", transports[t], NULL, NULL, &r);
        cr_assert_eq(r.status, 0, "%s: status %d (1 not pending, 2 status not cleared, 3 still pending):\n%s",
                     transports[t], r.status, r.out);
    }
}

/* The line is high; the guest clears it with a posted write: a read of mip right after shows MEIP clear, and
 * enabling interrupts right after takes none. */
Test(fidelity, mip_and_the_interrupt_check_after_a_posted_clear_see_the_line_dropped)
{
    for (unsigned t = 0; t < 2; t++) {
        run_result r;
        run_fw("irqcheck", transports[t], NULL, NULL, &r);
        cr_assert_eq(r.status, 0, "%s: status %d (1 MEIP not set while pending, 2 still set after the clear, "
                     "3 an interrupt was taken):\n%s", transports[t], r.status, r.out);
    }
}

/* Two back-to-back reads of the RTC return the instruction-count times of their instructions (10 and 20 ns);
 * the event log stamps them so; an alarm armed for 1000 ns after the first fires, and raises the line, at 1010. */
Test(fidelity, accesses_and_the_timers_armed_from_them_carry_exact_times)
{
    for (unsigned t = 0; t < 2; t++) {
        char path[] = "/tmp/plexus-fidelity-events-XXXXXX";
        int fd = mkstemp(path);
        cr_assert_geq(fd, 0);
        close(fd);
        char *more[] = { "--event-log", path, NULL };
        run_result r;
        run_fw("rtctime", transports[t], "cpu.idle=jump", more, &r);
        char *log = read_whole_file(path, NULL);
        cr_assert_not_null(log, "%s: no event log", transports[t]);
        unlink(path);
        cr_assert_eq(r.status, 0, "%s: status %d (1 first read not 10, 2 second not 20, 3 backwards):\n%s\n%s",
                     transports[t], r.status, r.out, log);
        cr_assert(strstr(log, "10 rtc0 read regs+0x0/4 = 0xa\n"), "%s: no read at 10 ns:\n%s", transports[t], log);
        cr_assert(strstr(log, "\n20 rtc0 read regs+0x0/4 = 0x14\n"), "%s: no read at 20 ns:\n%s", transports[t], log);
        cr_assert(strstr(log, "\n1010 rtc0 irq 0 1\n"), "%s: the alarm's line did not rise at 1010 ns:\n%s",
                  transports[t], log);
        /* every line's time is at or after the one before */
        uint64_t last = 0;
        for (const char *p = log; *p; p = strchr(p, '\n') + 1) {
            uint64_t v = strtoull(p, NULL, 10);
            cr_assert_geq(v, last, "%s: time goes back at: %.60s", transports[t], p);
            last = v;
            if (!strchr(p, '\n'))
                break;
        }
        free(log);
    }
}
