/*
 * The device sandbox: after init() a device needs little more than to talk to the hub, touch its mapped
 * memory and keep time, so it gets a seccomp allowlist. The policy is data (below); machines add names.
 */
#define _GNU_SOURCE
#include "sandbox.h"

#include <errno.h>
#include <seccomp.h>
#include <stdbool.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "plexus/protocol.h"

/* What the SDK run loop, ZeroMQ's I/O thread and the C library use once a device is running. */
static const char *const default_policy[] = {
    /* I/O on descriptors the device already holds */
    "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev", "preadv2", "pwritev2",
    "lseek", "close", "fcntl", "ioctl", "dup", "fstat", "newfstatat", "statx", "fsync", "fdatasync", "fallocate",
    /* waiting */
    "poll", "ppoll", "select", "pselect6", "epoll_wait", "epoll_pwait", "epoll_pwait2", "epoll_ctl",
    "futex", "futex_waitv", "sched_yield", "nanosleep", "clock_nanosleep",
    /* sockets already connected (the hub channel, the fd socket) */
    "recvfrom", "sendto", "recvmsg", "sendmsg", "getsockopt", "setsockopt", "getsockname", "getpeername",
    "shutdown",
    /* memory (mmap and mprotect only without PROT_EXEC: see below) */
    "munmap", "mremap", "brk", "madvise",
    /* time, identity, randomness */
    "clock_gettime", "clock_getres", "gettimeofday", "time", "getpid", "gettid", "getppid", "getuid", "geteuid",
    "getgid", "getegid", "getrandom", "uname",
    /* signals and exit */
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack", "tgkill", "restart_syscall", "exit",
    "exit_group", "set_robust_list", "rseq", "getcpu",
    /* ZeroMQ's threads may still be starting when the filter goes on: they read their scheduling
     * parameters (and name themselves: prctl, allowed for PR_SET_NAME only, below) */
    "sched_getparam", "sched_getscheduler",
};

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define PLX_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define PLX_SANITIZER 1
#endif
#endif

#ifdef PLX_SANITIZER
/* The sanitizer runtimes read /proc and stop the world (clone + ptrace) for leak checks at exit. */
static const char *const sanitizer_extra[] = {
    "open", "openat", "readlink", "readlinkat", "getdents64", "clone", "clone3", "ptrace", "wait4", "prctl",
    "sched_getaffinity", "process_vm_readv", "mincore", "pipe2", "kill",
};
#endif

#ifdef PLX_SANITIZER
/* LeakSanitizer's end-of-process check stops the world from a ptrace helper that the filter would kill (it
 * blocks SIGSYS, so the denied call cannot even be reported): run the check now, which also retires the one at
 * exit. Leaks made after the sandbox is up are not reported. */
extern void __lsan_do_leak_check(void) __attribute__((weak));
#endif

#define MAX_NR 1024
static const char *nr_names[MAX_NR];
static int report_fd = -1;

static void put(char *buf, size_t *off, size_t cap, const char *s)
{
    while (*s && *off < cap - 1)
        buf[(*off)++] = *s++;
}

static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
    char msg[160], num[24];
    size_t off = 0;
    int nr = si->si_syscall;
    put(msg, &off, sizeof(msg), "sandbox: denied system call ");
    put(msg, &off, sizeof(msg), nr >= 0 && nr < MAX_NR && nr_names[nr] ? nr_names[nr] : "?");
    int k = (int)sizeof(num) - 1, v = nr < 0 ? 0 : nr;
    num[k] = 0;
    do
        num[--k] = (char)('0' + v % 10);
    while ((v /= 10) && k > 0);
    put(msg, &off, sizeof(msg), " (");
    put(msg, &off, sizeof(msg), num + k);
    put(msg, &off, sizeof(msg), ")");
    if (report_fd >= 0)
        send(report_fd, msg, off, MSG_NOSIGNAL | MSG_DONTWAIT);
    msg[off++] = '\n';
    if (write(2, msg, off) < 0)
        (void)0;
    _exit(128 + SIGSYS);
}

