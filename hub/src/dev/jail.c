/*
 * The jail of a device process (jail.h): planned in the hub, built in the child before exec.
 *
 * Filesystem scope: both namespaces and Landlock, for different reasons. The mount namespace with a private root
 * is what hides everything (the hub's /proc, the run directory, the user's files): the device sees a tmpfs with
 * read-only binds of /usr, its program and libraries and the paths the machine grants, a /proc of its own pid
 * namespace only, and /dev/null, /dev/zero, /dev/urandom. It needs a user namespace when the hub is not
 * privileged, which some kernels refuse. Landlock needs no privilege and works on those kernels too: without
 * namespaces it is the only filesystem scope (the same paths, readable or writable as granted); with them it is a
 * second layer that also confines signals and abstract UNIX sockets to the device (ABI 6), TCP to the hub's port
 * (ABI 4) and ioctls on device files (ABI 5).
 */
#define _GNU_SOURCE
#include "dev/jail.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "dev/device.h"

/* ---- Landlock's interface (newer than some distributions' headers) ----------------------------------------- */

#define LL_CREATE_RULESET_VERSION 1u
#define LL_RULE_PATH_BENEATH 1
#define LL_RULE_NET_PORT 2
#define LL_FS_EXECUTE (1ull << 0)
#define LL_FS_WRITE_FILE (1ull << 1)
#define LL_FS_READ_FILE (1ull << 2)
#define LL_FS_READ_DIR (1ull << 3)
#define LL_FS_REFER (1ull << 13)       /* ABI 2 */
#define LL_FS_TRUNCATE (1ull << 14)    /* ABI 3 */
#define LL_FS_IOCTL_DEV (1ull << 15)   /* ABI 5 */
#define LL_NET_BIND_TCP (1ull << 0)    /* ABI 4 */
#define LL_NET_CONNECT_TCP (1ull << 1)
#define LL_SCOPE_ABSTRACT_UNIX (1ull << 0) /* ABI 6 */
#define LL_SCOPE_SIGNAL (1ull << 1)
#define LL_FILE_RIGHTS (LL_FS_EXECUTE | LL_FS_WRITE_FILE | LL_FS_READ_FILE | LL_FS_TRUNCATE | LL_FS_IOCTL_DEV)
#define LL_RO (LL_FS_EXECUTE | LL_FS_READ_FILE | LL_FS_READ_DIR)

struct ll_ruleset_attr { uint64_t fs, net, scoped; };
struct ll_path_attr { uint64_t allowed; int32_t parent_fd; } __attribute__((packed));
struct ll_net_attr { uint64_t allowed; uint64_t port; };

/* ---- the plan --------------------------------------------------------------------------------------------- */

/* A path the device sees: bound from the host (or a symlink) at the same place. */
#define P_RW 1u         /* writable (else read-only) */
#define P_DEV 2u        /* a device node: not nodev */
#define P_DIR 4u
#define P_LINK 8u       /* a symlink to src */
#define P_NOBIND 16u    /* a Landlock rule only (/proc: mounted fresh) */

typedef struct jpath {
    char *dst;          /* where it appears (absolute, normalised) */
    char *src;          /* the host's file (resolved), or the link's target */
    char *full;         /* root_dir + dst: where the child mounts it */
    unsigned flags;
} jpath;

struct hub_jail {
    unsigned long ns;               /* CLONE_NEW* the plan asks for */
    unsigned layers;
    bool strict;
    hub_devmgr *m;
    const char *dev_name;
    char uid_map[48], gid_map[48];
    const char *root;               /* root_dir (hub_jail_env) */
    char *proc_full;
    jpath *paths;
    size_t n_paths, cap_paths;
    char **dirs;                    /* mount points to create in the root, parents first */
    size_t n_dirs, cap_dirs;
    int landlock_abi;
    uint16_t tcp_port;              /* Landlock: the one port a tcp device may connect to */
    bool ptys;                      /* the machine gives it /dev/ptmx: it may open its ptys' other ends */
    int pts_fd;                     /* in the child: the host's /dev/pts (O_PATH), opened before pivot_root */
    bool setpcap;                   /* the hub holds CAP_SETPCAP (and no user namespace is made) */
    struct sock_filter *bpf;        /* the hub's copy of the base filter (the child patches its own copy) */
    unsigned short bpf_len;
};

/* Bits of a hub_jail_env filter's "own pid" comparisons: replaced in the child by getpid(). */
#define SELF_MAGIC 0x5ec0f00du

/* ---- the base seccomp filter ------------------------------------------------------------------------------ */

/* What no device needs, whatever its language: other processes' memory, the kernel's configuration, new
 * namespaces and mounts, keyrings, io_uring (which would bypass this filter), and pieces of kernel attack
 * surface. A call here raises SIGSYS (the SDK reports it on its fd socket and exits). */
static const char *const denied_calls[] = {
#if !defined(__SANITIZE_ADDRESS__)
    /* LeakSanitizer stops the world with ptrace: builds with sanitizers leave these to the pid namespace */
    "ptrace", "process_vm_readv", "process_vm_writev",
#endif
    "kcmp", "pidfd_getfd", "process_madvise", "pidfd_send_signal", "tkill",
    "mount", "umount2", "pivot_root", "chroot", "unshare", "setns", "fsopen", "fsconfig", "fsmount", "fspick",
    "move_mount", "open_tree", "mount_setattr", "open_by_handle_at", "name_to_handle_at",
    "bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "acct", "swapon", "swapoff",
    "reboot", "syslog", "quotactl", "quotactl_fd", "lookup_dcookie", "iopl", "ioperm", "vhangup",
    "move_pages", "migrate_pages",
};

/* Terminal ioctls that reach beyond the device (typing into a terminal, redirecting the console, line
 * disciplines, process groups) and the ioctl forms of O_ASYNC/F_SETOWN. */
static const unsigned long denied_ioctls[] = {
    TIOCSTI, TIOCLINUX, TIOCCONS, TIOCSCTTY, TIOCSETD, TIOCSPGRP, FIOASYNC, FIOSETOWN, SIOCSPGRP,
};

