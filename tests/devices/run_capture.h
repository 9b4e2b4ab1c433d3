/* Run a program to completion with its stdout+stderr captured, killing it if it outlives a deadline. */
#ifndef PLEXUS_TESTS_RUN_CAPTURE_H
#define PLEXUS_TESTS_RUN_CAPTURE_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct run_result {
    char out[65536];        /* NUL-terminated, '\r' removed */
    size_t len;
    int status;             /* exit status, 128+signal if killed by one, -1 if it timed out */
} run_result;

static inline long long run_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Runs @argv (with @env_add "K=V" entries added, NULL-terminated or NULL) in @cwd (or NULL). 0 or -errno. */
static inline int run_capture(char *const argv[], const char *const env_add[], const char *cwd, int timeout_ms,
                              run_result *res)
{
    int p[2], devnull, st;
    long long deadline = run_now_ms() + timeout_ms;
    pid_t pid;

    memset(res, 0, sizeof(*res));
    if (pipe2(p, O_CLOEXEC) < 0)
        return -errno;
    pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        devnull = open("/dev/null", O_RDONLY);
        dup2(devnull, 0);
        dup2(p[1], 1);
        dup2(p[1], 2);
        setpgid(0, 0);
        for (const char *const *e = env_add; e && *e; e++)
            putenv((char *)*e);
        if (cwd && chdir(cwd) < 0)
            _exit(126);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(p[1]);
    for (;;) {
        struct pollfd pfd = { .fd = p[0], .events = POLLIN };
        long long left = deadline - run_now_ms();
        ssize_t n;

        if (left <= 0) {
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            close(p[0]);
            res->status = -1;
            return 0;
        }
        if (poll(&pfd, 1, (int)left) <= 0)
            continue;
        n = read(p[0], res->out + res->len, sizeof(res->out) - 1 - res->len);
        if (n <= 0)
            break;
        res->len += (size_t)n;
        if (res->len == sizeof(res->out) - 1)
            break;
    }
    close(p[0]);
    waitpid(pid, &st, 0);
    res->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    /* Consoles end lines with \r\n: compare on \n only. */
    size_t j = 0;
    for (size_t i = 0; i < res->len; i++)
        if (res->out[i] != '\r')
            res->out[j++] = res->out[i];
    res->len = j;
    res->out[j] = '\0';
    return 0;
}

#endif
