/* Run a program to completion with its standard output and standard error captured apart (a machine's console
 * and the hub's messages), killing its process group if it outlives a deadline; pick a firmware's own lines out
 * of a console, a figure out of --stats, a whole file (an event log). Include once per test program (the helpers
 * are static). */
#ifndef PLEXUS_TEST_RUN_SPLIT_H
#define PLEXUS_TEST_RUN_SPLIT_H

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RUN_OUT_MAX (1 << 16)

typedef struct run {
    char out[RUN_OUT_MAX];      /* stdout (the console: guest output), NUL-terminated, without '\r' */
    size_t len;
    char err[RUN_OUT_MAX];      /* stderr (the hub's and devices' messages, --stats) */
    size_t err_len;
    int status;                 /* exit status; 128+signal if killed; -1 on timeout */
} run;

static long long run_split_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void run_split_append(char *dst, size_t *len, const char *src, ssize_t n)
{
    for (ssize_t i = 0; i < n; i++)
        if (src[i] != '\r' && *len < RUN_OUT_MAX - 1)
            dst[(*len)++] = src[i];
    dst[*len] = 0;
}

/* Runs @argv (NULL-terminated) with stdin from /dev/null; its process group is killed at the end. */
static void run_split(const char *const *argv, int timeout_ms, run *r)
{
    memset(r, 0, sizeof(*r));
    int po[2], pe[2];
    cr_assert_eq(pipe2(po, O_CLOEXEC), 0);
    cr_assert_eq(pipe2(pe, O_CLOEXEC), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);
        dup2(devnull, 0);
        dup2(po[1], 1);
        dup2(pe[1], 2);
        setpgid(0, 0);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    long long deadline = run_split_now_ms() + timeout_ms;
    bool timed_out = false;
    struct pollfd pfd[2] = { { .fd = po[0], .events = POLLIN }, { .fd = pe[0], .events = POLLIN } };
    while (pfd[0].fd >= 0 || pfd[1].fd >= 0) {
        long long left = deadline - run_split_now_ms();
        if (left <= 0) {
            timed_out = true;
            break;
        }
        int n = poll(pfd, 2, (int)left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            timed_out = n == 0;
            break;
        }
        for (int i = 0; i < 2; i++) {
            if (pfd[i].fd < 0 || !pfd[i].revents)
                continue;
            char buf[4096];
            ssize_t got = read(pfd[i].fd, buf, sizeof buf);
            if (got <= 0) {
                close(pfd[i].fd);
                pfd[i].fd = -1;
            } else if (i == 0) {
                run_split_append(r->out, &r->len, buf, got);
            } else {
                run_split_append(r->err, &r->err_len, buf, got);
            }
        }
    }
    for (int i = 0; i < 2; i++)
        if (pfd[i].fd >= 0)
            close(pfd[i].fd);
    if (timed_out)
        kill(-pid, SIGKILL);
    int st = 0;
    waitpid(pid, &st, 0);
    kill(-pid, SIGKILL);        /* device processes left behind, if any */
    r->status = timed_out ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The lines of @out that start with @prefix, each with its newline, into @dst (capacity @cap). */
static void run_split_lines(const char *out, const char *prefix, char *dst, size_t cap)
{
    size_t n = 0, plen = strlen(prefix);
    for (const char *l = out; *l;) {
        const char *e = strchr(l, '\n');
        size_t len = e ? (size_t)(e - l) : strlen(l);
        if (len >= plen && !strncmp(l, prefix, plen) && n + len + 2 < cap) {
            memcpy(dst + n, l, len);
            n += len;
            dst[n++] = '\n';
        }
        l += len + (e ? 1 : 0);
    }
    dst[n] = 0;
}

/* The value of "NAME   123" in plexus --stats output. */
static unsigned long long run_split_stat(const char *out, const char *name)
{
    const char *p = strstr(out, name);
    cr_assert_not_null(p, "no '%s' in --stats output:\n%s", name, out);
    p += strlen(name);
    while (*p == ' ')
        p++;
    return strtoull(p, NULL, 10);
}

/* The whole file at @path (malloc'd, NUL-terminated), or NULL. */
static char *run_split_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    *len = fread(b, 1, (size_t)n, f);
    b[*len] = 0;
    fclose(f);
    return b;
}

#endif