static int add(scmp_filter_ctx ctx, uint32_t action, const char *name, unsigned n, struct scmp_arg_cmp a,
               struct scmp_arg_cmp b)
{
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR)
        return 0;       /* not a system call of this architecture */
    if (n == 0)
        return seccomp_rule_add(ctx, action, nr, 0);
    return n == 1 ? seccomp_rule_add(ctx, action, nr, 1, a) : seccomp_rule_add(ctx, action, nr, 2, a, b);
}

static int build_filter(bool pidns, struct sock_filter **out, unsigned short *len)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx)
        return -ENOMEM;
    struct scmp_arg_cmp none = { 0 };
    int r = 0;
    for (size_t i = 0; i < sizeof(denied_calls) / sizeof(denied_calls[0]) && r == 0; i++)
        r = add(ctx, SCMP_ACT_TRAP, denied_calls[i], 0, none, none);
    /* clone3's flags are in memory a filter cannot read: C libraries fall back to clone, whose flags it can */
    if (r == 0)
        r = add(ctx, SCMP_ACT_ERRNO(ENOSYS), "clone3", 0, none, none);
    static const unsigned long ns_flags[] = { CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC,
                                              CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET, 0x80 /* NEWTIME */ };
    for (size_t i = 0; i < sizeof(ns_flags) / sizeof(ns_flags[0]) && r == 0; i++)
        r = add(ctx, SCMP_ACT_TRAP, "clone", 1, SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]), none);
    /* Signals to itself only (tgkill reaches only the threads of the process named first). */
    static const char *const sig_calls[] = { "kill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo" };
    for (size_t i = 0; i < sizeof(sig_calls) / sizeof(sig_calls[0]) && r == 0; i++)
        r = add(ctx, SCMP_ACT_TRAP, sig_calls[i], 1, SCMP_A0(SCMP_CMP_NE, SELF_MAGIC, 0), none);
    for (size_t i = 0; i < sizeof(denied_ioctls) / sizeof(denied_ioctls[0]) && r == 0; i++)
        r = add(ctx, SCMP_ACT_TRAP, "ioctl", 1, SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, denied_ioctls[i]), none);
    /* SIGIO to another process: F_SETOWN, and O_ASYNC */
    if (r == 0)
        r = add(ctx, SCMP_ACT_TRAP, "fcntl", 1, SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, F_SETOWN), none);
    if (r == 0)
        r = add(ctx, SCMP_ACT_TRAP, "fcntl", 1, SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, F_SETOWN_EX), none);
    if (r == 0)
        r = add(ctx, SCMP_ACT_TRAP, "fcntl", 2, SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, F_SETFL),
                SCMP_A2(SCMP_CMP_MASKED_EQ, O_ASYNC, O_ASYNC));
    if (!pidns) {
        /* Without a pid namespace nothing would end what a device starts, and other processes are named by
         * their real pids: no new processes (threads only), and scheduling and limits of itself only. */
        if (r == 0)
            r = add(ctx, SCMP_ACT_TRAP, "clone", 1, SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, 0), none);
        static const char *const forks[] = { "fork", "vfork" };
        for (size_t i = 0; i < 2 && r == 0; i++)
            r = add(ctx, SCMP_ACT_TRAP, forks[i], 0, none, none);
        static const char *const by_pid[] = { "sched_setaffinity", "sched_setparam", "sched_setattr",
                                              "prlimit64" };
        for (size_t i = 0; i < sizeof(by_pid) / sizeof(by_pid[0]) && r == 0; i++)
            r = add(ctx, SCMP_ACT_TRAP, by_pid[i], 1, SCMP_A0(SCMP_CMP_NE, 0, 0), none);
        /* ZeroMQ's threads set their own policy by thread id (and abort if refused): SCHED_OTHER, the policy
         * every process starts with and no change of its niceness, may be set on any */
        if (r == 0)
            r = add(ctx, SCMP_ACT_TRAP, "sched_setscheduler", 2, SCMP_A0(SCMP_CMP_NE, 0, 0),
                    SCMP_A1(SCMP_CMP_NE, SCHED_OTHER, 0));
        static const char *const by_who[] = { "setpriority", "ioprio_set" };
        for (size_t i = 0; i < 2 && r == 0; i++)
            r = add(ctx, SCMP_ACT_TRAP, by_who[i], 1, SCMP_A1(SCMP_CMP_NE, 0, 0), none);
    }
    int fd = -1;
    if (r == 0 && (fd = memfd_create("plexus-jail-bpf", MFD_CLOEXEC)) < 0)
        r = -errno;
    if (r == 0)
        r = seccomp_export_bpf(ctx, fd);
    seccomp_release(ctx);
    off_t size = r == 0 ? lseek(fd, 0, SEEK_END) : 0;
    struct sock_filter *prog = NULL;
    if (r == 0 && (size <= 0 || size % (off_t)sizeof(*prog) || size / (off_t)sizeof(*prog) > USHRT_MAX))
        r = -EINVAL;
    if (r == 0 && !(prog = malloc((size_t)size)))
        r = -ENOMEM;
    if (r == 0 && pread(fd, prog, (size_t)size, 0) != size)
        r = -EIO;
    if (fd >= 0)
        close(fd);
    if (r < 0) {
        free(prog);
        return r;
    }
    *out = prog;
    *len = (unsigned short)(size / (off_t)sizeof(*prog));
    return 0;
}

/* ---- what the kernel offers ------------------------------------------------------------------------------ */

void
hub_jail_env_init(hub_jail_env *e, const char *run_dir)
{
    *e = (hub_jail_env){ 0 };
    if (asprintf(&e->root_dir, "%s/jail", run_dir) < 0)
        e->root_dir = NULL;
    else
        mkdir(e->root_dir, 0700);
}

void
hub_jail_env_fini(hub_jail_env *e)
{
    if (e->root_dir) {
        rmdir(e->root_dir);
        free(e->root_dir);
    }
    free(e->bpf[0]);
    free(e->bpf[1]);
    *e = (hub_jail_env){ 0 };
}

