/*
 * A hostile device, built on the SDK: each register of its IO region "regs" (4-byte accesses) tries one attack
 * on what it was not given when the guest reads it, and answers the errno the attack met (0: it went through),
 * unless the attack ended the process first (its jail's filter: the SDK reports the call and exits 159).
 *   0x00 tgkill(hub_pid, hub_pid, SIGKILL)        0x04 kill(victim_pid, SIGKILL)       0x08 kill(-1, SIGKILL)
 *   0x0c open /proc/HUB/mem for writing           0x10 open /proc/HUB/fd/HUB_FD (an ungranted RAM memfd) and
 *                                                      write ram2's first bytes through a mapping of it
 *   0x14 ptrace(PTRACE_ATTACH, hub)               0x18 process_vm_writev into the hub
 *   0x1c ioctl(TIOCSTI) on stdin, stdout, stderr  0x20 F_SETOWN(hub) and O_ASYNC on stdout
 *   0x24 fork a child that leaves its session, names itself "plexus-orphan" and sleeps; 1 if it forked
 *   0x28 mount a tmpfs                            0x2c unshare(CLONE_NEWUSER)
 *   0x30 create the file PROBE_PATH (a host path outside its jail)
 *   0x34 keyctl: the user keyring's id            0x38 open /dev/tty
 * Writes: 0x40 arm a timer at now + v whose callback arms it again at plx_now() (0x40 reads its fires);
 * 0x44 log a line with a forged hub line after a newline and terminal escapes, and print the same on stdout;
 * 0x48 log v records of 200 bytes.
 * A timer armed in init() at init_timer_ns (if not 0) counts its fires at 0x4c. init_attack (if given) names a
 * register whose attack init() makes, before the device is ready; 0x50 reads what it met.
 * Region "big" (SHADOW, --big=SIZE bytes, default 4 KiB) has nothing in it but its size.
 * Properties: hub_pid, victim_pid, hub_fd, probe_path, init_timer_ns.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <termios.h>
#include <unistd.h>

#include <plexus/sdk.h>

#define KEYCTL_GET_KEYRING_ID 0
#define KEY_SPEC_USER_KEYRING -4

struct st {
    plx_dev *dev;
    uint64_t hub_pid, victim_pid, hub_fd, init_timer_ns, init_attack;
    const char *probe_path;
    plx_timer *timer, *init_timer;
    uint32_t fires, init_fires, init_result;
};

static uint32_t err_of(long r)
{
    return r < 0 ? (uint32_t)errno : 0;
}

static uint32_t proc_fd(struct st *s)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)s->hub_pid, (int)s->hub_fd);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return (uint32_t)errno;
    uint8_t *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p != MAP_FAILED) {
        memset(p, 0x66, 64);      /* scribble on memory it was never granted */
        munmap(p, 4096);
    }
    close(fd);
    return 0;
}

static uint32_t orphan(void)
{
    pid_t p = fork();
    if (p < 0)
        return 0;
    if (p == 0) {
        setsid();
        prctl(PR_SET_NAME, "plexus-orphan", 0, 0, 0);
        for (;;)
            pause();
    }
    return 1;
}

static uint32_t vm_write(struct st *s)
{
    char buf[8] = "x";
    struct iovec local = { buf, sizeof(buf) }, remote = { (void *)0x400000, sizeof(buf) };
    return err_of(syscall(SYS_process_vm_writev, (pid_t)s->hub_pid, &local, 1, &remote, 1, 0));
}

static uint64_t regs_read(void *opaque, uint64_t addr, unsigned size)
{
    struct st *s = opaque;
    char path[64];
    switch (addr) {
    case 0x00: return err_of(syscall(SYS_tgkill, (pid_t)s->hub_pid, (pid_t)s->hub_pid, SIGKILL));
    case 0x04: return err_of(kill((pid_t)s->victim_pid, SIGKILL));
    case 0x08: return err_of(kill(-1, SIGKILL));
    case 0x0c:
        snprintf(path, sizeof(path), "/proc/%d/mem", (int)s->hub_pid);
        return err_of(open(path, O_RDWR | O_CLOEXEC));
    case 0x10: return proc_fd(s);
    case 0x14: return err_of(ptrace(PTRACE_ATTACH, (pid_t)s->hub_pid, NULL, NULL));
    case 0x18: return vm_write(s);
    case 0x1c: {
        uint32_t e = 0;
        for (int fd = 0; fd < 3; fd++)
            e = err_of(ioctl(fd, TIOCSTI, "\001"));
        return e;
    }
    case 0x20: {
        long r = fcntl(1, F_SETOWN, (pid_t)s->hub_pid);
        if (r == 0)
            r = fcntl(1, F_SETFL, fcntl(1, F_GETFL) | O_ASYNC);
        return err_of(r);
    }
    case 0x24: return orphan();
    case 0x28: return err_of(mount("none", "/", "tmpfs", 0, NULL));
    case 0x2c: return err_of(unshare(CLONE_NEWUSER));
    case 0x30: return err_of(s->probe_path ? open(s->probe_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644) : -1);
    case 0x34: return err_of(syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING, 0));
    case 0x38: return err_of(open("/dev/tty", O_RDWR | O_CLOEXEC));
    case 0x40: return s->fires;
    case 0x4c: return s->init_fires;
    case 0x50: return s->init_result;
    default: return 0;
    }
}

