/* Starting a device process: find the program, build its environment and descriptors, and start it in its jail
 * (jail.c). */
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
#include "dev/jail.h"
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

/* What of the hub's environment a device gets: the search paths, the locale, the time zone, sanitizer options
 * and plexus's own variables (not the ones set here). Nothing else: the hub's environment may hold secrets. */
static bool env_passed(const char *e)
{
    static const char *const names[] = { "PATH=", "LANG=", "LANGUAGE=", "TZ=", "LD_LIBRARY_PATH=", "PYTHONPATH=" };
    static const char *const prefixes[] = { "LC_", "ASAN_", "UBSAN_", "LSAN_", "MSAN_", "TSAN_", "PLEXUS_" };
    static const char *const ours[] = { PLX_ENV_ENDPOINT "=", PLX_ENV_DEVICE_NAME "=", PLX_ENV_FD_SOCKET "=",
                                        PLX_ENV_ATTACH "=", PLX_ENV_STATE_FD "=", PLX_ENV_ATTACH_KEY "=",
                                        PLX_ENV_CURVE_SECRET "=", PLX_ENV_CURVE_SERVER "=" };
    for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++)
        if (!strncmp(e, ours[i], strlen(ours[i])))
            return false;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (!strncmp(e, names[i], strlen(names[i])))
            return true;
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
        if (!strncmp(e, prefixes[i], strlen(prefixes[i])))
            return true;
    return false;
}