static bool have_cap(int cap)
{
    struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
    struct __user_cap_data_struct c[2];
    if (syscall(SYS_capget, &h, c) < 0)
        return false;
    return c[CAP_TO_INDEX(cap)].effective & CAP_TO_MASK(cap);
}

static void probe(hub_jail_env *e)
{
    if (e->probed)
        return;
    e->probed = true;
    e->root = have_cap(CAP_SYS_ADMIN);
    e->setpcap = have_cap(CAP_SETPCAP);
    long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LL_CREATE_RULESET_VERSION);
    e->landlock_abi = abi > 0 ? (int)abi : 0;
    e->landlock_errno = abi > 0 ? 0 : errno;
    int r = build_filter(true, &e->bpf[0], &e->bpf_len[0]);
    if (r == 0)
        r = build_filter(false, &e->bpf[1], &e->bpf_len[1]);
    e->seccomp_errno = r < 0 ? -r : 0;
}

const char *
hub_jail_describe(unsigned layers, char *buf, size_t len)
{
    static const char *const names[] = { "user", "pid", "mount", "ipc", "uts", "net", "landlock", "seccomp",
                                         "caps", "no_new_privs" };
    size_t off = 0;
    buf[0] = 0;
    for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (layers & (1u << i) && off < len)
            off += (size_t)snprintf(buf + off, len - off, "%s%s", off ? " " : "", names[i]);
    return buf;
}

/* A layer the kernel refuses: said once per manager; a strict device is refused. */
static int missing(hub_jail *j, unsigned layer, const char *what, int err, Error **errp)
{
    hub_jail_env *e = &j->m->jail;
    if (j->strict) {
        error_setg(errp, "device '%s': sandbox: strict, but %s (%s)", j->dev_name, what, strerror(err));
        return -EPERM;
    }
    if (!(e->reported & layer)) {
        e->reported |= layer;
        hub_dev_log(j->m, NULL, PLX_LOG_WARNING, "sandbox: %s (%s); devices run without it (sandbox: strict "
                    "refuses instead)", what, strerror(err));
    }
    return 0;
}

/* ---- the paths a device sees ------------------------------------------------------------------------------ */

/* @p made absolute (against the cwd), with "//", "." and ".." resolved as words (no links followed). */
static char *normalise(const char *p)
{
    char cwd[PATH_MAX];
    char *s = NULL;
    if (p[0] != '/') {
        if (!getcwd(cwd, sizeof(cwd)) || asprintf(&s, "%s/%s", cwd, p) < 0)
            return NULL;
    } else if (!(s = strdup(p))) {
        return NULL;
    }
    size_t o = 0;
    for (const char *r = s; *r;) {
        while (*r == '/')
            r++;
        size_t l = strcspn(r, "/");
        if (l == 0 || (l == 1 && r[0] == '.')) {
            /* nothing */
        } else if (l == 2 && r[0] == '.' && r[1] == '.') {
            while (o > 0 && s[o - 1] != '/')
                o--;
            if (o > 0)
                o--;
        } else {
            s[o++] = '/';
            memmove(s + o, r, l);
            o += l;
        }
        r += l;
    }
    if (o == 0)
        s[o++] = '/';
    s[o] = 0;
    return s;
}

static bool under(const char *path, const char *dir)
{
    size_t l = strlen(dir);
    return strncmp(path, dir, l) == 0 && (path[l] == '/' || path[l] == 0 || (l == 1 && dir[0] == '/'));
}

/* Make @path (of the kind and rights in @flags) visible. @required: a missing path is an error. */
static int add_path(hub_jail *j, const char *path, unsigned flags, bool required, Error **errp)
{
    char *dst = normalise(path);
    if (!dst) {
        error_setg(errp, "device '%s': sandbox path '%s': %s", j->dev_name, path, strerror(errno));
        return -EINVAL;
    }
    struct stat st;
    char *src = NULL;
    if (!(flags & P_LINK)) {
        if (!(src = realpath(dst, NULL)) || stat(src, &st) < 0) {
            int e = errno;
            free(src);
            free(dst);
            if (!required)
                return 0;
            error_setg(errp, "device '%s': sandbox path '%s': %s", j->dev_name, path, strerror(e));
            return -e;
        }
        /* Under a top-level link (/lib -> usr/lib on a merged /usr), which the jail has as a link too: the
         * resolved path is where it is bound. */
        const char *second = strchr(dst + 1, '/');
        char *top = second ? strndup(dst, (size_t)(second - dst)) : NULL;
        struct stat lt;
        if (top && strcmp(src, dst) && lstat(top, &lt) == 0 && S_ISLNK(lt.st_mode)) {
            char *r = strdup(src);
            if (r) {
                free(dst);
                dst = r;
            }
        }
        free(top);
        if (S_ISDIR(st.st_mode))
            flags |= P_DIR;
        if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) || under(dst, "/dev"))
            flags |= P_DEV;
    }
    /* Already there (the same path, or inside a directory bound with at least these rights): nothing to do. */
    for (size_t i = 0; i < j->n_paths; i++) {
        jpath *o = &j->paths[i];
        if (o->flags & P_NOBIND)
            continue;
        if (strcmp(o->dst, dst) == 0 || (o->flags & P_DIR && under(dst, o->dst) && (o->flags & P_RW || !(flags & P_RW)))) {
            o->flags |= flags & P_RW && strcmp(o->dst, dst) == 0 ? P_RW : 0;
            free(src);
            free(dst);
            return 0;
        }
    }
    if (j->n_paths == j->cap_paths) {
        size_t n = j->cap_paths ? j->cap_paths * 2 : 32;
        jpath *v = realloc(j->paths, n * sizeof(*v));
        if (!v)
            goto oom;
        j->paths = v;
        j->cap_paths = n;
    }
    jpath *p = &j->paths[j->n_paths];
    *p = (jpath){ .dst = dst, .src = src, .flags = flags };
    if (asprintf(&p->full, "%s%s", j->root, dst) < 0)
        goto oom;
    j->n_paths++;
    return 0;
oom:
    free(src);
    free(dst);
    error_setg(errp, "device '%s': out of memory", j->dev_name);
    return -ENOMEM;
}