/* The handler that reports a denied call: on from the start (the hub's jail filters before the device runs). */
void
plx_sandbox_report(int rep_fd)
{
    report_fd = rep_fd;
    struct sigaction sa = { .sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSYS, &sa, NULL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGSYS);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

static int allow_name(scmp_filter_ctx ctx, const char *name, bool must_exist, char *err, size_t errlen)
{
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) {
        if (!must_exist)
            return 0;       /* not a system call on this architecture */
        snprintf(err, errlen, "sandbox: unknown system call '%s'", name);
        return -EINVAL;
    }
    int r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
    if (r < 0) {
        snprintf(err, errlen, "sandbox: cannot allow '%s': %s", name, strerror(-r));
        return r;
    }
    return 0;
}

int
plx_sandbox_apply(const char *policy, char *const *allow, size_t n_allow, int rep_fd, char *err, size_t errlen)
{
    bool log_only = policy && !strcmp(policy, PLX_SANDBOX_POLICY_LOG);
    if (policy && *policy && strcmp(policy, PLX_SANDBOX_POLICY_DEFAULT) != 0 && !log_only) {
        snprintf(err, errlen, "sandbox: unknown policy '%s' (known: " PLX_SANDBOX_POLICY_NAMES ")", policy);
        return -EINVAL;
    }
    /* "log": the same allowlist, but a call outside it is let through and logged by the kernel (audit log /
     * dmesg "type=1326"), for finding what a device needs. Needs seccomp API level 3 (Linux 4.14). */
    if (log_only && seccomp_api_get() < 3) {
        snprintf(err, errlen, "sandbox: policy 'log' needs SECCOMP_RET_LOG, which this kernel lacks");
        return -ENOTSUP;
    }
    scmp_filter_ctx ctx = seccomp_init(log_only ? SCMP_ACT_LOG : SCMP_ACT_TRAP);
    if (!ctx) {
        snprintf(err, errlen, "sandbox: seccomp_init failed");
        return -ENOMEM;
    }
    int r = 0;
    for (size_t i = 0; i < sizeof(default_policy) / sizeof(default_policy[0]) && r == 0; i++)
        r = allow_name(ctx, default_policy[i], false, err, errlen);
    if (r == 0 && (r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
                                        SCMP_A0(SCMP_CMP_EQ, PR_SET_NAME, 0))) < 0)
        snprintf(err, errlen, "sandbox: cannot allow prctl(PR_SET_NAME): %s", strerror(-r));
    /* No executable mappings: a device cannot load or generate code once it runs. */
    if (r == 0 && (r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
                                        SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0))) < 0)
        snprintf(err, errlen, "sandbox: cannot allow mmap without PROT_EXEC: %s", strerror(-r));
    if (r == 0 && (r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
                                        SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0))) < 0)
        snprintf(err, errlen, "sandbox: cannot allow mprotect without PROT_EXEC: %s", strerror(-r));
    /* ... and re-apply the normal policy to themselves: SCHED_OTHER only, nothing real-time. */
    if (r == 0 && (r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(sched_setscheduler), 1,
                                        SCMP_A1(SCMP_CMP_EQ, SCHED_OTHER, 0))) < 0)
        snprintf(err, errlen, "sandbox: cannot allow sched_setscheduler(SCHED_OTHER): %s", strerror(-r));
#ifdef PLX_SANITIZER
    for (size_t i = 0; i < sizeof(sanitizer_extra) / sizeof(sanitizer_extra[0]) && r == 0; i++)
        r = allow_name(ctx, sanitizer_extra[i], false, err, errlen);
#endif
    for (size_t i = 0; i < n_allow && r == 0; i++)
        r = allow_name(ctx, allow[i], true, err, errlen);
    if (r == 0 && (r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1)) < 0)
        snprintf(err, errlen, "sandbox: cannot apply to every thread: %s", strerror(-r));
    if (r == 0) {
#ifdef PLX_SANITIZER
        if (__lsan_do_leak_check)
            __lsan_do_leak_check();
#endif
        /* Names for the report, resolved now: the SIGSYS handler may not allocate. */
        uint32_t arch = seccomp_arch_native();
        for (int nr = 0; nr < MAX_NR; nr++)
            if (!nr_names[nr])
                nr_names[nr] = seccomp_syscall_resolve_num_arch(arch, nr);
        plx_sandbox_report(rep_fd);
        if ((r = seccomp_load(ctx)) < 0)
            snprintf(err, errlen, "sandbox: the kernel refused the filter: %s", strerror(-r));
    }
    seccomp_release(ctx);
    return r;
}