int
hub_dev_spawn(hub_device *d, const hub_device_config *cfg, Error **errp)
{
    hub_devmgr *m = d->m;
    char *runner = NULL, *found = NULL, *path = NULL, *plugin = NULL;
    const char *prog = cfg->program;
    if (!prog) {
        runner = find_runner();
        prog = runner;
    }
    found = prog ? resolve_program(prog) : NULL;
    /* Absolute and resolved: the jail shows the program at this path. */
    path = found ? realpath(found, NULL) : NULL;
    if (!path) {
        error_setg(errp, "device '%s': cannot find the program '%s'%s", d->name, prog ? prog : "(none)",
                   cfg->program ? "" : " (set PLEXUS_DEVICE_RUNNER or install plexus-device-runner)");
        free(runner);
        free(found);
        return -ENOENT;
    }
    if (cfg->plugin && !(plugin = realpath(cfg->plugin, NULL))) {
        error_setg(errp, "device '%s': plugin '%s': %s", d->name, cfg->plugin, strerror(errno));
        free(runner);
        free(found);
        free(path);
        return -ENOENT;
    }

    int sv[2] = { -1, -1 }, out[2] = { -1, -1 }, status[2] = { -1, -1 };
    int devnull = -1, ret = -ENOMEM;
    char **argv = NULL, **envp = NULL;
    char *e_ep = NULL, *e_name = NULL, *e_fd = NULL, *e_state = NULL, *e_csec = NULL, *e_cserv = NULL;
    hub_jail *jail = NULL;
    if ((!d->inc.tcp && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) ||
        pipe2(out, O_CLOEXEC) < 0 || pipe2(status, O_CLOEXEC | O_NONBLOCK) < 0 ||
        (devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
        error_setg(errp, "device '%s': cannot make its descriptors: %s", d->name, strerror(errno));
        ret = -errno;
        goto out;
    }
    fcntl(out[0], F_SETFL, O_NONBLOCK);

    /* argv and environment, built before the clone. */
    size_t n_extra = 0;
    while (cfg->argv && cfg->argv[n_extra])
        n_extra++;
    argv = calloc(n_extra + 3, sizeof(char *));
    size_t n_env = 0;
    while (environ[n_env])
        n_env++;
    envp = calloc(n_env + 8, sizeof(char *));
    if (!d->inc.tcp)
        hub_dev_make_state_block(d);
    if (d->state_fd >= 0 && asprintf(&e_state, PLX_ENV_STATE_FD "=%d", d->state_fd) < 0)
        e_state = NULL;
    if (d->inc.curve_given) {
        /* A tcp device the hub starts: the CURVE keys of this process, and the hub's public key. */
        char sec[PLX_CURVE_Z85], serv[PLX_CURVE_Z85];
        plx_curve_encode(d->inc.curve_secret, sec);
        plx_curve_encode(m->curve.public_key, serv);
        if (asprintf(&e_csec, PLX_ENV_CURVE_SECRET "=%s", sec) < 0)
            e_csec = NULL;
        if (asprintf(&e_cserv, PLX_ENV_CURVE_SERVER "=%s", serv) < 0)
            e_cserv = NULL;
    }
    if (!argv || !envp || asprintf(&e_ep, PLX_ENV_ENDPOINT "=%s", d->inc.endpoint) < 0 ||
        asprintf(&e_name, PLX_ENV_DEVICE_NAME "=%s", d->name) < 0 ||
        asprintf(&e_fd, PLX_ENV_FD_SOCKET "=%d", sv[1]) < 0) {
        error_setg(errp, "device '%s': out of memory", d->name);
        goto out;
    }
    size_t a = 0;
    argv[a++] = (char *)prog;
    if (plugin)
        argv[a++] = plugin;
    for (size_t i = 0; i < n_extra; i++)
        argv[a++] = (char *)cfg->argv[i];
    size_t k = 0;
    for (size_t i = 0; i < n_env; i++)
        if (env_passed(environ[i]))
            envp[k++] = environ[i];
    envp[k++] = e_ep;
    envp[k++] = e_name;
    if (sv[1] >= 0)
        envp[k++] = e_fd;
    if (e_state)
        envp[k++] = e_state;
    if (e_csec && e_cserv) {
        envp[k++] = e_csec;
        envp[k++] = e_cserv;
    }
    int inherit[HUB_JAIL_MAX_INHERIT];
    unsigned n_inherit = 0;
    if (!d->inc.tcp && !cfg->ram_by_message)
        for (size_t i = 0; i < m->env.n_ram && n_inherit < HUB_JAIL_MAX_INHERIT - 2; i++)
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

    const char *sock = d->inc.ipc_path ? d->inc.ipc_path
                       : cfg->endpoint && !strncmp(cfg->endpoint, "ipc://", 6) ? cfg->endpoint + 6 : NULL;
    jail = hub_jail_plan(d, cfg, path, plugin, sock, d->inc.tcp, errp);
    if (!jail) {
        ret = -EPERM;
        goto out;
    }
    hub_jail_exec x = { .path = path, .argv = argv, .envp = envp, .in_fd = devnull, .out_fd = out[1],
                        .inherit = inherit, .n_inherit = n_inherit, .status_fd = status[1] };
    pid_t pid = hub_jail_clone(jail, errp);
    if (pid == 0)
        hub_jail_run(jail, &x);
    if (pid < 0) {
        ret = pid;
        goto out;
    }
    d->inc.pid = pid;
    d->inc.spawned = true;
    d->inc.jail = hub_jail_layers(jail);
    d->inc.pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    d->inc.out_fd = out[0];
    out[0] = -1;
    d->inc.status_fd = status[0];
    status[0] = -1;
    if (sv[1] >= 0) {
        d->inc.fdsock = sv[0];
        sv[0] = -1;
    }
    ret = 0;
out:
    for (int i = 0; i < 2; i++) {
        if (sv[i] >= 0)
            close(sv[i]);
        if (out[i] >= 0)
            close(out[i]);
        if (status[i] >= 0)
            close(status[i]);
    }
    if (devnull >= 0)
        close(devnull);
    hub_jail_free(jail);
    free(e_ep);
    free(e_name);
    free(e_fd);
    free(e_state);
    free(e_csec);
    free(e_cserv);
    free(argv);
    free(envp);
    free(runner);
    free(found);
    free(path);
    free(plugin);
    return ret;
}
