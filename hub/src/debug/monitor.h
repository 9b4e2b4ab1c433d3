/*
 * The monitor: QEMU-style commands on a running or stopped machine (info registers, info mtree, info devices,
 * x/xp, stop, cont, system_reset, quit, help), from the console (Ctrl-A c), a UNIX socket (--monitor) or the
 * debugger (`monitor CMD`).
 *
 * hub_monitor_exec() runs one command line and writes its answer to a FILE. The listener part serves
 * clients of a UNIX socket line by line; the machine calls hub_monitor_service() when hub_monitor_fd() is
 * readable. Commands run between execution slices or while the guest is stopped, never inside one.
 *
 * Lifetime: hub_monitor_open() .. hub_monitor_close() (accepts NULL).
 */
#ifndef PLEXUS_HUB_DEBUG_MONITOR_H
#define PLEXUS_HUB_DEBUG_MONITOR_H

#include <stdbool.h>
#include <stdio.h>

#include "cpu/cpu.h"

typedef struct hub_monitor_host {
    hub_cpu *cpu;
    void (*stop)(void *opaque);                 /* stop the guest (it stays stopped until cont) */
    void (*cont)(void *opaque);                 /* let a stopped guest run */
    bool (*stopped)(void *opaque);
    void (*reset)(void *opaque, FILE *out);     /* system_reset */
    void (*quit)(void *opaque);
    void (*info_devices)(void *opaque, FILE *out);
    bool *debug_io;         /* the machine's switch: may the debugger and x/xp touch device registers */
    void *opaque;
} hub_monitor_host;

/* Run @line (one command) with @h, its answer to @out. */
void hub_monitor_exec(const hub_monitor_host *h, const char *line, FILE *out);

typedef struct hub_monitor hub_monitor;

/* Listen on "unix:PATH". Returns 0, or -errno with @errp set. */
int hub_monitor_open(const char *spec, const hub_monitor_host *h, hub_monitor **out, Error **errp);
void hub_monitor_close(hub_monitor *m);
int hub_monitor_fd(const hub_monitor *m);
void hub_monitor_service(hub_monitor *m);

#define HUB_MONITOR_PROMPT "(plexus) "

#endif
