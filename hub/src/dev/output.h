/*
 * What a device says, as the hub shows it (output.c): the lines its process writes to stdout and stderr (one
 * pipe the hub reads) and the text of its Log messages. Whatever a device writes is data: split into lines
 * here (a newline in it never forges another line), every byte outside printable ASCII escaped, each line
 * passed to env.log with the device's name, and rate-limited: past HUB_LOG_SHOWN_PER_S bytes a second, lines
 * are counted and the count reported instead; past the device's log_bytes_per_s limit the device fails.
 */
#ifndef PLEXUS_HUB_DEV_OUTPUT_H
#define PLEXUS_HUB_DEV_OUTPUT_H

#include <stddef.h>

#include "dev/device.h"

#define HUB_LOG_SHOWN_PER_S 16384u          /* bytes of a device's lines shown per second */
#define HUB_LOG_LINE_MAX HUB_LOG_LINE_BUF     /* a longer line is shown in pieces */

/* @n bytes of @s as printable ASCII in @out (capacity @cap, always terminated): other bytes become \xNN,
 * a tab a space. Returns @out. */
char *hub_dev_clean(const char *s, size_t n, char *out, size_t cap);

/* Text the device sent at @level (a Log message): line by line, cleaned, limited. */
void hub_dev_output_text(hub_device *d, int level, const char *text, size_t len);

/* A warning about what the device sent (a message the hub drops): counted against its limits like its own
 * words, so a device cannot make the hub write without bound by sending what it must not. */
void hub_dev_complain(hub_device *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Read what the process wrote to its stdout and stderr (at most a bounded amount per call, never blocking). */
void hub_dev_output_drain(hub_device *d);

/* The incarnation ends: what is left in the pipe, a partial last line, and the count of what was not shown. */
void hub_dev_output_end(hub_device *d);

#endif
