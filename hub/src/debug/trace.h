/*
 * The timeline (--trace FILE): a Chrome/Perfetto trace-event JSON file (it opens in ui.perfetto.dev and
 * chrome://tracing) of the hart and every device process on one time axis.
 *
 * Timestamps are host time since the trace began (microseconds, the format's unit); every event also carries
 * the virtual time (args.vtime_ns). Tracks: "cpu" (traps taken), one per device (its MMIO accesses as
 * slices with their host duration, its DMA transfers, timer fires and time grants as slices, failures and
 * restarts), "console" (the guest's output, one instant event per line), and counters for the interrupt
 * lines.
 *
 * Events are written as they happen (each one an object built with json-c), so a long run does not grow the
 * hub's memory. Lifetime: hub_trace_open() .. hub_trace_close() (accepts NULL; ends the JSON document).
 */
#ifndef PLEXUS_HUB_DEBUG_TRACE_H
#define PLEXUS_HUB_DEBUG_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include "cpu/cpu.h"
#include "dev/devmgr.h"

typedef struct hub_trace hub_trace;

/* Create @path. Returns 0, or -errno with @errp set. */
int hub_trace_open(const char *path, hub_trace **out, Error **errp);
/* End the document and close the file; returns 0 or -errno (the file could not be written whole). */
int hub_trace_close(hub_trace *t);

/* The CPU observer (MMIO accesses with their host time, traps). */
const hub_cpu_observer *hub_trace_observer(hub_trace *t);

/* The device layer's observer (DMA transfers, timer fires, time grants, failures, restarts). */
const hub_devmgr_observer *hub_trace_devmgr_observer(hub_trace *t);

/* Name a device's track (@name as the machine calls it, @os_pid its process, 0 if none yet). */
void hub_trace_device(hub_trace *t, const char *name, int os_pid);

/* An interrupt line of the PLIC changed level (a counter; its only series is the level). */
void hub_trace_irq(hub_trace *t, unsigned line, int level);

/* The guest's console output: one instant event per completed line (a partial line waits for the rest). */
void hub_trace_console(hub_trace *t, const char *bytes, size_t n, uint64_t vtime_ns);

/* Something a device did, on its track: kind "dma", "timer", "grant", "restart", ...; @dur_us 0 for an
 * instant. @args is a json-c object whose ownership passes to the trace (NULL: none). */
struct json_object;
void hub_trace_device_event(hub_trace *t, const char *device, const char *kind, double dur_us,
                            uint64_t vtime_ns, struct json_object *args);

#endif
