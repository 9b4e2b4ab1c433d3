/* Starting a device process: find the program, build its environment and descriptors, confine it (namespaces,
 * every descriptor it is not granted closed), exec. */
#define _GNU_SOURCE
#include "dev/spawn.h"

#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dev/declare.h"
#include "util.h"

extern char **environ;

/* ---- process start and attach ---------------------------------------------------------------------------- */

/*
 * The program to exec: a name with a '/' as it is (execve checks it), a bare name next to the hub's executable,
 * then in $PATH; the plugin runner from $PLEXUS_DEVICE_RUNNER, else the same way. Resolved before fork (execvp
 * is not async-signal-safe).
 */
static char *resolve_program(const char *prog)
{
    if (strchr(prog, '/'))
        return strdup(prog);
    hub_search s = { .n = 0 };
    char *exe = hub_exe_dir();
    hub_search_add(&s, exe);
    free(exe);
    if (getenv("PATH")) {
        hub_search_add_env(&s, "PATH");
    } else {
        hub_search_add(&s, "/usr/local/bin");
        hub_search_add(&s, "/usr/bin");
        hub_search_add(&s, "/bin");
    }
    char *found = hub_find_file(&s, NULL, prog, X_OK, NULL, 0, NULL);
    hub_search_clear(&s);
    return found;
}

static char *find_runner(void)
{
    const char *env = getenv("PLEXUS_DEVICE_RUNNER");
    if (env && *env)
        return strdup(env);
    char *found = resolve_program("plexus-device-runner");
    return found ? found : strdup("plexus-device-runner");
}

/* The device's state block (see struct plx_state_header), made once and kept across restarts. Without one
 * (no memfd here) the device keeps its state privately and a restart starts it fresh. */
void
hub_dev_make_state_block(hub_device *d)
{
    if (d->state_fd >= 0)
        return;
    int fd = memfd_create("plexus-state", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return;
    void *p = MAP_FAILED;
    if (ftruncate(fd, PLX_STATE_BLOCK_SIZE) == 0 &&
        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) == 0)
        p = mmap(NULL, PLX_STATE_BLOCK_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        close(fd);
        return;
    }
    d->state_fd = fd;
    d->state_hdr = p;
}

