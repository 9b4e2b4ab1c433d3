/* The hub's terminal: raw mode, input to the console device, Ctrl-A escapes (as QEMU's -nographic has). */
#define _GNU_SOURCE
#include "console.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#define ESCAPE_CHAR 0x01    /* Ctrl-A */

struct hub_console {
    int in_fd;
    hub_console_sink *sink;
    void *sink_opaque;
    bool escape;            /* the previous byte was Ctrl-A */
    bool eof;
    unsigned char pending[HUB_CONSOLE_PENDING];
    size_t n_pending;
    /* the monitor prompt (Ctrl-A c) */
    void (*mon_line)(void *opaque, const char *line);
    void *mon_opaque;
    bool in_monitor;
    char line[256];
    size_t line_len;
};

#define MONITOR_PROMPT "(plexus) "

static struct termios saved_tio;
static int saved_fd = -1;

void hub_console_restore_tty(void)
{
    if (saved_fd >= 0)
        tcsetattr(saved_fd, TCSANOW, &saved_tio);
}

static void restore_at_exit(void)
{
    hub_console_restore_tty();
}

/* Fatal signals: put the terminal back, then die the default way. */
static void fatal_signal(int sig)
{
    hub_console_restore_tty();
    signal(sig, SIG_DFL);
    raise(sig);
}

void hub_console_help(FILE *f)
{
    fputs("\r\nplexus console escapes (Ctrl-A, then a key):\r\n"
          "  Ctrl-A x    quit plexus (exit status 0)\r\n"
          "  Ctrl-A s    print device and CPU statistics\r\n"
          "  Ctrl-A c    switch between the guest's console and the monitor\r\n"
          "  Ctrl-A h    print this help\r\n"
          "  Ctrl-A Ctrl-A  send Ctrl-A to the guest\r\n", f);
}

hub_console *hub_console_open(int in_fd, hub_console_sink *sink, void *opaque, Error **errp)
{
    hub_console *c = calloc(1, sizeof(*c));
    if (!c) {
        error_setg(errp, "console: out of memory");
        return NULL;
    }
    c->in_fd = in_fd;
    c->sink = sink;
    c->sink_opaque = opaque;
    if (in_fd >= 0 && isatty(in_fd) && saved_fd < 0 && tcgetattr(in_fd, &saved_tio) == 0) {
        saved_fd = in_fd;
        atexit(restore_at_exit);
        static const int fatal[] = { SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL };
        for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
            signal(fatal[i], fatal_signal);
        struct termios raw = saved_tio;
        /* Like cfmakeraw(), but keep output processing (\n -> \r\n) and Ctrl-C as a signal, as QEMU does. */
        raw.c_iflag &= ~(tcflag_t)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
        raw.c_lflag &= ~(tcflag_t)(ECHO | ECHONL | ICANON | IEXTEN);
        raw.c_cflag &= ~(tcflag_t)(CSIZE | PARENB);
        raw.c_cflag |= CS8;
        raw.c_cc[VMIN] = 1;
        raw.c_cc[VTIME] = 0;
        tcsetattr(in_fd, TCSANOW, &raw);
    }
    if (in_fd < 0)
        c->eof = true;
    return c;
}

int hub_console_fd(const hub_console *c)
{
    return c && !c->eof && c->n_pending < sizeof(c->pending) ? c->in_fd : -1;
}

static void flush_pending(hub_console *c)
{
    while (c->n_pending) {
        int w = c->sink(c->sink_opaque, c->pending, c->n_pending);
        if (w < 0)
            c->n_pending = 0;       /* nobody takes input: dropped */
        if (w <= 0)
            return;     /* the device has no room: keep the bytes, stop reading the keyboard */
        memmove(c->pending, c->pending + w, c->n_pending - (size_t)w);
        c->n_pending -= (size_t)w;
    }
}

void hub_console_set_monitor(hub_console *c, void (*line)(void *opaque, const char *line), void *opaque)
{
    c->mon_line = line;
    c->mon_opaque = opaque;
}

static void toggle_monitor(hub_console *c)
{
    if (!c->mon_line)
        return;
    c->in_monitor = !c->in_monitor;
    c->line_len = 0;
    if (c->in_monitor)
        fputs("\r\nplexus monitor: `help` lists the commands; Ctrl-A c returns to the guest\r\n" MONITOR_PROMPT,
              stderr);
    else
        fputs("\r\n", stderr);
    fflush(stderr);
}

/* A key typed at the monitor prompt: a small line editor (echo, backspace, Ctrl-U, Enter). */
static void monitor_key(hub_console *c, unsigned char ch)
{
    if (ch == '\r' || ch == '\n') {
        fputs("\r\n", stderr);
        c->line[c->line_len] = 0;
        c->line_len = 0;
        c->mon_line(c->mon_opaque, c->line);
        if (c->in_monitor)
            fputs(MONITOR_PROMPT, stderr);
    } else if (ch == 0x7f || ch == 0x08) {
        if (c->line_len) {
            c->line_len--;
            fputs("\b \b", stderr);
        }
    } else if (ch == 0x15) {
        for (; c->line_len; c->line_len--)
            fputs("\b \b", stderr);
    } else if (ch >= 0x20 && ch < 0x7f && c->line_len < sizeof(c->line) - 1) {
        c->line[c->line_len++] = (char)ch;
        fputc(ch, stderr);
    }
    fflush(stderr);
}

hub_console_event hub_console_service(hub_console *c)
{
    if (!c)
        return HUB_CONSOLE_NONE;
    flush_pending(c);
    hub_console_event ev = HUB_CONSOLE_NONE;
    while (!c->eof && c->n_pending < sizeof(c->pending) / 2 && ev == HUB_CONSOLE_NONE) {
        /* poll first: the terminal's file description is shared with the shell, so it stays blocking */
        struct pollfd pfd = { .fd = c->in_fd, .events = POLLIN };
        if (poll(&pfd, 1, 0) <= 0)
            break;
        unsigned char buf[256];
        ssize_t n = read(c->in_fd, buf, sizeof(buf));
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            break;
        if (n <= 0) {
            c->eof = true;
            break;
        }
        for (ssize_t i = 0; i < n; i++) {
            unsigned char ch = buf[i];
            if (c->escape) {
                c->escape = false;
                if (ch == 'x' || ch == 'X') {
                    ev = HUB_CONSOLE_QUIT;
                    break;
                } else if (ch == 'h' || ch == 'H' || ch == '?') {
                    hub_console_help(stderr);
                    continue;
                } else if (ch == 'c' || ch == 'C') {
                    toggle_monitor(c);
                    continue;
                } else if (ch == 's' || ch == 'S') {
                    ev = HUB_CONSOLE_STATS;
                    /* keep the rest of this read for the guest */
                    if (i + 1 < n) {
                        memcpy(c->pending + c->n_pending, buf + i + 1, (size_t)(n - i - 1));
                        c->n_pending += (size_t)(n - i - 1);
                    }
                    break;
                } else if (ch != ESCAPE_CHAR) {
                    continue;       /* unknown escape: ignored */
                }
            } else if (ch == ESCAPE_CHAR) {
                c->escape = true;
                continue;
            }
            if (c->in_monitor) {
                monitor_key(c, ch);
                continue;
            }
            c->pending[c->n_pending++] = ch;
        }
        flush_pending(c);
    }
    return ev;
}

void hub_console_close(hub_console *c)
{
    if (saved_fd >= 0) {
        hub_console_restore_tty();
        saved_fd = -1;
    }
    free(c);
}