static int add_link(hub_jail *j, const char *path, const char *target, Error **errp)
{
    size_t n = j->n_paths;
    int r = add_path(j, path, P_LINK, true, errp);
    if (r == 0 && j->n_paths > n && !(j->paths[n].src = strdup(target))) {
        error_setg(errp, "device '%s': out of memory", j->dev_name);
        return -ENOMEM;
    }
    return r;
}

/* The run-time search paths an ELF file names ($ORIGIN expanded), so its own libraries are there too. */
static int add_runpaths(hub_jail *j, const char *file, Error **errp)
{
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    char *origin = realpath(file, NULL);
    char *slash = origin ? strrchr(origin, '/') : NULL;
    if (slash)
        *slash = 0;
    int r = 0;
    elf_version(EV_CURRENT);
    Elf *e = elf_begin(fd, ELF_C_READ, NULL);
    Elf_Scn *scn = NULL;
    while (e && r == 0 && (scn = elf_nextscn(e, scn))) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_DYNAMIC)
            continue;
        Elf_Data *data = elf_getdata(scn, NULL);
        for (size_t i = 0; data && sh.sh_entsize && i < sh.sh_size / sh.sh_entsize && r == 0; i++) {
            GElf_Dyn dyn;
            if (!gelf_getdyn(data, (int)i, &dyn) || (dyn.d_tag != DT_RUNPATH && dyn.d_tag != DT_RPATH))
                continue;
            const char *rp = elf_strptr(e, sh.sh_link, dyn.d_un.d_val);
            char *list = rp ? strdup(rp) : NULL, *save = NULL;
            for (char *d = list ? strtok_r(list, ":", &save) : NULL; d && r == 0; d = strtok_r(NULL, ":", &save)) {
                char *x = NULL;
                if (!strncmp(d, "$ORIGIN", 7) || !strncmp(d, "${ORIGIN}", 9)) {
                    if (origin && asprintf(&x, "%s%s", origin, d + (d[1] == '{' ? 9 : 7)) < 0)
                        x = NULL;
                    d = x;
                }
                if (d && d[0] == '/')
                    r = add_path(j, d, 0, false, errp);
                free(x);
            }
            free(list);
        }
    }
    if (e)
        elf_end(e);
    close(fd);
    free(origin);
    return r;
}

