/*
 * The hub's terminal: raw mode while the machine runs (restored on every exit path, signals included),
 * keyboard input forwarded to the console device (over its channel: it never holds the terminal), and the
 * Ctrl-A escape commands.
 *
 * Lifetime: hub_console_open() .. hub_console_close(); one console per process.
 */
#ifndef PLEXUS_HUB_CONSOLE_H
#define PLEXUS_HUB_CONSOLE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <plexus/memory.h>     /* Error */

typedef struct hub_console hub_console;

typedef enum {
    HUB_CONSOLE_NONE = 0,
    HUB_CONSOLE_QUIT,       /* Ctrl-A x */
    HUB_CONSOLE_STATS,      /* Ctrl-A s */
} hub_console_event;

/* Exit status of `plexus run` when the user quits with Ctrl-A x. */
#define HUB_CONSOLE_QUIT_STATUS 0

/*
 * Where typed bytes go: @sink takes up to @len of them and returns how many it took (0: no room now; they wait,
 * and the keyboard is not read while HUB_CONSOLE_PENDING of them wait), or a negative errno (they are dropped).
 */
typedef int hub_console_sink(void *opaque, const uint8_t *buf, size_t len);
#define HUB_CONSOLE_PENDING 4096

/* Take the terminal on @in_fd (raw mode if it is a tty); typed bytes go to @sink. Returns NULL on failure. */
hub_console *hub_console_open(int in_fd, hub_console_sink *sink, void *opaque, Error **errp);

/* Forward pending input without blocking; returns an escape command if one was typed. */
hub_console_event hub_console_service(hub_console *c);

/* The fd to poll for input, or -1 once input ended. */
int hub_console_fd(const hub_console *c);

/* Restore the terminal. Accepts NULL. */
void hub_console_close(hub_console *c);

/* Restore the terminal now (safe in a signal handler). */
void hub_console_restore_tty(void);

/* Ctrl-A c switches the keyboard to a monitor prompt and back; each line typed there goes to @line. */
void hub_console_set_monitor(hub_console *c, void (*line)(void *opaque, const char *line), void *opaque);

/* The escape help text. */
void hub_console_help(FILE *f);

#endif
