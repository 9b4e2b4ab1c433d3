/* The monitor's commands, and its UNIX socket. */
#define _GNU_SOURCE
#include "monitor.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <plexus/memory.h>

#include "dlog.h"
#include "listen.h"

#define LINE_MAX_LEN 1024
#define X_MAX_BYTES 4096        /* what one x/xp shows at most */
#define MAX_CLIENTS 4

static const char help_text[] =
    "info registers        the hart's registers and privilege\n"
    "info mtree            the memory map (regions and the flat view the CPU sees)\n"
    "info devices          device processes: transport, state, restarts, statistics\n"
    "x /NFU ADDR           N units of virtual memory at ADDR (F: x hex, d signed, u unsigned, c char;\n"
    "                      U: b 1, h 2, w 4, g 8 bytes); through the hart's page tables\n"
    "xp /NFU ADDR          the same at a physical address\n"
    "debug-io on|off       allow the debugger and x/xp to read device registers (side effects!)\n"
    "stop                  stop the guest (virtual time stands still)\n"
    "cont                  let a stopped guest run\n"
    "system_reset          reset the hart and reload the firmware images\n"
    "quit                  end plexus (exit status 0)\n"
    "help                  this list\n";

/* x/xp: "/NFU ADDR" or "ADDR". */
static void examine(const hub_monitor_host *h, const char *args, bool phys, FILE *out)
{
    unsigned long count = 1;
    char fmt = 'x', unit = 'w';
    const char *p = args;
    while (isspace((unsigned char)*p))
        p++;
    if (*p == '/') {
        p++;
        if (isdigit((unsigned char)*p))
            count = strtoul(p, (char **)&p, 10);
        for (; *p && !isspace((unsigned char)*p); p++) {
            if (strchr("xduc", *p))
                fmt = *p;
            else if (strchr("bhwg", *p))
                unit = *p;
            else {
                fprintf(out, "x: unknown format letter '%c' (x d u c, b h w g)\n", *p);
                return;
            }
        }
    }
    char *end;
    errno = 0;
    uint64_t addr = strtoull(p, &end, 0);
    while (isspace((unsigned char)*end))
        end++;
    if (end == p || *end || errno) {
        fprintf(out, "usage: %s /NFU ADDR (e.g. %s /4xg 0x80000000)\n", phys ? "xp" : "x", phys ? "xp" : "x");
        return;
    }
    unsigned size = unit == 'b' ? 1 : unit == 'h' ? 2 : unit == 'w' ? 4 : 8;
    if (fmt == 'c')
        size = 1;
    if (!count || count * size > X_MAX_BYTES) {
        fprintf(out, "x: show 1 to %u bytes at a time\n", X_MAX_BYTES);
        return;
    }
    unsigned flags = (phys ? HUB_DBG_PHYS : 0) | (*h->debug_io ? HUB_DBG_IO : 0);
    unsigned per_line = fmt == 'c' ? 16 : 16 / size;
    for (unsigned long i = 0; i < count; i++) {
        uint64_t a = addr + i * size, v = 0;
        int r = hub_cpu_debug_read(h->cpu, a, &v, size, flags);
        if (i % per_line == 0)
            fprintf(out, "%s%016" PRIx64 ":", i ? "\n" : "", a);
        if (r == -EPERM) {
            fprintf(out, " <device register: `debug-io on` reads it, with its side effects>");
            break;
        }
        if (r < 0) {
            fprintf(out, " <%s>", phys ? "nothing readable there" : "not mapped");
            break;
        }
        switch (fmt) {
        case 'd': {
            int64_t s = size == 8 ? (int64_t)v : (int64_t)(v << (64 - 8 * size)) >> (64 - 8 * size);
            fprintf(out, " %" PRId64, s);
            break;
        }
        case 'u':
            fprintf(out, " %" PRIu64, v);
            break;
        case 'c':
            fprintf(out, isprint((int)v) ? " '%c'" : " \\x%02x", (int)v);
            break;
        default:
            fprintf(out, " 0x%0*" PRIx64, (int)(2 * size), v);
            break;
        }
    }
    fputc('\n', out);
}

