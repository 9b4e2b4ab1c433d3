/* Listening sockets for the debugger and the monitor. */
#define _GNU_SOURCE
#include "listen.h"

#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int fail(Error **errp, int e, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(Error **errp, int e, const char *fmt, ...)
{
    va_list ap;
    char *msg;
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        abort();
    va_end(ap);
    error_setg(errp, "%s", msg);
    free(msg);
    return -e;
}

static int listen_unix(const char *what, const char *spec, char **where, Error **errp)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    const char *path = spec + 5;
    if (!*path || strlen(path) >= sizeof(sa.sun_path))
        return fail(errp, EINVAL, "%s: '%s': a UNIX socket path of 1 to %zu bytes", what, spec,
                    sizeof(sa.sun_path) - 1);
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return fail(errp, errno, "%s: %s: %s", what, spec, strerror(errno));
    struct stat st;     /* a socket left by an earlier run goes; any other file at PATH is an error, kept */
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(path);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4) < 0) {
        int e = errno;
        close(fd);
        return fail(errp, e, "%s: cannot listen on %s: %s", what, spec, strerror(e));
    }
    *where = strdup(spec);
    return fd;
}

static int listen_tcp(const char *what, const char *spec, char **where, Error **errp)
{
    const char *hp = spec + 4, *colon = strrchr(hp, ':');
    char host[256];
    size_t hl = colon ? (size_t)(colon - hp) : 0;
    if (!colon || hl >= sizeof(host))
        return fail(errp, EINVAL, "%s: '%s': expected tcp::PORT, tcp:HOST:PORT or unix:PATH", what, spec);
    memcpy(host, hp, hl);
    host[hl] = 0;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || port < 0 || port > 65535)
        return fail(errp, EINVAL, "%s: '%s': the port must be a number 0..65535", what, spec);
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *ai;
    int gr = getaddrinfo(hl ? host : "127.0.0.1", colon + 1, &hints, &ai);
    if (gr != 0)
        return fail(errp, EINVAL, "%s: '%s': %s", what, spec, gai_strerror(gr));
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return fail(errp, e, "%s: cannot listen on %s: %s", what, spec, strerror(e));
    }
    freeaddrinfo(ai);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char h[NI_MAXHOST] = "?", s[NI_MAXSERV] = "?";
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        getnameinfo((struct sockaddr *)&ss, sl, h, sizeof(h), s, sizeof(s), NI_NUMERICHOST | NI_NUMERICSERV);
    if (asprintf(where, "tcp:%s:%s", h, s) < 0)
        abort();
    return fd;
}

int
hub_listen(const char *what, const char *spec, bool tcp_ok, char **where, Error **errp)
{
    if (!strncmp(spec, "unix:", 5))
        return listen_unix(what, spec, where, errp);
    if (tcp_ok && !strncmp(spec, "tcp:", 4))
        return listen_tcp(what, spec, where, errp);
    return fail(errp, EINVAL, "%s: '%s': expected %sunix:PATH", what, spec, tcp_ok ? "tcp::PORT, tcp:HOST:PORT or " : "");
}