/* A program: the file, an interpreter it names (#!), and their libraries' search paths. */
static int add_program(hub_jail *j, const char *file, Error **errp)
{
    int r = add_path(j, file, 0, true, errp);
    char head[256];
    int fd = r == 0 ? open(file, O_RDONLY | O_CLOEXEC) : -1;
    ssize_t n = fd >= 0 ? read(fd, head, sizeof(head) - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (n > 2 && head[0] == '#' && head[1] == '!') {
        head[n] = 0;
        char *s = head + 2;
        while (*s == ' ' || *s == '\t')
            s++;
        s[strcspn(s, " \t\n")] = 0;
        if (s[0] == '/' && (r = add_path(j, s, 0, false, errp)) == 0)
            r = add_runpaths(j, s, errp);
    } else if (r == 0) {
        r = add_runpaths(j, file, errp);
    }
    return r;
}

static int add_env_dirs(hub_jail *j, const char *var, Error **errp)
{
    const char *v = getenv(var);
    char *list = v ? strdup(v) : NULL, *save = NULL;
    int r = 0;
    for (char *d = list ? strtok_r(list, ":", &save) : NULL; d && r == 0; d = strtok_r(NULL, ":", &save))
        if (d[0] == '/')
            r = add_path(j, d, 0, false, errp);
    free(list);
    return r;
}

/* The system: /usr, and the top-level library and program directories (on a merged /usr these are links). */
static int add_system(hub_jail *j, bool tcp, Error **errp)
{
    static const char *const tops[] = { "/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin" };
    static const char *const etc[] = { "/etc/ld.so.cache", "/etc/localtime" };
    static const char *const etc_net[] = { "/etc/hosts", "/etc/nsswitch.conf", "/etc/resolv.conf" };
    int r = 0;
    for (size_t i = 0; i < sizeof(tops) / sizeof(tops[0]) && r == 0; i++) {
        struct stat st;
        char target[PATH_MAX];
        ssize_t n;
        if (lstat(tops[i], &st) < 0)
            continue;
        if (S_ISLNK(st.st_mode) && (n = readlink(tops[i], target, sizeof(target) - 1)) > 0) {
            target[n] = 0;
            r = add_link(j, tops[i], target, errp);
        } else if (S_ISDIR(st.st_mode)) {
            r = add_path(j, tops[i], 0, false, errp);
        }
    }
    for (size_t i = 0; i < sizeof(etc) / sizeof(etc[0]) && r == 0; i++)
        r = add_path(j, etc[i], 0, false, errp);
    for (size_t i = 0; tcp && i < sizeof(etc_net) / sizeof(etc_net[0]) && r == 0; i++)
        r = add_path(j, etc_net[i], 0, false, errp);
    if (r == 0)
        r = add_path(j, "/dev/null", P_RW, true, errp);
    if (r == 0)
        r = add_path(j, "/dev/zero", P_RW, false, errp);
    if (r == 0)
        r = add_path(j, "/dev/urandom", 0, false, errp);
    return r;
}

/* The directories to create in the jail's tmpfs for the mount points, parents first. */
static int plan_dirs(hub_jail *j)
{
    for (size_t i = 0; i < j->n_paths; i++) {
        const char *dst = j->paths[i].dst;
        for (const char *s = strchr(dst + 1, '/'); s; s = strchr(s + 1, '/')) {
            size_t l = (size_t)(s - dst);
            bool have = false;
            for (size_t k = 0; k < j->n_dirs && !have; k++)
                have = strlen(j->dirs[k]) == strlen(j->root) + l && !strncmp(j->dirs[k] + strlen(j->root), dst, l);
            for (size_t k = 0; k < j->n_paths && !have; k++)       /* inside a bound directory: it exists */
                have = j->paths[k].flags & P_DIR && !(j->paths[k].flags & P_NOBIND) &&
                       strlen(j->paths[k].dst) <= l && under(dst, j->paths[k].dst) &&
                       strncmp(dst, j->paths[k].dst, l) != 0;
            if (have)
                continue;
            if (j->n_dirs == j->cap_dirs) {
                size_t n = j->cap_dirs ? j->cap_dirs * 2 : 32;
                char **v = realloc(j->dirs, n * sizeof(*v));
                if (!v)
                    return -ENOMEM;
                j->dirs = v;
                j->cap_dirs = n;
            }
            if (asprintf(&j->dirs[j->n_dirs], "%s%.*s", j->root, (int)l, dst) < 0)
                return -ENOMEM;
            j->n_dirs++;
        }
    }
    return 0;
}

static int path_cmp(const void *a, const void *b)
{
    return strcmp(((const jpath *)a)->dst, ((const jpath *)b)->dst);
}

hub_jail *
hub_jail_plan(hub_device *d, const hub_device_config *cfg, const char *exec_path, const char *plugin_path,
              const char *ipc_path, bool tcp, Error **errp)
{
    hub_devmgr *m = d->m;
    hub_jail_env *e = &m->jail;
    probe(e);
    hub_jail *j = calloc(1, sizeof(*j));
    if (!j) {
        error_setg(errp, "device '%s': out of memory", d->name);
        return NULL;
    }
    j->m = m;
    j->dev_name = d->name;
    j->strict = cfg->strict;
    j->root = e->root_dir;
    j->ns = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | (tcp ? 0 : CLONE_NEWNET);
    if (!e->root)
        j->ns |= CLONE_NEWUSER;
    j->setpcap = !e->root || e->setpcap;      /* inside a user namespace it holds every capability there */
    j->bpf = e->bpf[0];
    j->bpf_len = e->bpf_len[0];
    j->layers = HUB_JAIL_PID | HUB_JAIL_MOUNT | HUB_JAIL_IPC | HUB_JAIL_UTS | (tcp ? 0 : HUB_JAIL_NET) |
                (e->root ? 0 : HUB_JAIL_USER) | HUB_JAIL_CAPS | HUB_JAIL_NNP;
    snprintf(j->uid_map, sizeof(j->uid_map), "%u %u 1", (unsigned)geteuid(), (unsigned)geteuid());
    snprintf(j->gid_map, sizeof(j->gid_map), "%u %u 1", (unsigned)getegid(), (unsigned)getegid());
    if (!e->root_dir || e->ns_errno) {
        if (hub_jail_without_namespaces(j, e->root_dir ? e->ns_errno : ENOMEM, errp) < 0)
            goto fail;
    }
    if (e->seccomp_errno) {
        if (missing(j, HUB_JAIL_SECCOMP, "no seccomp filter can be built", e->seccomp_errno, errp) < 0)
            goto fail;
    } else {
        j->layers |= HUB_JAIL_SECCOMP;
    }
    if (e->landlock_abi) {
        j->layers |= HUB_JAIL_LANDLOCK;
        j->landlock_abi = e->landlock_abi;
    } else if (missing(j, HUB_JAIL_LANDLOCK, "the kernel has no Landlock", e->landlock_errno, errp) < 0) {
        goto fail;
    }
    /* /dev/ptmx given as a file (files.c): the slave of a pty it makes is opened from the master (TIOCGPTPEER),
     * beneath the host's /dev/pts, which its jail has no path to. */
    for (size_t i = 0; i < cfg->n_files; i++) {
        struct stat st;
        if (cfg->files[i].path && stat(cfg->files[i].path, &st) == 0 && S_ISCHR(st.st_mode) &&
            major(st.st_rdev) == 5 && minor(st.st_rdev) == 2)
            j->ptys = true;
    }
    if (tcp && d->inc.endpoint) {
        const char *colon = strrchr(d->inc.endpoint, ':');
        j->tcp_port = colon ? (uint16_t)strtoul(colon + 1, NULL, 10) : 0;
    }

    int r = add_system(j, tcp, errp);
    if (r == 0)
        r = add_program(j, exec_path, errp);
    if (r == 0 && plugin_path)
        r = add_program(j, plugin_path, errp);
    if (r == 0)
        r = add_env_dirs(j, "LD_LIBRARY_PATH", errp);
    for (size_t i = 0; r == 0 && i < cfg->n_sandbox_read; i++)
        r = add_path(j, cfg->sandbox_read[i], 0, true, errp);
    for (size_t i = 0; r == 0 && i < cfg->n_sandbox_write; i++) {
        /* A file to write that does not exist yet is created, empty, so that it can be bound. */
        int fd = open(cfg->sandbox_write[i], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0644);
        if (fd >= 0)
            close(fd);
        r = add_path(j, cfg->sandbox_write[i], P_RW, true, errp);
    }
    if (r == 0 && ipc_path)
        r = add_path(j, ipc_path, P_RW, true, errp);
    if (r == 0)
        r = add_path(j, "/proc", P_NOBIND | P_DIR, true, errp);
    if (r < 0)
        goto fail;
    qsort(j->paths, j->n_paths, sizeof(*j->paths), path_cmp);
    if (asprintf(&j->proc_full, "%s/proc", j->root) < 0 || plan_dirs(j) < 0) {
        error_setg(errp, "device '%s': out of memory", d->name);
        goto fail;
    }
    return j;
fail:
    hub_jail_free(j);
    return NULL;
}

int
hub_jail_without_namespaces(hub_jail *j, int err, Error **errp)
{
    hub_jail_env *e = &j->m->jail;
    e->ns_errno = err;
    unsigned ns = HUB_JAIL_USER | HUB_JAIL_PID | HUB_JAIL_MOUNT | HUB_JAIL_IPC | HUB_JAIL_UTS | HUB_JAIL_NET;
    int r = missing(j, ns, e->root ? "the kernel refuses new namespaces: no pid, mount, ipc, uts and network "
                                     "namespaces, no private root"
                                   : "the kernel refuses user namespaces: no pid, mount, ipc, uts and network "
                                     "namespaces, no private root", err, errp);
    if (r < 0)
        return r;
    j->ns = 0;
    j->layers &= ~ns;
    j->setpcap = e->setpcap;
    j->bpf = e->bpf[1];
    j->bpf_len = e->bpf_len[1];
    return 0;
}

void
hub_jail_free(hub_jail *j)
{
    if (!j)
        return;
    for (size_t i = 0; i < j->n_paths; i++) {
        free(j->paths[i].dst);
        free(j->paths[i].src);
        free(j->paths[i].full);
    }
    free(j->paths);
    for (size_t i = 0; i < j->n_dirs; i++)
        free(j->dirs[i]);
    free(j->dirs);
    free(j->proc_full);
    free(j);
}

unsigned
hub_jail_layers(const hub_jail *j)
{
    return j->layers;
}

/* ---- in the child: only system calls from here on --------------------------------------------------------- */

/* A set-up step failed: 'E', the errno, the length and the step's words on the status pipe, then exit. */
static void __attribute__((noreturn)) fail(int fd, const char *step, const char *path, int err)
{
    char rec[256];
    size_t n = 2 + sizeof(err);
    rec[0] = 'E';
    memcpy(rec + 1, &err, sizeof(err));
    for (const char *s = step; s && *s && n < sizeof(rec); s++)
        rec[n++] = *s;
    if (path && n < sizeof(rec) - 1) {
        rec[n++] = ' ';
        for (const char *s = path; *s && n < sizeof(rec); s++)
            rec[n++] = *s;
    }
    rec[1 + sizeof(err)] = (char)(n - 2 - sizeof(err));
    if (write(fd, rec, n) < 0) {
        /* nobody to tell */
    }
    _exit(126);
}

static int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

static int set_mount_attr(const char *path, uint64_t set, bool recursive)
{
    struct mount_attr a = { .attr_set = set };
    if (syscall(SYS_mount_setattr, AT_FDCWD, path, recursive ? AT_RECURSIVE : 0, &a, sizeof(a)) == 0)
        return 0;
    if (errno != ENOSYS)
        return -1;
    /* Kernels before 5.12: a remount must keep the flags the source's mount locks (nosuid, nodev, noexec). */
    unsigned long fl = MS_REMOUNT | MS_BIND | (set & MOUNT_ATTR_RDONLY ? MS_RDONLY : 0) |
                       (set & MOUNT_ATTR_NOSUID ? MS_NOSUID : 0) | (set & MOUNT_ATTR_NODEV ? MS_NODEV : 0);
    if (mount(NULL, path, NULL, fl, NULL) == 0)
        return 0;
    return mount(NULL, path, NULL, fl | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
}

/* The private root: a tmpfs with the planned paths bound into it, /proc, then pivot_root into it. */
static void build_root(const hub_jail *j, int sfd)
{
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        fail(sfd, "cannot make the mount table private", NULL, errno);
    if (mount("tmpfs", j->root, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=64k,nr_inodes=4096,mode=0755") < 0)
        fail(sfd, "cannot mount the root tmpfs on", j->root, errno);
    for (size_t i = 0; i < j->n_dirs; i++)
        if (mkdir(j->dirs[i], 0755) < 0 && errno != EEXIST)
            fail(sfd, "cannot create", j->dirs[i], errno);
    for (size_t i = 0; i < j->n_paths; i++) {
        const jpath *p = &j->paths[i];
        if (p->flags & P_NOBIND)
            continue;
        if (p->flags & P_LINK) {
            if (symlink(p->src, p->full) < 0 && errno != EEXIST)
                fail(sfd, "cannot link", p->full, errno);
            continue;
        }
        if (p->flags & P_DIR) {
            if (mkdir(p->full, 0755) < 0 && errno != EEXIST)
                fail(sfd, "cannot create", p->full, errno);
        } else {
            int fd = open(p->full, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
            if (fd >= 0)
                close(fd);
            else if (errno != EEXIST && errno != EROFS && errno != EACCES)
                fail(sfd, "cannot create", p->full, errno);
        }
        if (mount(p->src, p->full, NULL, MS_BIND | MS_REC, NULL) < 0)
            fail(sfd, "cannot bind", p->src, errno);
        uint64_t attr = MOUNT_ATTR_NOSUID | (p->flags & P_RW ? 0 : MOUNT_ATTR_RDONLY) |
                        (p->flags & P_DEV ? 0 : MOUNT_ATTR_NODEV);
        if (set_mount_attr(p->full, attr, true) < 0)
            fail(sfd, "cannot make read-only", p->full, errno);
    }
    if (mkdir(j->proc_full, 0555) < 0 && errno != EEXIST)
        fail(sfd, "cannot create", j->proc_full, errno);
    /* Its own processes only (subset=pid: no /proc/sys, /proc/sysrq-trigger, ...; kernels before 5.8 lack it) */
    unsigned long pf = MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY;
    if (mount("proc", j->proc_full, "proc", pf, "subset=pid") < 0 && mount("proc", j->proc_full, "proc", pf, NULL) < 0)
        fail(sfd, "cannot mount /proc on", j->proc_full, errno);
    if (chdir(j->root) < 0)
        fail(sfd, "cannot enter", j->root, errno);
    if (syscall(SYS_pivot_root, ".", ".") < 0)
        fail(sfd, "pivot_root into", j->root, errno);
    if (umount2(".", MNT_DETACH) < 0)
        fail(sfd, "cannot detach the old root", NULL, errno);
    if (chdir("/") < 0)
        fail(sfd, "cannot enter the new root", NULL, errno);
    /* The tmpfs alone: what is bound into it keeps its own attributes. */
    if (set_mount_attr("/", MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, false) < 0)
        fail(sfd, "cannot make the root read-only", NULL, errno);
}

/* Every capability gone for good: the bounding set, root's special treatment (both need CAP_SETPCAP, which a
 * hub without privileges and without a user namespace does not have: it has nothing to drop), the ambient set,
 * then the rest. */
static int drop_caps(bool setpcap)
{
    if (setpcap) {
        for (int c = 0; c <= 63; c++)
            if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno == EINVAL)
                break;
        /* NOROOT, NO_SETUID_FIXUP, KEEP_CAPS, NO_CAP_AMBIENT_RAISE, each locked */
        if (prctl(PR_SET_SECUREBITS, 0xefu & ~0x10u, 0, 0, 0) < 0)
            return -1;
    }
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
        return -1;
    struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
    struct __user_cap_data_struct c[2] = { { 0 } };
    return (int)syscall(SYS_capset, &h, c);
}

static uint64_t ll_fs_handled(int abi)
{
    uint64_t fs = (1ull << 13) - 1;
    if (abi >= 2)
        fs |= LL_FS_REFER;
    if (abi >= 3)
        fs |= LL_FS_TRUNCATE;
    if (abi >= 5)
        fs |= LL_FS_IOCTL_DEV;
    return fs;
}

static void landlock(const hub_jail *j, int sfd)
{
    int abi = j->landlock_abi;
    struct ll_ruleset_attr ra = { .fs = ll_fs_handled(abi) };
    size_t size = sizeof(ra.fs);
    if (abi >= 4) {
        ra.net = LL_NET_BIND_TCP | LL_NET_CONNECT_TCP;
        size = 2 * sizeof(uint64_t);
    }
    if (abi >= 6) {
        ra.scoped = LL_SCOPE_ABSTRACT_UNIX | LL_SCOPE_SIGNAL;
        size = sizeof(ra);
    }
    int rs = (int)syscall(SYS_landlock_create_ruleset, &ra, size, 0);
    if (rs < 0)
        fail(sfd, "Landlock: cannot create a ruleset", NULL, errno);
    for (size_t i = 0; i < j->n_paths; i++) {
        const jpath *p = &j->paths[i];
        if (p->flags & P_LINK)
            continue;
        int fd = open(p->dst, O_PATH | O_CLOEXEC);
        if (fd < 0)
            continue;
        uint64_t allowed = p->flags & P_RW ? ra.fs : LL_RO;
        if (p->flags & P_DEV && !(p->flags & P_DIR))
            allowed = p->flags & P_RW ? (LL_FS_READ_FILE | LL_FS_WRITE_FILE | LL_FS_IOCTL_DEV) : LL_FS_READ_FILE;
        if (!strcmp(p->dst, "/proc"))
            allowed = LL_FS_READ_FILE | LL_FS_READ_DIR;
        allowed &= ra.fs;
        if (!(p->flags & P_DIR))
            allowed &= LL_FILE_RIGHTS;
        struct ll_path_attr pa = { .allowed = allowed, .parent_fd = fd };
        int r = allowed ? (int)syscall(SYS_landlock_add_rule, rs, LL_RULE_PATH_BENEATH, &pa, 0) : 0;
        int e = errno;
        close(fd);
        if (r < 0)
            fail(sfd, "Landlock: cannot allow", p->dst, e);
    }
    if (j->pts_fd >= 0) {
        struct ll_path_attr pa = { .allowed = (LL_FS_READ_FILE | LL_FS_WRITE_FILE | LL_FS_IOCTL_DEV) & ra.fs,
                                   .parent_fd = j->pts_fd };
        if (syscall(SYS_landlock_add_rule, rs, LL_RULE_PATH_BENEATH, &pa, 0) < 0)
            fail(sfd, "Landlock: cannot allow its ptys", NULL, errno);
    }
    if (abi >= 4 && j->tcp_port) {
        struct ll_net_attr na = { .allowed = LL_NET_CONNECT_TCP, .port = j->tcp_port };
        if (syscall(SYS_landlock_add_rule, rs, LL_RULE_NET_PORT, &na, 0) < 0)
            fail(sfd, "Landlock: cannot allow the hub's port", NULL, errno);
    }
    if (syscall(SYS_landlock_restrict_self, rs, 0) < 0)
        fail(sfd, "Landlock: cannot restrict the process", NULL, errno);
    close(rs);
}

static void seccomp_base(const hub_jail *j, int sfd)
{
    /* This process's copy of the filter: its own pid goes where the filter compares against "itself". */
    struct sock_filter *f = j->bpf;
    uint32_t self = (uint32_t)getpid();
    for (unsigned short i = 0; i < j->bpf_len; i++)
        if (f[i].k == SELF_MAGIC && BPF_CLASS(f[i].code) == BPF_JMP)
            f[i].k = self;
    struct sock_fprog prog = { .len = j->bpf_len, .filter = f };
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0)
        fail(sfd, "cannot install the seccomp filter", NULL, errno);
}

/* Close every descriptor but @keep[0..n) (sorted ascending). */
static void close_all_but(const int *keep, unsigned n)
{
    unsigned lo = 0;
    for (unsigned i = 0; i < n; i++) {
        if ((unsigned)keep[i] > lo)
            syscall(SYS_close_range, lo, (unsigned)keep[i] - 1, 0);
        lo = (unsigned)keep[i] + 1;
    }
    syscall(SYS_close_range, lo, ~0u, 0);
}

/* The device's own process: stdio, limits, no privileges, Landlock, seccomp, exec. */
static void __attribute__((noreturn)) start_device(const hub_jail *j, const hub_jail_exec *x)
{
    int sfd = x->status_fd;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    static const int dfl[] = { SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGCHLD, SIGPIPE, SIGSYS };
    struct sigaction sa = { .sa_handler = SIG_DFL };
    for (unsigned i = 0; i < sizeof(dfl) / sizeof(dfl[0]); i++)
        sigaction(dfl[i], &sa, NULL);
    if (dup2(x->in_fd, 0) < 0 || dup2(x->out_fd, 1) < 0 || dup2(x->out_fd, 2) < 0)
        fail(sfd, "cannot set up stdin, stdout and stderr", NULL, errno);
    for (unsigned i = 0; i < x->n_inherit; i++)
        fcntl(x->inherit[i], F_SETFD, 0);
    struct rlimit core = { 0, 0 };
    setrlimit(RLIMIT_CORE, &core);
    if (drop_caps(j->setpcap) < 0)
        fail(sfd, "cannot drop its capabilities", NULL, errno);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        fail(sfd, "cannot set no_new_privs", NULL, errno);
    if (j->layers & HUB_JAIL_LANDLOCK)
        landlock(j, sfd);
    if (j->layers & HUB_JAIL_SECCOMP)
        seccomp_base(j, sfd);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execve(x->path, x->argv, x->envp);
    fail(sfd, "cannot execute", x->path, errno);
}

/* The jail's pid 1 while the device runs: reap whatever ends, report the device's end, then exit (which ends
 * everything else in the pid namespace). */
static void __attribute__((noreturn)) reap(pid_t dev, int sfd)
{
    close_all_but(&sfd, 1);
    for (;;) {
        int st;
        pid_t p = waitpid(-1, &st, __WALL);
        if (p == dev) {
            char rec[1 + sizeof(st)];
            rec[0] = 'S';
            memcpy(rec + 1, &st, sizeof(st));
            if (write(sfd, rec, sizeof(rec)) < 0) {
                /* the hub is gone */
            }
            _exit(0);
        }
        if (p < 0 && errno != EINTR)
            _exit(0);
    }
}

void
hub_jail_run(const hub_jail *j, const hub_jail_exec *x)
{
    int sfd = x->status_fd;
    /* Nothing of the hub's but what the device is given, from the first moment; stdio stays until the device's
     * own replaces it, so that what is opened here cannot land on 0, 1 or 2. */
    int keep[HUB_JAIL_MAX_INHERIT + 6] = { 0, 1, 2 };
    unsigned n = 3;
    for (unsigned i = 0; i < x->n_inherit && n < HUB_JAIL_MAX_INHERIT; i++)
        keep[n++] = x->inherit[i];
    keep[n++] = x->in_fd;
    keep[n++] = x->out_fd;
    keep[n++] = sfd;
    for (unsigned i = 1; i < n; i++)
        for (unsigned k = i; k > 0 && keep[k - 1] > keep[k]; k--) {
            int t = keep[k];
            keep[k] = keep[k - 1];
            keep[k - 1] = t;
        }
    close_all_but(keep, n);
    struct sigaction sa = { .sa_handler = SIG_DFL };
    sigaction(SIGCHLD, &sa, NULL);
    /* Its own session: no controlling terminal, and a Ctrl-C at the hub's terminal reaches only the hub, which
     * shuts devices down in order. */
    setsid();
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (j->ns & CLONE_NEWUSER) {
        /* The hub is not dumpable, nor is this copy of it: its /proc files belong to root then, and an
         * unprivileged user could not write its maps. Dumpable for as long as that takes; nothing outside its
         * new namespaces can see it meanwhile but the hub's own user. */
        prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
        int r = write_file("/proc/self/setgroups", "deny") < 0 || write_file("/proc/self/gid_map", j->gid_map) < 0 ||
                write_file("/proc/self/uid_map", j->uid_map) < 0 ? -errno : 0;
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        if (r < 0)
            fail(sfd, "cannot map its user and group in the user namespace", NULL, -r);
    }
    ((hub_jail *)j)->pts_fd = j->ptys && (j->ns & CLONE_NEWNS) ? open("/dev/pts", O_PATH | O_DIRECTORY | O_CLOEXEC)
                                                                : -1;
    if (j->ns & CLONE_NEWNS)
        build_root(j, sfd);
    if (j->ns & CLONE_NEWUTS)
        sethostname("plexus-device", 13);
    if (j->ns & CLONE_NEWPID) {
        /* A plain clone: fork() would run the C library's handlers, whose locks another thread of the hub may
         * have held when this process was cloned. */
        pid_t dev = (pid_t)syscall(SYS_clone, SIGCHLD, NULL, NULL, NULL, NULL);
        if (dev < 0)
            fail(sfd, "cannot start the device in its pid namespace", NULL, errno);
        if (dev > 0) {
            prctl(PR_SET_NAME, "plexus-jail", 0, 0, 0);
            drop_caps(j->setpcap);
            reap(dev, sfd);
        }
    }
    start_device(j, x);
}

pid_t
hub_jail_clone(hub_jail *j, Error **errp)
{
    for (;;) {
        pid_t pid = (pid_t)syscall(SYS_clone, SIGCHLD | j->ns, NULL, NULL, NULL, NULL);
        if (pid >= 0 || !j->ns) {
            if (pid < 0)
                error_setg(errp, "device '%s': cannot start a process: %s", j->dev_name, strerror(errno));
            return pid < 0 ? -errno : pid;
        }
        int e = errno;
        if (!(j->ns & CLONE_NEWUSER) && e == EPERM) {
            /* privileged, but not enough for namespaces of its own (a container): in a user namespace then */
            j->ns |= CLONE_NEWUSER;
            j->layers |= HUB_JAIL_USER;
            j->setpcap = true;
            continue;
        }
        if (hub_jail_without_namespaces(j, e, errp) < 0)
            return -EPERM;
    }
}

/* ---- back in the hub -------------------------------------------------------------------------------------- */

bool
hub_jail_read_status(int fd, int *status, char *why, size_t why_len)
{
    char buf[600];
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf)) : -1;
    bool have = false;
    why[0] = 0;
    for (ssize_t off = 0; off < n;) {
        ssize_t left = n - off;
        if (buf[off] == 'S' && left >= 1 + (ssize_t)sizeof(int)) {
            memcpy(status, buf + off + 1, sizeof(int));
            have = true;
            off += 1 + (ssize_t)sizeof(int);
        } else if (buf[off] == 'E' && left >= 2 + (ssize_t)sizeof(int) &&
                   left >= 2 + (ssize_t)sizeof(int) + (unsigned char)buf[off + 1 + sizeof(int)]) {
            int err;
            memcpy(&err, buf + off + 1, sizeof(err));
            int len = (unsigned char)buf[off + 1 + sizeof(int)];
            snprintf(why, why_len, "%.*s: %s", len, buf + off + 2 + sizeof(int), strerror(err));
            off += 2 + (ssize_t)sizeof(int) + len;
        } else {
            break;
        }
    }
    return have;
}
