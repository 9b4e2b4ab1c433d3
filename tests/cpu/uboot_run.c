/*
 * plexus-cpu-uboot: boot Debian's U-Boot (qemu-riscv64, M-mode) on the hub's CPU in QEMU virt's map with an
 * in-process 16550 console, to see how far real firmware gets and how fast.
 *
 *   plexus-cpu-uboot <u-boot.bin> <virt.dtb> [seconds] [--wallclock] [--no-key] [--bare]
 *   (qemu-system-riscv64 -M virt,dumpdtb=virt.dtb -m 128M makes the device tree)
 *
 * When U-Boot offers to stop autoboot, a key is typed; at the prompt "version" is typed, then the run ends.
 * With --no-key nothing is typed: U-Boot counts down, tries its boot commands and waits at its prompt until
 * the time limit (wall seconds, default 60). Without --bare, what virt has but this run does not model (flash,
 * virtio-mmio, PCIe) reads as zeros (all-ones for PCIe config space) instead of faulting.
 * Prints the console, then instructions, MMIO accesses and their rates.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uboot_machine.h"

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s u-boot.bin virt.dtb [seconds] [--wallclock] [--no-key] [--bare]\n", argv[0]);
        return 1;
    }
    uboot_opts o = { .uboot_bin = argv[1], .dtb = argv[2], .limit_s = 60, .echo = true };
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--wallclock"))
            o.wallclock = true;
        else if (!strcmp(argv[i], "--no-key"))
            o.no_key = true;
        else if (!strcmp(argv[i], "--bare"))
            o.bare = true;
        else
            o.limit_s = atof(argv[i]);
    }
    static uboot_result r;
    if (uboot_boot(&o, &r) < 0) {
        fprintf(stderr, "%s\n", r.error);
        return 1;
    }
    const hub_cpu_stats *s = &r.stats;
    printf("\n---\nstatus %d%s%s, stage %d (3 = prompt answered)\n", r.status, r.error[0] ? ": " : "", r.error,
           r.stage);
    printf("wall %.2f s, virtual %.3f s, instructions %.3g (%.1f MIPS), traps %lu\n", r.wall_s, r.virtual_s,
           (double)s->instructions, (double)s->instructions / r.wall_s / 1e6, (unsigned long)s->traps);
    printf("mmio reads %lu (%.2f M/s), writes %lu, errors %lu, slices %lu, wfi waits %lu\n",
           (unsigned long)s->mmio_reads, (double)s->mmio_reads / r.wall_s / 1e6, (unsigned long)s->mmio_writes,
           (unsigned long)s->mmio_errors, (unsigned long)s->slices, (unsigned long)s->wfi_waits);
    return r.status == 0 ? 0 : 1;
}
