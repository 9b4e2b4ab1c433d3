/*
 * Debian's U-Boot (qemu-riscv64, M-mode) on the hub's CPU in QEMU virt's map, with an in-process 16550
 * console: used by the plexus-cpu-uboot program and by the U-Boot test.
 */
#ifndef PLEXUS_TESTS_CPU_UBOOT_MACHINE_H
#define PLEXUS_TESTS_CPU_UBOOT_MACHINE_H

#include <stdbool.h>

#include "cpu.h"

typedef struct uboot_opts {
    const char *uboot_bin, *dtb;
    double limit_s;         /* wall-clock limit */
    bool wallclock;         /* virtual time follows the host clock */
    bool no_key;            /* do not stop autoboot: U-Boot counts down and runs its boot commands */
    bool bare;              /* do not back flash, virtio-mmio and PCIe with zeros/all-ones */
    bool echo;              /* copy the console to stdout */
    const char *stop_at;    /* end the run when the console shows this (NULL: after answering `version`) */
} uboot_opts;

typedef struct uboot_result {
    int status;             /* hub_cpu_run's result */
    int stage;              /* 0 booting, 1 key typed, 2 `version` typed, 3 answered (or stop_at seen) */
    double wall_s, virtual_s;
    hub_cpu_stats stats;
    char error[256];
    char out[1 << 16];      /* the console, NUL-terminated */
} uboot_result;

/* Returns 0, or -errno if the machine could not be built (@res->error says why). */
int uboot_boot(const uboot_opts *o, uboot_result *res);

#endif
