/*
 * Guest diagnostics, as QEMU's -d/-D: accesses to unassigned addresses and refused access sizes (with the
 * guest pc and privilege), device errors, CSRs the hart refused, traps and interrupts taken, executed blocks,
 * MMIO traces.
 * It is a CPU observer (cpu.h): with nothing asked, the CPU is not observed at all.
 *
 * Lifetime: hub_dlog_new() .. hub_dlog_free() (accepts NULL); it must outlive the CPU it observes.
 */
#ifndef PLEXUS_HUB_DEBUG_DLOG_H
#define PLEXUS_HUB_DEBUG_DLOG_H

#include <stdio.h>

#include "cpu/cpu.h"

enum {
    HUB_DLOG_GUEST_ERRORS = 1,  /* guest_errors */
    HUB_DLOG_UNIMP = 2,         /* unimp */
    HUB_DLOG_INT = 4,           /* int */
    HUB_DLOG_EXEC = 8,          /* exec */
    HUB_DLOG_MMIO = 16,         /* mmio */
};

/* The -d items, one per line with what each shows (for `-d help`). */
extern const char hub_dlog_help[];

/* Parse "guest_errors,int,mmio" into HUB_DLOG_* bits. Returns 0, or -EINVAL with @errp naming the item it
 * does not know. */
int hub_dlog_parse(const char *spec, unsigned *mask, Error **errp);

typedef struct hub_dlog hub_dlog;

/*
 * Log what @mask asks for to @out (not closed by the log). @begin_line, if set, is called before each line
 * (the machine starts a new line on the terminal when the guest's console output is in mid-line).
 * @mmio_devices (NULL-terminated, may be NULL): without HUB_DLOG_MMIO, the accesses to these devices' regions
 * (named "DEVICE.REGION") are logged as HUB_DLOG_MMIO would, and no others.
 */
hub_dlog *hub_dlog_new(unsigned mask, FILE *out, const char *const *mmio_devices, void (*begin_line)(void *opaque),
                       void *opaque);
void hub_dlog_free(hub_dlog *l);

/* A device reported an error or warning (syslog @level <= 4): with guest_errors, it goes to the log too (the
 * same line the console shows, so that a -D file tells the whole story). */
void hub_dlog_device(hub_dlog *l, const char *device, const char *level, const char *msg);

/* The observer to give the CPU (NULL when @l is NULL or logs nothing the CPU tells). */
const hub_cpu_observer *hub_dlog_observer(hub_dlog *l);

/* Name of an exception or interrupt cause, e.g. "load access fault". */
const char *hub_cause_name(bool interrupt, uint64_t cause);

/* The hart's registers and privilege, as the monitor's `info registers` shows them. */
void hub_print_registers(hub_cpu *cpu, FILE *out);

#endif