void
hub_monitor_exec(const hub_monitor_host *h, const char *line, FILE *out)
{
    char cmd[LINE_MAX_LEN];
    snprintf(cmd, sizeof(cmd), "%s", line);
    char *s = cmd;
    while (isspace((unsigned char)*s))
        s++;
    for (char *e = s + strlen(s); e > s && isspace((unsigned char)e[-1]);)
        *--e = 0;
    char *args = s + strcspn(s, " \t/");
    char word[32];
    size_t wl = (size_t)(args - s) < sizeof(word) - 1 ? (size_t)(args - s) : sizeof(word) - 1;
    memcpy(word, s, wl);
    word[wl] = 0;
    while (*args == ' ' || *args == '\t')
        args++;

    if (!*word) {
        return;
    } else if (!strcmp(word, "help") || !strcmp(word, "?")) {
        fputs(help_text, out);
    } else if (!strcmp(word, "info")) {
        if (!strcmp(args, "registers"))
            hub_print_registers(h->cpu, out);
        else if (!strcmp(args, "mtree"))
            mtree_info(fprintf, out, true, false);
        else if (!strcmp(args, "devices") && h->info_devices)
            h->info_devices(h->opaque, out);
        else
            fputs("info: registers, mtree or devices\n", out);
    } else if (!strcmp(word, "x") || !strcmp(word, "xp")) {
        examine(h, args, word[1] == 'p', out);
    } else if (!strcmp(word, "debug-io")) {
        if (strcmp(args, "on") && strcmp(args, "off")) {
            fprintf(out, "debug-io is %s: debug-io on|off\n", *h->debug_io ? "on" : "off");
            return;
        }
        *h->debug_io = !strcmp(args, "on");
        fprintf(out, "device registers are %s to the debugger and x/xp\n", *h->debug_io ? "open" : "closed");
    } else if (!strcmp(word, "stop")) {
        if (h->stopped(h->opaque))
            fputs("the guest is stopped already\n", out);
        else
            h->stop(h->opaque);
    } else if (!strcmp(word, "cont") || !strcmp(word, "c")) {
        if (!h->stopped(h->opaque))
            fputs("the guest is running\n", out);
        else
            h->cont(h->opaque);
    } else if (!strcmp(word, "system_reset")) {
        h->reset(h->opaque, out);
    } else if (!strcmp(word, "quit") || !strcmp(word, "q")) {
        h->quit(h->opaque);
    } else {
        fprintf(out, "unknown command '%s': try help\n", word);
    }
}

/* ---- the UNIX socket ------------------------------------------------------------------------------------ */

typedef struct mon_client {
    int fd;
    char line[LINE_MAX_LEN];
    size_t len;
    bool overflow;
} mon_client;

struct hub_monitor {
    hub_monitor_host host;
    int listen_fd, ep_fd;
    char *path;
    mon_client clients[MAX_CLIENTS];
};

static void client_send(mon_client *c, const char *s, size_t n)
{
    while (n && c->fd >= 0) {
        ssize_t w = send(c->fd, s, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;     /* a client that does not read loses output; the hub does not wait for it */
        s += w, n -= (size_t)w;
    }
}

static void client_drop(hub_monitor *m, mon_client *c)
{
    epoll_ctl(m->ep_fd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
}

static void client_line(hub_monitor *m, mon_client *c)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return;
    if (c->overflow)
        fprintf(f, "line too long (at most %d bytes)\n", LINE_MAX_LEN - 1);
    else
        hub_monitor_exec(&m->host, c->line, f);
    fputs(HUB_MONITOR_PROMPT, f);
    fclose(f);
    client_send(c, text, len);
    free(text);
}

static void client_read(hub_monitor *m, mon_client *c)
{
    char buf[512];
    for (;;) {
        ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            client_drop(m, c);
            return;
        }
        for (ssize_t i = 0; i < n && c->fd >= 0; i++) {
            if (buf[i] == '\n') {
                c->line[c->len] = 0;
                client_line(m, c);
                c->len = 0;
                c->overflow = false;
            } else if (buf[i] != '\r') {
                if (c->len < LINE_MAX_LEN - 1)
                    c->line[c->len++] = buf[i];
                else
                    c->overflow = true;
            }
        }
    }
}

void
hub_monitor_service(hub_monitor *m)
{
    if (!m)
        return;
    int fd;
    while ((fd = accept4(m->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0) {
        mon_client *c = NULL;
        for (int i = 0; i < MAX_CLIENTS && !c; i++)
            if (m->clients[i].fd < 0)
                c = &m->clients[i];
        if (!c) {
            static const char busy[] = "plexus monitor: too many clients\n";
            if (send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL) < 0) { /* nothing more to do */ }
            close(fd);
            continue;
        }
        *c = (mon_client){ .fd = fd };
        struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
        epoll_ctl(m->ep_fd, EPOLL_CTL_ADD, fd, &ev);
        client_send(c, HUB_MONITOR_PROMPT, strlen(HUB_MONITOR_PROMPT));
    }
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (m->clients[i].fd >= 0)
            client_read(m, &m->clients[i]);
}

int
hub_monitor_open(const char *spec, const hub_monitor_host *h, hub_monitor **out, Error **errp)
{
    char *where = NULL;
    int fd = hub_listen("monitor", spec, false, &where, errp);
    if (fd < 0)
        return fd;
    hub_monitor *m = calloc(1, sizeof(*m));
    if (!m)
        abort();
    m->host = *h;
    for (int i = 0; i < MAX_CLIENTS; i++)
        m->clients[i].fd = -1;
    m->listen_fd = fd;
    m->ep_fd = epoll_create1(EPOLL_CLOEXEC);
    if (m->ep_fd < 0)
        abort();                /* out of descriptors at start-up */
    m->path = strdup(where + 5);
    free(where);
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = m->listen_fd };
    epoll_ctl(m->ep_fd, EPOLL_CTL_ADD, m->listen_fd, &ev);
    *out = m;
    return 0;
}

void
hub_monitor_close(hub_monitor *m)
{
    if (!m)
        return;
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (m->clients[i].fd >= 0)
            close(m->clients[i].fd);
    close(m->listen_fd);
    close(m->ep_fd);
    unlink(m->path);
    free(m->path);
    free(m);
}

int
hub_monitor_fd(const hub_monitor *m)
{
    return m->ep_fd;
}
