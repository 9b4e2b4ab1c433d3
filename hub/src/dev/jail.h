/*
 * The jail every device process the hub starts runs in (jail.c), built from outside before the device's code
 * runs: namespaces (user when unprivileged; pid, mount, ipc, uts; network unless the device needs tcp), a
 * private read-only root holding the program, its libraries and /usr, its own /proc and three /dev nodes, every
 * capability dropped, no_new_privs, Landlock, and a seccomp filter of what no device needs. With a pid
 * namespace the first process is a small reaper (the jail's pid 1): the device is its only child, and when the
 * device ends the reaper reports how on a pipe and exits, which ends everything the device started.
 *
 * What the kernel offers is probed once per manager (hub_jail_env); a layer it refuses is reported once, and a
 * device with `strict` is refused instead.
 */
#ifndef PLEXUS_HUB_DEV_JAIL_H
#define PLEXUS_HUB_DEV_JAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "dev/devmgr.h"

struct sock_filter;

/* The layers (bits of hub_jail_layers()). */
#define HUB_JAIL_USER 0x001u        /* a user namespace (unprivileged hubs) */
#define HUB_JAIL_PID 0x002u
#define HUB_JAIL_MOUNT 0x004u       /* ... and the private root */
#define HUB_JAIL_IPC 0x008u
#define HUB_JAIL_UTS 0x010u
#define HUB_JAIL_NET 0x020u
#define HUB_JAIL_LANDLOCK 0x040u
#define HUB_JAIL_SECCOMP 0x080u
#define HUB_JAIL_CAPS 0x100u        /* capabilities dropped (nothing to drop for an unprivileged hub without a
                                       user namespace: set then too) */
#define HUB_JAIL_NNP 0x200u

/* What the kernel offers the hub's devices, found out once per manager. */
typedef struct hub_jail_env {
    bool probed;
    bool root;                      /* the hub has CAP_SYS_ADMIN: namespaces without a user namespace */
    bool setpcap;                   /* ... and CAP_SETPCAP: it can empty a child's bounding set */
    int landlock_abi;               /* 0: none (the error in landlock_errno) */
    int landlock_errno;
    int ns_errno;                   /* the kernel refused new namespaces (0: not seen) */
    int seccomp_errno;              /* the base filter could not be built */
    struct sock_filter *bpf[2];     /* the base filter: [0] with a pid namespace, [1] without */
    unsigned short bpf_len[2];
    char *root_dir;                 /* the jails' mount point (run_dir/jail), empty in the hub's namespace */
    unsigned reported;              /* layers whose absence was logged */
} hub_jail_env;

typedef struct hub_jail hub_jail;

#define HUB_JAIL_MAX_INHERIT 64       /* descriptors a device inherits, at most */

/* What the device process gets: its program, arguments, environment and descriptors. */
typedef struct hub_jail_exec {
    const char *path;               /* absolute; the same inside the jail */
    char *const *argv;
    char *const *envp;
    int in_fd, out_fd;              /* stdin; stdout and stderr */
    const int *inherit;             /* kept open (sorted ascending) */
    unsigned n_inherit;
    int status_fd;                  /* the write end of the status pipe (see hub_jail_read_status) */
} hub_jail_exec;

void hub_jail_env_init(hub_jail_env *e, const char *run_dir);
void hub_jail_env_fini(hub_jail_env *e);

/*
 * Plan the jail of @d's next process: what it sees (the program @exec_path, the plugin @plugin_path or NULL,
 * their libraries, @cfg's sandbox paths, the channel's socket @ipc_path or NULL), its layers. A layer the kernel
 * lacks is logged once per manager, or fails the plan if @cfg->strict. NULL with @errp set on failure.
 */
hub_jail *hub_jail_plan(hub_device *d, const hub_device_config *cfg, const char *exec_path, const char *plugin_path,
                        const char *ipc_path, bool tcp, Error **errp);
void hub_jail_free(hub_jail *j);

/*
 * clone() the device's first process in the plan's namespaces: 0 in the child (which calls hub_jail_run), its pid
 * in the hub, or a negative errno with @errp set. Namespaces the kernel refuses are left out (said once), or fail
 * a strict device.
 */
pid_t hub_jail_clone(hub_jail *j, Error **errp);
/* The kernel refused the namespaces (@err): go on without them, or fail (@errp) when strict. */
int hub_jail_without_namespaces(hub_jail *j, int err, Error **errp);
/* The layers the plan applies (HUB_JAIL_* bits) and their names ("user pid mount ... seccomp"). */
unsigned hub_jail_layers(const hub_jail *j);
const char *hub_jail_describe(unsigned layers, char *buf, size_t len);

/* In the child of clone(hub_jail_clone_flags(j)): build the jail, start the device. Never returns. Only
 * async-signal-safe calls. */
void hub_jail_run(const hub_jail *j, const hub_jail_exec *x) __attribute__((noreturn));

/*
 * The status pipe's word on how the device ended: a wait status (true, *@status set), or a set-up failure (its
 * text in @why). False if the pipe holds nothing (the jail's first process itself was killed).
 */
bool hub_jail_read_status(int fd, int *status, char *why, size_t why_len);

#endif
