/*
 * A program driven through a pseudo-terminal, as a person at a terminal would: start it, wait for text in
 * what it prints, type, reap it (its whole process group) with its CPU time. Used by the boot benchmarks and
 * the Linux boot test.
 *
 * Lifetime: pty_start() fills a session; pty_finish() reaps the process; pty_free() releases the buffer.
 */
#ifndef PLEXUS_PTY_SESSION_H
#define PLEXUS_PTY_SESSION_H

#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct pty_session {
    pid_t pid;
    int fd;             /* the pty's master side */
    char *buf;          /* everything the program printed, NUL-terminated */
    size_t len, cap;
    double cpu_s;       /* user + system time of the program and the children it reaped (after pty_finish) */
} pty_session;

static inline double pty_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Read what is there within @timeout_ms into the buffer. Returns bytes read, 0 on timeout, -EIO at the end. */
static inline int pty_read(pty_session *s, int timeout_ms)
{
    struct pollfd p = { .fd = s->fd, .events = POLLIN };
    if (poll(&p, 1, timeout_ms) <= 0)
        return 0;
    if (s->len + 4097 > s->cap) {
        s->cap = s->cap * 2 + 8192;
        s->buf = realloc(s->buf, s->cap);
        if (!s->buf)
            abort();
    }
    ssize_t n = read(s->fd, s->buf + s->len, s->cap - s->len - 1);
    if (n <= 0)
        return -EIO;
    s->len += (size_t)n;
    s->buf[s->len] = 0;
    return (int)n;
}

/* Start @argv (PATH searched) on a new pty, in its own session. Returns 0 or -errno. */
static inline int pty_start(pty_session *s, char *const argv[])
{
    memset(s, 0, sizeof(*s));
    s->cap = 1 << 16;
    s->buf = calloc(1, s->cap);
    s->pid = forkpty(&s->fd, NULL, NULL, NULL);
    if (s->pid < 0)
        return -errno;
    if (s->pid == 0) {
        execvp(argv[0], argv);
        _exit(127);
    }
    return 0;
}

/* Wait until @needle appears in the output at or after offset @from. Returns its offset, -ETIMEDOUT at
 * @deadline (pty_now_s() time), -EIO when the program closed the terminal first. */
static inline long pty_expect(pty_session *s, size_t from, const char *needle, double deadline)
{
    for (;;) {
        const char *at = from <= s->len ? strstr(s->buf + from, needle) : NULL;
        if (at)
            return at - s->buf;
        double left = deadline - pty_now_s();
        if (left <= 0)
            return -ETIMEDOUT;
        if (pty_read(s, (int)(left * 1000) + 1) < 0)
            return -EIO;
    }
}

static inline int pty_type(pty_session *s, const char *text)
{
    size_t n = strlen(text);
    return write(s->fd, text, n) == (ssize_t)n ? 0 : -EIO;
}

/* Wait up to @grace_s for the program to exit (reading what it prints on the way out), then SIGKILL its
 * process group. Returns its wait status. */
static inline int pty_finish(pty_session *s, double grace_s)
{
    int st = 0;
    struct rusage ru;
    double end = pty_now_s() + grace_s;
    while (pty_now_s() < end) {
        if (wait4(s->pid, &st, WNOHANG, &ru) == s->pid)
            goto done;
        if (pty_read(s, 20) < 0)
            usleep(20000);
    }
    kill(-s->pid, SIGKILL);
    wait4(s->pid, &st, 0, &ru);
done:
    s->cpu_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
               (double)ru.ru_stime.tv_usec / 1e6;
    close(s->fd);
    s->fd = -1;
    return st;
}

static inline void pty_free(pty_session *s)
{
    free(s->buf);
    s->buf = NULL;
}

#endif