int
hub_dev_spawn(hub_device *d, const hub_device_config *cfg, Error **errp)
{
    hub_devmgr *m = d->m;
    char *runner = NULL, *path = NULL;
    const char *prog = cfg->program;
    if (!prog) {
        runner = find_runner();
        prog = runner;
    }
    path = prog ? resolve_program(prog) : NULL;
    if (!path) {
        error_setg(errp, "device '%s': cannot find the program '%s'%s", d->name, prog ? prog : "(none)",
                   cfg->program ? "" : " (set PLEXUS_DEVICE_RUNNER or install plexus-device-runner)");
        free(runner);
        return -ENOENT;
    }

    int sv[2] = { -1, -1 };
    if (!d->inc.tcp && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        error_setg(errp, "device '%s': socketpair: %s", d->name, strerror(errno));
        free(runner);
        free(path);
        return -errno;
    }

    /* argv and environment, built before fork. */
    size_t n_extra = 0;
    while (cfg->argv && cfg->argv[n_extra])
        n_extra++;
    char **argv = calloc(n_extra + 3, sizeof(char *));
    size_t n_env = 0;
    while (environ[n_env])
        n_env++;
    char **envp = calloc(n_env + 6, sizeof(char *));
    char *e_ep = NULL, *e_name = NULL, *e_fd = NULL, *e_state = NULL;
    if (!d->inc.tcp)
        hub_dev_make_state_block(d);
    if (d->state_fd >= 0 && asprintf(&e_state, "PLEXUS_STATE_FD=%d", d->state_fd) < 0)
        e_state = NULL;
    int devnull = -1, ret = -ENOMEM;
    if (!argv || !envp || asprintf(&e_ep, "PLEXUS_ENDPOINT=%s", d->inc.endpoint) < 0 ||
        asprintf(&e_name, "PLEXUS_DEVICE_NAME=%s", d->name) < 0 ||
        asprintf(&e_fd, "PLEXUS_FD_SOCKET=%d", sv[1]) < 0) {
        error_setg(errp, "device '%s': out of memory", d->name);
        goto out;
    }
    size_t a = 0;
    argv[a++] = (char *)prog;
    if (!cfg->program)
        argv[a++] = (char *)cfg->plugin;
    for (size_t i = 0; i < n_extra; i++)
        argv[a++] = (char *)cfg->argv[i];
    size_t k = 0;
    for (size_t i = 0; i < n_env; i++)
        if (strncmp(environ[i], "PLEXUS_ENDPOINT=", 16) && strncmp(environ[i], "PLEXUS_DEVICE_NAME=", 19) &&
            strncmp(environ[i], "PLEXUS_FD_SOCKET=", 17) && strncmp(environ[i], "PLEXUS_ATTACH=", 14) &&
            strncmp(environ[i], "PLEXUS_STATE_FD=", 16))
            envp[k++] = environ[i];
    envp[k++] = e_ep;
    envp[k++] = e_name;
    if (sv[1] >= 0)
        envp[k++] = e_fd;
    if (e_state)
        envp[k++] = e_state;
    int in_fd = cfg->stdin_fd;
    if (in_fd < 0) {
        devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
        in_fd = devnull;
    }
    int out_fd = cfg->stdout_fd;
    int inherit[64];
    unsigned n_inherit = 0;
    if (!d->inc.tcp && !cfg->ram_by_message)
        for (size_t i = 0; i < m->env.n_ram && n_inherit < 62; i++)
            if (hub_dev_ram_granted(cfg, &m->env.ram[i]) && m->env.ram[i].fd > 2)
                inherit[n_inherit++] = m->env.ram[i].fd;
    if (sv[1] >= 0)
        inherit[n_inherit++] = sv[1];
    if (e_state)
        inherit[n_inherit++] = d->state_fd;
    for (unsigned i = 1; i < n_inherit; i++)        /* ascending, for closing the gaps in the child */
        for (unsigned j = i; j > 0 && inherit[j - 1] > inherit[j]; j--) {
            int t = inherit[j];
            inherit[j] = inherit[j - 1];
            inherit[j - 1] = t;
        }

    pid_t pid;
    if (cfg->namespaces) {
        /* clone() with no new stack behaves as fork(), in new namespaces; unprivileged: with a user namespace */
        unsigned long fl = SIGCHLD | (cfg->namespaces & HUB_NS_NET ? CLONE_NEWNET : 0) |
                           (cfg->namespaces & HUB_NS_MOUNT ? CLONE_NEWNS : 0) |
                           (cfg->namespaces & HUB_NS_PID ? CLONE_NEWPID : 0);
        pid = (pid_t)syscall(SYS_clone, fl, NULL, NULL, NULL, NULL);
        if (pid < 0 && errno == EPERM)
            pid = (pid_t)syscall(SYS_clone, fl | CLONE_NEWUSER, NULL, NULL, NULL, NULL);
        if (pid < 0) {
            error_setg(errp, "device '%s': the kernel refuses new namespaces (%s%s%s): %s", d->name,
                       cfg->namespaces & HUB_NS_NET ? " net" : "", cfg->namespaces & HUB_NS_MOUNT ? " mount" : "",
                       cfg->namespaces & HUB_NS_PID ? " pid" : "", strerror(errno));
            ret = -errno;
            goto out;
        }
    } else {
        pid = fork();
    }
    if (pid < 0) {
        error_setg(errp, "device '%s': fork: %s", d->name, strerror(errno));
        ret = -errno;
        goto out;
    }
    if (pid == 0) {
        /* Child: only async-signal-safe calls until execve. */
        if (cfg->namespaces & HUB_NS_MOUNT)
            mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);   /* nothing it mounts leaks out */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        /* Its own process group: a Ctrl-C at the terminal reaches the hub, which shuts devices down in order. */
        setpgid(0, 0);
        static const int dfl[] = { SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGCHLD, SIGPIPE };
        struct sigaction sa = { .sa_handler = SIG_DFL };
        for (unsigned i = 0; i < sizeof(dfl) / sizeof(dfl[0]); i++)
            sigaction(dfl[i], &sa, NULL);
        if (in_fd >= 0 && in_fd != 0)
            dup2(in_fd, 0);
        if (out_fd >= 0 && out_fd != 1)
            dup2(out_fd, 1);
        /* Every descriptor the device is not granted is closed before its code runs, whatever the hub
           process holds without O_CLOEXEC (stdio stays). inherit[] is sorted ascending above. */
        unsigned lo = 3;
        for (unsigned i = 0; i < n_inherit; i++) {
            if ((unsigned)inherit[i] > lo)
                syscall(SYS_close_range, lo, (unsigned)inherit[i] - 1, 0);
            if ((unsigned)inherit[i] + 1 > lo)
                lo = (unsigned)inherit[i] + 1;
        }
        syscall(SYS_close_range, lo, ~0u, 0);
        for (unsigned i = 0; i < n_inherit; i++)
            fcntl(inherit[i], F_SETFD, 0);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execve(path, argv, envp);
        _exit(127);
    }
    d->inc.pid = pid;
    d->inc.spawned = true;
    d->inc.pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (sv[1] >= 0) {
        close(sv[1]);
        sv[1] = -1;
        d->inc.fdsock = sv[0];
        sv[0] = -1;
    }
    ret = 0;
out:
    if (sv[0] >= 0)
        close(sv[0]);
    if (sv[1] >= 0)
        close(sv[1]);
    if (devnull >= 0)
        close(devnull);
    free(e_ep);
    free(e_name);
    free(e_fd);
    free(e_state);
    free(argv);
    free(envp);
    free(runner);
    free(path);
    return ret;
}