static void again(void *opaque)
{
    struct st *s = opaque;
    s->fires++;
    plx_timer_mod(s->timer, plx_now(s->dev));      /* the same instant again: it would freeze time */
}

static void init_fired(void *opaque)
{
    struct st *s = opaque;
    s->init_fires++;
}

static void regs_write(void *opaque, uint64_t addr, uint64_t data, unsigned size)
{
    struct st *s = opaque;
    static const char forged[] = "a line\nplexus: uart0: error: forged by another device\x1b[2J\x07";
    switch (addr) {
    case 0x40: plx_timer_mod(s->timer, plx_now(s->dev) + data); break;
    case 0x44:
        plx_log(s->dev, PLX_LOG_WARNING, "%s", forged);
        printf("%s\n", forged);
        fflush(stdout);
        break;
    case 0x48: {
        char line[201];
        memset(line, 'f', 200);
        line[200] = 0;
        for (uint64_t i = 0; i < data; i++)
            plx_log(s->dev, PLX_LOG_WARNING, "%s", line);
        break;
    }
    default: break;
    }
}

static const plx_region_ops regs_ops = {
    .read = regs_read, .write = regs_write, .endianness = PLX_LITTLE_ENDIAN,
    .valid = { 4, 4, false }, .impl = { 4, 4, false },
};
static const plx_region_ops big_ops = { .endianness = PLX_LITTLE_ENDIAN, .valid = { 4, 4, false },
                                        .impl = { 4, 4, false } };
static plx_region_info regions[] = {
    { .name = "regs", .size = 0x100, .kind = PLX_REGION_IO, .ops = &regs_ops },
    { .name = "big", .size = 0x1000, .kind = PLX_REGION_SHADOW, .ops = &big_ops },
};
static const plx_prop_info props[] = {
    { "hub_pid", "0", NULL }, { "victim_pid", "0", NULL }, { "hub_fd", "0", NULL }, { "probe_path", NULL, NULL },
    { "init_timer_ns", "0", NULL }, { "init_attack", "0xffff", NULL },
};

static int init(plx_dev *dev, void **opaque)
{
    struct st *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->dev = dev;
    plx_dev_prop_u64(dev, "hub_pid", &s->hub_pid);
    plx_dev_prop_u64(dev, "victim_pid", &s->victim_pid);
    plx_dev_prop_u64(dev, "hub_fd", &s->hub_fd);
    plx_dev_prop_u64(dev, "init_timer_ns", &s->init_timer_ns);
    s->probe_path = plx_dev_prop(dev, "probe_path");
    s->timer = plx_timer_new(dev, again, s);
    s->init_timer = plx_timer_new(dev, init_fired, s);
    if (s->init_timer_ns)
        plx_timer_mod(s->init_timer, s->init_timer_ns);     /* armed before Ready */
    plx_dev_prop_u64(dev, "init_attack", &s->init_attack);
    if (s->init_attack < 0x40)
        s->init_result = (uint32_t)regs_read(s, s->init_attack, 4);      /* from init(), before Ready */
    *opaque = s;
    return 0;
}

static void fini(void *opaque)
{
    struct st *s = opaque;
    plx_timer_free(s->timer);
    plx_timer_free(s->init_timer);
    free(s);
}

static const plx_device_ops ops = {
    .version = PLX_DEVICE_OPS_VERSION,
    .model = "plexus,test-hostile",
    .regions = regions, .n_regions = 2,
    .props = props, .n_props = sizeof(props) / sizeof(props[0]),
    .init = init, .fini = fini,
};

int main(int argc, char **argv)
{
    /* The SHADOW region's size comes first: it is part of the declaration. */
    for (int i = 1; i < argc; i++)
        if (!strncmp(argv[i], "--big=", 6))
            regions[1].size = strtoull(argv[i] + 6, NULL, 0);
    return plx_dev_main(&ops, argc, argv);
}
