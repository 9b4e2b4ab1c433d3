/*
 * The GDB stub: GDB's remote serial protocol over TCP or a UNIX socket, on the hart (cpu.h's debug calls).
 *
 * All-stop: the stub asks the hart to stop when a debugger connects and when it sends an interrupt (0x03),
 * and answers packets only while the guest is stopped (packets that arrive while it runs wait). The machine
 * calls hub_gdb_service() whenever the stub's fd is readable (running or stopped), hub_gdb_stopped() when
 * the hart stops for the debugger, and keeps the guest stopped until hub_gdb_host.resume is called.
 *
 * Lifetime: hub_gdb_open() .. hub_gdb_close() (accepts NULL). One client at a time.
 */
#ifndef PLEXUS_HUB_DEBUG_GDB_H
#define PLEXUS_HUB_DEBUG_GDB_H

#include <stdbool.h>
#include <stdio.h>

#include "cpu/cpu.h"

typedef struct hub_gdb hub_gdb;

typedef struct hub_gdb_host {
    hub_cpu *cpu;
    /* Let the stopped guest run again (hub_cpu_debug_step() was called first for a step). */
    void (*resume)(void *opaque);
    /* `k`: end the run. */
    void (*kill)(void *opaque);
    /* `monitor CMD` (qRcmd): run a monitor command, its output to @out. */
    void (*monitor)(void *opaque, const char *cmd, FILE *out);
    /* May the debugger read and write device registers (monitor `debug-io on`)? NULL: never. */
    bool (*io_allowed)(void *opaque);
    void *opaque;
} hub_gdb_host;

/*
 * Listen on @spec: "tcp::PORT" (127.0.0.1), "tcp:HOST:PORT", or "unix:PATH" (created; removed at close).
 * PORT 0 picks a free port (hub_gdb_where() tells which). Returns 0, or -errno with @errp set.
 */
int hub_gdb_open(const char *spec, const hub_gdb_host *host, hub_gdb **out, Error **errp);
void hub_gdb_close(hub_gdb *g);

/* Where the stub listens, as "tcp:HOST:PORT" or "unix:PATH". */
const char *hub_gdb_where(const hub_gdb *g);

/* A descriptor that becomes readable when the stub has something to do (a connection, bytes). */
int hub_gdb_fd(const hub_gdb *g);

/* Is a debugger connected? */
bool hub_gdb_connected(const hub_gdb *g);

/* Accept a connection, read what came, answer packets if the guest is stopped. Never blocks. */
void hub_gdb_service(hub_gdb *g);

/* The hart stopped (for any reason: the debugger's, the monitor's): report it if the debugger waits. */
void hub_gdb_stopped(hub_gdb *g, const hub_cpu_debug_event *ev);

/* The guest runs again (resumed by the stub or by someone else, e.g. the monitor's `cont`). */
void hub_gdb_running(hub_gdb *g);

/* The guest powered off with @status (W packet), or the hart stopped on a fatal error (@fatal: X packet,
 * SIGSEGV). The debugger is told if it waits for a stop; the connection is then closed. */
void hub_gdb_exited(hub_gdb *g, int status, bool fatal);

#endif
