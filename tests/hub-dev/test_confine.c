/*
 * Confinement, against real hostile processes (tests/hub-dev/devices/hostile.c on the SDK, rogue.c speaking the
 * wire protocol by hand): what each attack of docs/reliability.md ("Threat model") meets. Every test checks that
 * the hub (this process) and a sibling device go on, what the guest's access returns, that RAM the attacker was
 * not granted ("ram2") still holds its pattern, and the log line naming the device and the cause.
 *
 * Runs as root and as an unprivileged user, with and without user namespaces (.ci/run): where the outcome
 * depends on the layers the kernel gave (hub_device_confinement()), the test says which it expects.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "../common/hub_test.h"
#include "../common/free_port.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "dev/output.h"
#include "plexus/chan.h"
#include "plexus/protocol.h"

#define RAM_BASE 0x80000000u
#define RAM_SIZE (1u << 20)
#define RAM2_BASE 0x90000000u
#define RAM2_SIZE 0x10000u
#define VICTIM_BASE 0x10000000u
#define HOSTILE_BASE 0x20000000u
#define DENIED 159      /* the SDK's exit status after a denied system call: 128 + SIGSYS */

static test_rig rig;
static char logbuf[65536];
static unsigned n_records;
static uint64_t charged;
static hub_device *victim;

static void on_log(void *opaque, const char *device, int level, const char *msg)
{
    n_records++;
    test_log_append(logbuf, sizeof(logbuf), device, msg);
}

static void on_charge(void *opaque, uint64_t ns)
{
    charged += ns;
}

static void fill_ram2(void)
{
    uint8_t *p = memory_region_get_ram_ptr(&rig.ram2);
    for (unsigned i = 0; i < RAM2_SIZE; i++)
        p[i] = (uint8_t)(i * 7 + 3);
}

/* RAM the devices were never granted still holds what the hub put there. */
static void ram2_intact(void)
{
    const uint8_t *p = memory_region_get_ram_ptr(&rig.ram2);
    for (unsigned i = 0; i < RAM2_SIZE; i++)
        cr_assert_eq(p[i], (uint8_t)(i * 7 + 3), "ram2 byte 0x%x changed\nlog:\n%.4000s", i, logbuf);
}

static uint32_t rd(hwaddr a, MemTxResult *res)
{
    uint8_t b[4];
    MemTxResult r = address_space_read(&rig.as, a, MEMTXATTRS_UNSPECIFIED, b, 4);
    if (res)
        *res = r;
    else
        cr_assert_eq(r, MEMTX_OK, "read 0x%lx failed\nlog:\n%.4000s", (unsigned long)a, logbuf);
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static MemTxResult wr(hwaddr a, uint32_t v)
{
    uint8_t b[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
    return address_space_write(&rig.as, a, MEMTXATTRS_UNSPECIFIED, b, 4);
}

/* The sibling answers as before. */
static void victim_alive(void)
{
    static uint32_t n = 1;
    cr_assert_eq(wr(VICTIM_BASE + 0x10, ++n), MEMTX_OK);
    cr_assert_eq(rd(VICTIM_BASE + 0x10, NULL), n, "the sibling device");
    cr_assert_not(hub_device_failed(victim), "log:\n%.4000s", logbuf);
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[128];
    long kib = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib;
}

static unsigned layers(hub_device *d)
{
    char buf[160];
    hub_device_confinement(d, buf, sizeof(buf));
    unsigned l = 0;
    if (strstr(buf, "pid"))
        l |= 1;
    if (strstr(buf, "landlock"))
        l |= 2;
    if (strstr(buf, "user"))
        l |= 4;
    return l;
}
#define HAS_PIDNS 1u
#define HAS_LANDLOCK 2u

static void setup(void)
{
    hub_devmgr_env env = { .log = on_log, .charge = on_charge };
    test_rig_init2(&rig, RAM_BASE, RAM_SIZE, RAM2_BASE, RAM2_SIZE, env);
    logbuf[0] = 0;
    n_records = 0;
    charged = 0;
    fill_ram2();
    static const hub_region_map vr[] = { { "regs", VICTIM_BASE }, { "posted", VICTIM_BASE + 0x1000 },
                                         { "shadow", VICTIM_BASE + 0x2000 }, { "be", VICTIM_BASE + 0x3000 } };
    static char *prog;
    if (!prog)
        prog = test_build_path("bin/hubdev-regdev");
    hub_device_config c = { .name = "victim", .program = prog, .regions = vr, .n_regions = 4, .timeout_ms = 5000 };
    Error *err = NULL;
    victim = hub_devmgr_add(rig.mgr, &c, &err);
    cr_assert_not_null(victim, "victim: %s\nlog:\n%s", err ? error_get_pretty(err) : "", logbuf);
}

static void teardown(void)
{
    test_rig_fini(&rig);
}

TestSuite(confine, .init = setup, .fini = teardown, .timeout = 120);

/* ---- hostile.c: attacks through system calls -------------------------------------------------------------- */

static const char *const ram_only[] = { "ram" };

static hub_device *add_hostile_as(const char *name, const char *const *argv, bool strict, Error **errp)
{
    static char *prog;
    static char pid[16], fd[16];
    if (!prog)
        prog = test_build_path("bin/hubdev-hostile");
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    snprintf(fd, sizeof(fd), "%d", rig.blocks[1].fd);
    static char vpid[16], probe[64];
    snprintf(vpid, sizeof(vpid), "%d", hub_device_pid(victim));
    snprintf(probe, sizeof(probe), "/tmp/plexus-probe-%d", (int)getpid());
    static hub_prop props[4];
    props[0] = (hub_prop){ "hub_pid", pid };
    props[1] = (hub_prop){ "victim_pid", vpid };
    props[2] = (hub_prop){ "hub_fd", fd };
    props[3] = (hub_prop){ "probe_path", probe };
    static const hub_region_map rm[] = { { "regs", HOSTILE_BASE }, { "big", HOSTILE_BASE + 0x10000000 } };
    hub_device_config c = { .name = name, .program = prog, .argv = argv, .props = props, .n_props = 4,
                            .regions = rm, .n_regions = 2, .ram_grants = ram_only, .n_ram_grants = 1,
                            .timeout_ms = 5000, .strict = strict };
    return hub_devmgr_add(rig.mgr, &c, errp);
}

static hub_device *add_hostile(void)
{
    Error *err = NULL;
    hub_device *d = add_hostile_as("hostile", NULL, false, &err);
    cr_assert_not_null(d, "hostile: %s\nlog:\n%s", err ? error_get_pretty(err) : "", logbuf);
    return d;
}

/* The attack at register @reg ends the device (its jail denies @call): the guest's load faults, the log names
 * the device and the call, and the hub and the sibling go on. */
static void denied(unsigned reg, const char *call)
{
    hub_device *d = add_hostile();
    MemTxResult r;
    uint32_t v = rd(HOSTILE_BASE + reg, &r);
    cr_assert_eq(r, MEMTX_ERROR, "attack 0x%x went through (0x%x)\nlog:\n%.4000s", reg, v, logbuf);
    cr_assert_eq(v, 0xffffffffu, "the load of a failed device reads all-ones");
    cr_assert(hub_device_failed(d));
    char want[160];
    snprintf(want, sizeof(want), "[hostile] device process exited with status %d (sandbox: denied system call %s (",
             DENIED, call);
    cr_assert(strstr(logbuf, want), "no '%s' in the log:\n%.4000s", want, logbuf);
    victim_alive();
    ram2_intact();
}

Test(confine, a_device_cannot_kill_the_hub)
{
    denied(0x00, "tgkill");
}

Test(confine, a_device_cannot_kill_a_sibling)
{
    denied(0x04, "kill");
}

Test(confine, a_device_cannot_kill_everything_it_could_name)
{
    denied(0x08, "kill");
}

/* /proc/HUB/mem and /proc/HUB/fd/N (the RAM memfd it was not granted): no such process in its own /proc, or
 * refused (the hub is not dumpable, the device holds no capability, Landlock gives it /proc read-only). */
Test(confine, a_device_cannot_reach_the_hubs_memory_through_proc)
{
    hub_device *d = add_hostile();
    uint32_t mem = rd(HOSTILE_BASE + 0x0c, NULL), fd = rd(HOSTILE_BASE + 0x10, NULL);
    cr_assert(mem == ENOENT || mem == EACCES || mem == EPERM, "open /proc/HUB/mem: %u", mem);
    cr_assert(fd == ENOENT || fd == EACCES || fd == EPERM, "open /proc/HUB/fd/N: %u", fd);
    if (layers(d) & HAS_PIDNS)
        cr_assert_eq(mem, ENOENT, "in its own pid namespace the hub is not there at all");
    cr_assert_not(hub_device_failed(d));
    victim_alive();
    ram2_intact();
}

#if defined(__SANITIZE_ADDRESS__)
/* LeakSanitizer needs ptrace: sanitizer builds let it through the filter, and the pid namespace stops it. */
static void ptrace_like(unsigned reg, const char *call)
{
    (void)call;
    hub_device *d = add_hostile();
    uint32_t e = rd(HOSTILE_BASE + reg, NULL);
    cr_assert(e == ESRCH || e == EPERM, "0x%x: %u", reg, e);
    cr_assert_not(hub_device_failed(d));
    victim_alive();
    ram2_intact();
}
#else
static void ptrace_like(unsigned reg, const char *call)
{
    denied(reg, call);
}
#endif

Test(confine, a_device_cannot_ptrace_the_hub)
{
    ptrace_like(0x14, "ptrace");
}

Test(confine, a_device_cannot_write_the_hubs_memory_by_process_vm_writev)
{
    ptrace_like(0x18, "process_vm_writev");
}

/* The hub's terminal: the device does not hold it (stdin /dev/null, stdout and stderr a pipe), has no
 * controlling terminal, and may not type into one anyway. */
Test(confine, a_device_cannot_type_into_the_hubs_terminal)
{
    int master, slave;
    cr_assert_eq(openpty(&master, &slave, NULL, NULL, NULL), 0);
    int saved = dup(0);
    dup2(slave, 0);                     /* the hub's stdin is a terminal now */
    hub_device *d = add_hostile();
    uint32_t tty = rd(HOSTILE_BASE + 0x38, NULL);
    cr_assert(tty == ENOENT || tty == ENXIO || tty == EACCES, "open /dev/tty: %u", tty);
    MemTxResult r;
    rd(HOSTILE_BASE + 0x1c, &r);
    dup2(saved, 0);
    close(saved);
    cr_assert_eq(r, MEMTX_ERROR);
    cr_assert(hub_device_failed(d));
    cr_assert(strstr(logbuf, "[hostile] device process exited with status 159 (sandbox: denied system call ioctl ("),
              "log:\n%.4000s", logbuf);
    int pending = -1;
    cr_assert_eq(ioctl(slave, FIONREAD, &pending), 0);
    cr_assert_eq(pending, 0, "bytes were typed into the terminal");
    close(master);
    close(slave);
    victim_alive();
}

/* SIGIO to the hub (F_SETOWN + O_ASYNC on an inherited descriptor would kill this process). */
Test(confine, a_device_cannot_send_the_hub_sigio)
{
    denied(0x20, "fcntl");
}

Test(confine, a_device_cannot_mount_or_make_namespaces)
{
    denied(0x28, "mount");
}

Test(confine, a_device_cannot_make_a_user_namespace)
{
    denied(0x2c, "unshare");
}

Test(confine, a_device_cannot_read_the_users_keyring)
{
    denied(0x34, "keyctl");
}

/* A host path outside its jail: not there (mount namespace) or refused (Landlock); nothing is created. */
Test(confine, a_device_cannot_create_files_outside_its_jail)
{
    char probe[64];
    snprintf(probe, sizeof(probe), "/tmp/plexus-probe-%d", (int)getpid());
    unlink(probe);
    hub_device *d = add_hostile();
    uint32_t e = rd(HOSTILE_BASE + 0x30, NULL);
    cr_assert(e == ENOENT || e == EACCES || e == EROFS || e == EPERM, "create %s: %u", probe, e);
    cr_assert_neq(access(probe, F_OK), 0, "%s was created", probe);
    cr_assert_not(hub_device_failed(d));
}

/* Nothing it starts outlives it (its pid namespace ends with it; without one it cannot start processes). */
static pid_t find_orphan(void)
{
    DIR *dir = opendir("/proc");
    struct dirent *e;
    pid_t found = 0;
    while (dir && !found && (e = readdir(dir))) {
        char path[300], comm[32] = "";
        snprintf(path, sizeof(path), "/proc/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        if (fgets(comm, sizeof(comm), f) && !strncmp(comm, "plexus-orphan", 13))
            found = atoi(e->d_name);
        fclose(f);
    }
    if (dir)
        closedir(dir);
    return found;
}

/* An orphan shows up (it names itself just after it is forked) within @ms. */
static pid_t orphan_within(int ms)
{
    pid_t p = 0;
    for (int i = 0; i < ms / 10 && !(p = find_orphan()); i++)
        usleep(10000);
    return p;
}

static bool no_orphan_within(int ms)
{
    for (int i = 0; i < ms / 10; i++) {
        if (!find_orphan())
            return true;
        usleep(10000);
    }
    return !find_orphan();
}

Test(confine, nothing_a_device_starts_outlives_it)
{
    cr_assert(no_orphan_within(5000), "an orphan from before");
    hub_device *d = add_hostile();
    MemTxResult r;
    uint32_t forked = rd(HOSTILE_BASE + 0x24, &r);
    if (layers(d) & HAS_PIDNS) {
        cr_assert_eq(r, MEMTX_OK);
        cr_assert_eq(forked, 1);
        cr_assert(orphan_within(2000), "the child should live while the device does");
    } else {
        cr_assert_eq(r, MEMTX_ERROR, "without a pid namespace a device starts no process");
        cr_assert(strstr(logbuf, "denied system call clone"), "log:\n%.4000s", logbuf);
    }
    hub_devmgr_free(rig.mgr);       /* the device ends */
    rig.mgr = NULL;
    cr_assert(no_orphan_within(5000), "process %d outlived its device", find_orphan());
    hub_devmgr_env env = { .log = on_log };
    Error *err = NULL;
    hub_ram_block b = rig.blocks[0];
    env.sysmem = &rig.sysmem;
    env.as = &rig.as;
    env.clock = &rig.clk;
    env.ram = &b;
    env.n_ram = 1;
    rig.mgr = hub_devmgr_new(&env, &err);     /* for the teardown */
    cr_assert_not_null(rig.mgr);
}

Test(confine, nothing_a_device_starts_outlives_the_hub)
{
    cr_assert(no_orphan_within(5000), "an orphan from before");
    pid_t hub = fork();
    if (hub == 0) {
        alarm(30);
        /* a hub in a child process: the device starts a child, then the hub dies without a word */
        Error *err = NULL;
        hub_device *d = add_hostile_as("hostile", NULL, false, &err);
        if (!d)
            _exit(3);
        MemTxResult r;
        rd(HOSTILE_BASE + 0x24, &r);
        _exit(layers(d) & HAS_PIDNS ? (r == MEMTX_OK ? 0 : 4) : 5);
    }
    int st;
    cr_assert_eq(waitpid(hub, &st, 0), hub);
    cr_assert(WIFEXITED(st) && (WEXITSTATUS(st) == 0 || WEXITSTATUS(st) == 5), "hub child: %d", st);
    cr_assert(no_orphan_within(5000), "process %d outlived its hub", find_orphan());
}

/* What it logs and prints is data: a newline starts a line of its own under its name, escapes are escaped. */
Test(confine, a_device_cannot_forge_log_lines)
{
    hub_device *d = add_hostile();
    cr_assert_eq(wr(HOSTILE_BASE + 0x44, 1), MEMTX_OK);
    for (int i = 0; i < 100 && !strstr(logbuf, "\\x07\n[hostile] a line"); i++)
        hub_devmgr_poll(rig.mgr, 10);
    const char *forged = "[hostile] plexus: uart0: error: forged by another device\\x1b[2J\\x07\n";
    const char *first = strstr(logbuf, forged);
    cr_assert_not_null(first, "the Log message, escaped, under its name:\n%.4000s", logbuf);
    cr_assert_not_null(strstr(first + 1, forged), "its stdout, the same:\n%.4000s", logbuf);
    cr_assert_not_null(strstr(logbuf, "[hostile] a line\n"), "%.4000s", logbuf);
    cr_assert_null(strstr(logbuf, "[uart0]"), "a line under another name:\n%.4000s", logbuf);
    cr_assert_null(strchr(logbuf, '\x1b'), "a raw escape reached the log");
    cr_assert_not(hub_device_failed(d));
}

/* 60,000 records of 200 bytes: the device fails at its limit, a bounded number of lines is shown, the hub
 * holds nothing of them. */
Test(confine, a_log_flood_fails_the_device_and_stays_bounded)
{
    hub_device *d = add_hostile();
    long rss0 = rss_kib();
    unsigned before = n_records;
    cr_assert_eq(wr(HOSTILE_BASE + 0x48, 60000), MEMTX_ERROR, "the write that floods fails with the device");
    cr_assert(hub_device_failed(d));
    cr_assert(strstr(logbuf, "[hostile] floods its log: more than 1048576 bytes in one second (limit "
                             "log_bytes_per_s); its accesses now fail"), "log:\n%.3000s", logbuf);
    unsigned shown = n_records - before;
    cr_assert_leq(shown, HUB_LOG_SHOWN_PER_S / 200 + 4, "%u records shown", shown);
    cr_assert(strstr(logbuf, "of its output not shown: more than 16384 bytes a second"), "log:\n%.3000s", logbuf);
    long grown = rss_kib() - rss0;
    cr_assert_lt(grown, 16 * 1024, "the hub grew by %ld KiB", grown);
    victim_alive();
}

/* A timer armed again at the instant it fired fires once per advance of virtual time, which goes on. */
Test(confine, a_timer_armed_again_at_now_does_not_freeze_time)
{
    hub_device *d = add_hostile();
    cr_assert_eq(wr(HOSTILE_BASE + 0x40, 10), MEMTX_OK);
    rd(HOSTILE_BASE + 0x40, NULL);      /* ordered after the arm */
    uint64_t t0 = vclock_now(&rig.clk);
    for (int i = 1; i <= 5; i++)
        vclock_advance(&rig.clk, t0 + 1000u * (unsigned)i);
    cr_assert_eq(vclock_now(&rig.clk), t0 + 5000, "virtual time moved on");
    cr_assert_eq(rd(HOSTILE_BASE + 0x40, NULL), 5, "one fire per advance");
    cr_assert(strstr(logbuf, "[hostile] timer 0 armed again for"), "log:\n%.3000s", logbuf);
    cr_assert_not(hub_device_failed(d));
}

Test(confine, a_timer_armed_in_init_fires)
{
    static char *prog;
    if (!prog)
        prog = test_build_path("bin/hubdev-hostile");
    static const hub_prop p = { "init_timer_ns", "5000" };
    static const hub_region_map rm[] = { { "regs", HOSTILE_BASE }, { "big", HOSTILE_BASE + 0x10000000 } };
    hub_device_config c = { .name = "early", .program = prog, .props = &p, .n_props = 1, .regions = rm,
                            .n_regions = 2, .timeout_ms = 5000 };
    Error *err = NULL;
    hub_device *d = hub_devmgr_add(rig.mgr, &c, &err);
    cr_assert_not_null(d, "a timer armed in init(): %s", err ? error_get_pretty(err) : "");
    vclock_advance(&rig.clk, 6000);
    cr_assert_eq(rd(HOSTILE_BASE + 0x4c, NULL), 1);
}

/* A restarted device's 16 MiB shadow region is zeroed without the hub touching its pages. */
Test(confine, a_restart_does_not_allocate_the_shadow_region)
{
    static char *prog;
    if (!prog)
        prog = test_build_path("bin/hubdev-hostile");
    static const char *const argv[] = { "--big=0x1000000", NULL };
    static const hub_region_map rm[] = { { "regs", HOSTILE_BASE }, { "big", HOSTILE_BASE + 0x10000000 } };
    hub_device_config c = { .name = "bigshadow", .program = prog, .argv = argv, .regions = rm, .n_regions = 2,
                            .timeout_ms = 5000, .max_restarts = 1, .restart_backoff_ms = 1,
                            .limits = { .shadow_bytes = 32u << 20 } };
    Error *err = NULL;
    hub_device *d = hub_devmgr_add(rig.mgr, &c, &err);
    cr_assert_not_null(d, "%s", err ? error_get_pretty(err) : "");
    long rss0 = rss_kib();
    cr_assert_eq(kill(hub_device_pid(d), SIGKILL), 0);
    for (int i = 0; i < 500 && hub_device_restarts(d) == 0; i++)
        hub_devmgr_poll(rig.mgr, 10);
    cr_assert_eq(hub_device_restarts(d), 1, "log:\n%.3000s", logbuf);
    cr_assert_not(hub_device_failed(d));
    long grown = rss_kib() - rss0;
    cr_assert_lt(grown, 4 * 1024, "the hub grew by %ld KiB", grown);
}

/* The same attacks from init(), before the device is ready: the jail is there from its first instruction. */
static hub_device *add_attacking_in_init(const char *reg, Error **errp)
{
    static char *prog;
    if (!prog)
        prog = test_build_path("bin/hubdev-hostile");
    static char pid[16], fd[16];
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    snprintf(fd, sizeof(fd), "%d", rig.blocks[1].fd);
    static hub_prop props[3];
    props[0] = (hub_prop){ "hub_pid", pid };
    props[1] = (hub_prop){ "hub_fd", fd };
    props[2] = (hub_prop){ "init_attack", reg };
    static const hub_region_map rm[] = { { "regs", HOSTILE_BASE }, { "big", HOSTILE_BASE + 0x10000000 } };
    hub_device_config c = { .name = "early", .program = prog, .props = props, .n_props = 3, .regions = rm,
                            .n_regions = 2, .ram_grants = ram_only, .n_ram_grants = 1, .timeout_ms = 5000 };
    return hub_devmgr_add(rig.mgr, &c, errp);
}

Test(confine, a_device_cannot_reach_the_hubs_memory_from_init)
{
    Error *err = NULL;
    hub_device *d = add_attacking_in_init("0x10", &err);       /* /proc/HUB/fd/N of ram2, mapped and written */
    cr_assert_not_null(d, "%s\nlog:\n%.3000s", err ? error_get_pretty(err) : "", logbuf);
    uint32_t e = rd(HOSTILE_BASE + 0x50, NULL);
    cr_assert(e == ENOENT || e == EACCES || e == EPERM, "open /proc/HUB/fd/N in init(): %u", e);
    ram2_intact();
    victim_alive();
}

Test(confine, a_device_that_attacks_the_hub_from_init_never_starts)
{
    Error *err = NULL;
    cr_assert_null(add_attacking_in_init("0x00", &err), "tgkill(hub) in init() went through");
    cr_assert(strstr(error_get_pretty(err), "device 'early': process exited with status 159 (sandbox: denied "
                                            "system call tgkill ("), "%s", error_get_pretty(err));
    error_free(err);
    victim_alive();
    ram2_intact();
}

/* ---- rogue.c: attacks through the protocol ---------------------------------------------------------------- */

static hub_device *add_rogue(const char *name, const char *const *argv, uint64_t region_bytes, bool lockstep,
                             Error **errp)
{
    static char *prog;
    if (!prog)
        prog = test_build_path("bin/hubdev-rogue");
    static const hub_region_map rm[] = { { NULL, HOSTILE_BASE } };
    hub_device_config c = { .name = name, .program = prog, .argv = argv, .regions = rm, .n_regions = 1,
                            .ram_grants = ram_only, .n_ram_grants = 1, .timeout_ms = 500, .lockstep = lockstep,
                            .limits = { .region_bytes = region_bytes } };
    return hub_devmgr_add(rig.mgr, &c, errp);
}

/* 200 DMA reads of 1 MiB, replies never taken: ZeroMQ's high-water marks stop them, the device fails, the hub
 * holds at most those frames. */
Test(confine, a_dma_flood_fails_the_device_and_stays_bounded)
{
    static const char *const argv[] = { "dmaflood", "0x80000000", NULL };
    Error *err = NULL;
    hub_device *d = add_rogue("dmaflood", argv, 0, false, &err);
    cr_assert_not_null(d, "%s", err ? error_get_pretty(err) : "");
    long rss0 = rss_kib();
    MemTxResult r;
    rd(HOSTILE_BASE, &r);
    cr_assert_eq(r, MEMTX_ERROR);
    cr_assert(hub_device_failed(d));
    cr_assert(strstr(logbuf, "[dmaflood] cannot send to the device: it took none of the 16 frames queued to it "
                             "within 500 ms (limit: the ZeroMQ high-water mark)"), "log:\n%.3000s", logbuf);
    long grown = rss_kib() - rss0;
    cr_assert_lt(grown, 64 * 1024, "the hub grew by %ld KiB", grown);
    victim_alive();
    ram2_intact();
}

/* What the hub says about messages it drops counts against the device's log limit: 20,000 bad timer ids make
 * a bounded number of lines, then the device fails at its limit. */
Test(confine, warnings_a_device_provokes_are_bounded_by_its_log_limit)
{
    static const char *const argv[] = { "complain", NULL };
    static const hub_region_map rm[] = { { NULL, HOSTILE_BASE } };
    static char *prog;
    if (!prog)
        prog = test_build_path("bin/hubdev-rogue");
    hub_device_config c = { .name = "complain", .program = prog, .argv = argv, .regions = rm, .n_regions = 1,
                            .timeout_ms = 5000, .limits = { .log_bytes_per_s = 65536 } };
    Error *err = NULL;
    hub_device *d = hub_devmgr_add(rig.mgr, &c, &err);
    cr_assert_not_null(d, "%s", err ? error_get_pretty(err) : "");
    unsigned before = n_records;
    MemTxResult r;
    rd(HOSTILE_BASE, &r);
    for (int i = 0; i < 200 && !hub_device_failed(d); i++)
        hub_devmgr_poll(rig.mgr, 10);
    cr_assert(hub_device_failed(d), "log:\n%.3000s", logbuf);
    cr_assert(strstr(logbuf, "[complain] TimerArm with id 100000 (limit 256) dropped"), "log:\n%.3000s", logbuf);
    cr_assert(strstr(logbuf, "[complain] floods its log: more than 65536 bytes in one second (limit "
                             "log_bytes_per_s)"), "log:\n%.3000s", logbuf);
    cr_assert_leq(n_records - before, HUB_LOG_SHOWN_PER_S / 40 + 4, "%u lines shown", n_records - before);
    victim_alive();
    ram2_intact();
}

Test(confine, a_region_past_the_limit_is_refused)
{
    static const char *const argv[] = { "huge", "0x10000000000", NULL };
    Error *err = NULL;
    cr_assert_null(add_rogue("huge", argv, 0, false, &err));
    cr_assert_str_eq(error_get_pretty(err), "device 'huge' declares 0x10000000000 bytes of regions (limit "
                                            "region_bytes: 0x40000000)");
    error_free(err);
    victim_alive();
}

/* With the limit raised, a region of 8 GiB costs what it is used for: the device answers at its far end. */
Test(confine, a_large_region_within_the_limit_works)
{
    static const char *const argv[] = { "huge", "0x200000000", NULL };
    Error *err = NULL;
    hub_device *d = add_rogue("large", argv, UINT64_C(0x200000000), false, &err);
    cr_assert_not_null(d, "%s", err ? error_get_pretty(err) : "");
    cr_assert_eq(rd(HOSTILE_BASE + UINT64_C(0x1fffffff0), NULL), 0xc0ffee);
}

Test(confine, a_lockstep_device_cannot_push_time_by_its_bus_time)
{
    static const char *const argv[] = { "busy", NULL };
    Error *err = NULL;
    hub_device *d = add_rogue("busy", argv, 0, true, &err);
    cr_assert_not_null(d, "%s", err ? error_get_pretty(err) : "");
    cr_assert_eq(rd(HOSTILE_BASE, NULL), 0xc0ffee);
    cr_assert_eq(charged, PLX_MAX_BUSY_NS, "charged %llu ns for a claim of 2^62", (unsigned long long)charged);
    cr_assert(strstr(logbuf, "[busy] an access it said kept its bus busy 4611686018427387904 ns: charged 1000000 ns"),
              "log:\n%.3000s", logbuf);
}

/* A machine that asks for the device's sandbox, and a device that never installs it: said; its jail holds. */
Test(confine, a_device_that_skips_its_sandbox_is_said_and_still_jailed)
{
    static char *prog;
    if (!prog)
        prog = test_build_path("bin/hubdev-rogue");
    static const char *const argv[] = { "no-grant", NULL };
    static const hub_region_map rm[] = { { NULL, HOSTILE_BASE } };
    hub_device_config c = { .name = "skipper", .program = prog, .argv = argv, .regions = rm, .n_regions = 1,
                            .timeout_ms = 500, .sandbox = true };
    Error *err = NULL;
    hub_device *d = hub_devmgr_add(rig.mgr, &c, &err);
    cr_assert_not_null(d, "%s", err ? error_get_pretty(err) : "");
    cr_assert(strstr(logbuf, "[skipper] sandbox enabled, but the device did not install its system-call filter: "
                             "only its jail confines it"), "log:\n%.3000s", logbuf);
    char path[64], line[128];
    snprintf(path, sizeof(path), "/proc/%d/status", hub_device_pid(d));
    FILE *f = fopen(path, "r");
    int mode = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "Seccomp: %d", &mode) == 1)
            break;
    if (f)
        fclose(f);
    cr_assert_eq(mode, 2, "its jail's filter");
    c.name = "strict-skipper";
    c.strict = true;
    char buf[160];
    bool full = strstr(hub_device_confinement(d, buf, sizeof(buf)), "pid mount ipc uts net landlock") != NULL;
    cr_assert_null(hub_devmgr_add(rig.mgr, &c, &err), "strict refuses it");
    cr_assert(strstr(error_get_pretty(err), full ? "did not install its system-call filter (strict)"
                                                 : "sandbox: strict, but"), "%s", error_get_pretty(err));
    error_free(err);
}

/* The layers its jail has, and 'strict': refused where the kernel lacks one. */
Test(confine, the_jail_names_its_layers_and_strict_needs_all)
{
    hub_device *d = add_hostile();
    char buf[160];
    hub_device_confinement(d, buf, sizeof(buf));
    cr_assert(strstr(buf, "seccomp caps no_new_privs"), "%s", buf);
    bool full = strstr(buf, "pid mount ipc uts net landlock") != NULL;
    Error *err = NULL;
    hub_device *s = add_hostile_as("strict", NULL, true, &err);
    if (full) {
        cr_assert_not_null(s, "every layer is there, yet: %s", err ? error_get_pretty(err) : "");
    } else {
        cr_assert_null(s, "a layer is missing (%s), yet strict started it", buf);
        cr_assert(strstr(error_get_pretty(err), "sandbox: strict, but"), "%s", error_get_pretty(err));
        cr_assert(strstr(logbuf, "[-] sandbox: "), "the missing layer is said once:\n%.3000s", logbuf);
        error_free(err);
    }
}

/* ---- who may connect ----------------------------------------------------------------------------------------- */

/* A connection to the attach socket that says @req (NULL: nothing); the hub's answer in @rep. */
static int attach_conn(const char *req, char *rep, size_t len)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", hub_devmgr_attach_socket(rig.mgr));
    int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    cr_assert_geq(s, 0);
    cr_assert_eq(connect(s, (struct sockaddr *)&sa, sizeof(sa)), 0, "connect: %s", strerror(errno));
    if (req)
        cr_assert_eq(send(s, req, strlen(req), 0), (ssize_t)strlen(req));
    return s;
}

static pid_t start_attached(const char *name)
{
    char *prog = test_build_path("bin/hubdev-regdev");
    pid_t pid = fork();
    if (pid == 0) {
        setenv("PLEXUS_ATTACH", hub_devmgr_attach_socket(rig.mgr), 1);
        setenv("PLEXUS_DEVICE_NAME", name, 1);
        unsetenv("PLEXUS_ENDPOINT");
        execl(prog, prog, (char *)NULL);
        _exit(127);
    }
    free(prog);
    return pid;
}

/* A stranger with the device's name but not its key is refused; connections that say nothing hold nobody up. */
Test(confine, attaching_needs_the_devices_key)
{
    int ready[2], done[2];
    cr_assert_eq(pipe(ready), 0);
    cr_assert_eq(pipe(done), 0);
    pid_t impostor = fork();
    if (impostor == 0) {
        /* a stranger, first in line: the right name, a made-up key; then eight connections that say nothing,
         * held until the real device is in */
        alarm(30);
        char rep[128] = "";
        int s = attach_conn("attach outside 0000000000000000000000000000000000000000000000000000000000000000", rep,
                            sizeof(rep));
        int silent[8];
        for (int i = 0; i < 8; i++)
            silent[i] = attach_conn(NULL, NULL, 0);
        if (write(ready[1], "r", 1) != 1)
            _exit(2);
        ssize_t n = recv(s, rep, sizeof(rep) - 1, 0);
        char c;
        if (read(done[0], &c, 1) < 0)
            _exit(2);
        (void)silent;
        _exit(n > 0 && !strncmp(rep, "error: refused", 14) ? 0 : 1);
    }
    close(ready[1]);
    close(done[0]);
    char c;
    cr_assert_eq(read(ready[0], &c, 1), 1, "the stranger did not connect");
    pid_t dev = start_attached("outside");
    static const hub_region_map rm[] = { { "regs", HOSTILE_BASE }, { "posted", HOSTILE_BASE + 0x1000 },
                                         { "shadow", HOSTILE_BASE + 0x2000 }, { "be", HOSTILE_BASE + 0x3000 } };
    hub_device_config cfg = { .name = "outside", .attach = true, .attach_timeout_ms = 8000, .regions = rm,
                              .n_regions = 4, .timeout_ms = 5000 };
    Error *err = NULL;
    hub_device *d = hub_devmgr_add(rig.mgr, &cfg, &err);
    if (write(done[1], "d", 1) != 1)
        cr_assert_fail("the stranger is gone");
    int st;
    cr_assert_eq(waitpid(impostor, &st, 0), impostor);
    cr_assert_not_null(d, "the real device, past the stranger and eight silent connections: %s\nlog:\n%s",
                       err ? error_get_pretty(err) : "", logbuf);
    cr_assert_eq(wr(HOSTILE_BASE + 0x10, 77), MEMTX_OK);
    cr_assert_eq(rd(HOSTILE_BASE + 0x10, NULL), 77);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the stranger was not refused (status 0x%x)", st);
    cr_assert(strstr(logbuf, "[outside] attach as 'outside' refused: wrong key (pid"), "log:\n%.3000s", logbuf);
    victim_alive();
    hub_devmgr_free(rig.mgr);
    rig.mgr = NULL;
    waitpid(dev, &st, 0);
    hub_devmgr_env env = { .log = on_log, .sysmem = &rig.sysmem, .as = &rig.as, .clock = &rig.clk,
                           .ram = rig.blocks, .n_ram = 1 };
    rig.mgr = hub_devmgr_new(&env, &err);
}

static bool can_setuid(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[128];
    unsigned long long eff = 0;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "CapEff: %llx", &eff) == 1)
            break;
    if (f)
        fclose(f);
    return geteuid() == 0 && (eff & (1ull << 7)) && (eff & (1ull << 6));       /* CAP_SETUID, CAP_SETGID */
}

/* The right key from another user is refused too (peer credentials). Needs root to be another user. */
Test(confine, attaching_needs_the_hubs_user)
{
    if (!can_setuid())
        cr_skip_test("only root (with CAP_SETUID) can connect as another user");
    char dir[512];
    snprintf(dir, sizeof(dir), "%s", hub_devmgr_attach_socket(rig.mgr));
    *strrchr(dir, '/') = 0;
    chmod(dir, 0711);                                   /* let the other user reach the socket */
    chmod(hub_devmgr_attach_socket(rig.mgr), 0777);
    pid_t other = fork();
    if (other == 0) {
        alarm(30);
        usleep(200000);
        char keyf[600], key[80] = "", req[300], rep[128] = "";
        snprintf(keyf, sizeof(keyf), "%s/outsider.key", dir);
        FILE *f = fopen(keyf, "r");     /* read as root, before becoming someone else */
        if (!f || !fgets(key, sizeof(key), f))
            _exit(2);
        fclose(f);
        if (setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0)
            _exit(3);
        snprintf(req, sizeof(req), "attach outsider %s", key);
        int s = attach_conn(req, rep, sizeof(rep));
        ssize_t n = recv(s, rep, sizeof(rep) - 1, 0);
        _exit(n > 0 && !strncmp(rep, "error: refused", 14) ? 0 : 1);
    }
    hub_device_config c = { .name = "outsider", .attach = true, .attach_timeout_ms = 1500, .timeout_ms = 500 };
    Error *err = NULL;
    cr_assert_null(hub_devmgr_add(rig.mgr, &c, &err), "another user attached");
    error_free(err);
    int st;
    cr_assert_eq(waitpid(other, &st, 0), other);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
    cr_assert(strstr(logbuf, "[outsider] attach as 'outsider' refused: another user (pid"), "log:\n%.3000s", logbuf);
}

/* A stranger connecting first to a tcp:// endpoint with another key gets nothing, not even the handshake; the
 * device with its key gets through. */
Test(confine, a_tcp_endpoint_lets_in_only_the_devices_key)
{
    uint8_t hub_pub[PLX_CURVE_KEY], hub_sec[PLX_CURVE_KEY], dev_pub[PLX_CURVE_KEY], dev_sec[PLX_CURVE_KEY];
    cr_assert_eq(plx_curve_keypair(hub_pub, hub_sec), 0);
    cr_assert_eq(plx_curve_keypair(dev_pub, dev_sec), 0);
    hub_devmgr_free(rig.mgr);
    hub_devmgr_env env = { .log = on_log, .sysmem = &rig.sysmem, .as = &rig.as, .clock = &rig.clk,
                           .ram = rig.blocks, .n_ram = 1, .curve_secret = hub_sec };
    Error *err = NULL;
    rig.mgr = hub_devmgr_new(&env, &err);
    cr_assert_not_null(rig.mgr);
    char ep[64], zdev[PLX_CURVE_Z85], zdsec[PLX_CURVE_Z85], zhub[PLX_CURVE_Z85];
    snprintf(ep, sizeof(ep), "tcp://127.0.0.1:%u", test_free_tcp_port());
    plx_curve_encode(dev_pub, zdev);
    plx_curve_encode(dev_sec, zdsec);
    plx_curve_encode(hub_pub, zhub);

    pid_t stranger = fork();
    if (stranger == 0) {
        /* first in line, with the hub's public key and a key of its own */
        void *z = zmq_ctx_new(), *s = zmq_socket(z, ZMQ_PAIR);
        char pub[PLX_CURVE_Z85], sec[PLX_CURVE_Z85];
        zmq_curve_keypair(pub, sec);
        int t = 3000;
        zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, zhub, 40);
        zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, pub, 40);
        zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, sec, 40);
        zmq_setsockopt(s, ZMQ_RCVTIMEO, &t, sizeof(t));
        zmq_connect(s, ep);
        zmq_send(s, "hello?", 6, ZMQ_DONTWAIT);
        char buf[64];
        int n = zmq_recv(s, buf, sizeof(buf), 0);
        _exit(n < 0 ? 0 : 1);
    }
    usleep(300000);
    char *prog = test_build_path("bin/hubdev-regdev");
    pid_t dev = fork();
    if (dev == 0) {
        setenv("PLEXUS_ENDPOINT", ep, 1);
        setenv("PLEXUS_CURVE_SECRET", zdsec, 1);
        setenv("PLEXUS_CURVE_SERVER", zhub, 1);
        execl(prog, prog, (char *)NULL);
        _exit(127);
    }
    free(prog);
    static const hub_region_map rm[] = { { "regs", HOSTILE_BASE }, { "posted", HOSTILE_BASE + 0x1000 },
                                         { "shadow", HOSTILE_BASE + 0x2000 }, { "be", HOSTILE_BASE + 0x3000 } };
    hub_device_config c = { .name = "remote", .attach = true, .endpoint = ep, .curve_key = zdev,
                            .attach_timeout_ms = 8000, .regions = rm, .n_regions = 4, .timeout_ms = 5000 };
    hub_device *d = hub_devmgr_add(rig.mgr, &c, &err);
    cr_assert_not_null(d, "%s\nlog:\n%s", err ? error_get_pretty(err) : "", logbuf);
    cr_assert_eq(wr(HOSTILE_BASE + 0x10, 5), MEMTX_OK);
    cr_assert_eq(rd(HOSTILE_BASE + 0x10, NULL), 5);
    int st;
    cr_assert_eq(waitpid(stranger, &st, 0), stranger);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the stranger got a message");
    hub_devmgr_poll(rig.mgr, 0);
    cr_assert(strstr(logbuf, "offering another CURVE key than the device's refused on tcp://"), "log:\n%.3000s",
              logbuf);
    unsigned said = 0;
    cr_assert(sscanf(strstr(logbuf, "[remote] "), "[remote] %u connection", &said) == 1 && said >= 1, "%.3000s",
              logbuf);
    hub_devmgr_free(rig.mgr);
    rig.mgr = hub_devmgr_new(&env, &err);
    waitpid(dev, &st, 0);
}

/* Without the device's key a tcp endpoint is heard on the loopback interface only, and the log says so. */
Test(confine, a_tcp_endpoint_without_a_key_is_loopback_only)
{
    char ep[64], local[64];
    unsigned port = test_free_tcp_port();
    snprintf(ep, sizeof(ep), "tcp://0.0.0.0:%u", port);
    snprintf(local, sizeof(local), "tcp://127.0.0.1:%u", port);
    char *prog = test_build_path("bin/hubdev-regdev");
    pid_t dev = fork();
    if (dev == 0) {
        setenv("PLEXUS_ENDPOINT", local, 1);
        execl(prog, prog, (char *)NULL);
        _exit(127);
    }
    free(prog);
    static const hub_region_map rm[] = { { "regs", HOSTILE_BASE }, { "posted", HOSTILE_BASE + 0x1000 },
                                         { "shadow", HOSTILE_BASE + 0x2000 }, { "be", HOSTILE_BASE + 0x3000 } };
    hub_device_config c = { .name = "plain", .attach = true, .endpoint = ep, .attach_timeout_ms = 8000,
                            .regions = rm, .n_regions = 4, .timeout_ms = 5000 };
    Error *err = NULL;
    hub_device *d = hub_devmgr_add(rig.mgr, &c, &err);
    cr_assert_not_null(d, "%s\nlog:\n%s", err ? error_get_pretty(err) : "", logbuf);
    cr_assert_str_eq(hub_device_endpoint(d), local);
    char want[200];
    snprintf(want, sizeof(want), "[plain] no CURVE key for the device (curve_key): its endpoint is bound to the "
             "loopback interface only, %s", local);
    cr_assert(strstr(logbuf, want), "log:\n%.3000s", logbuf);
    cr_assert_eq(rd(HOSTILE_BASE + 0xb4, NULL), 0x1234);
    hub_devmgr_free(rig.mgr);
    hub_devmgr_env env = { .log = on_log, .sysmem = &rig.sysmem, .as = &rig.as, .clock = &rig.clk,
                           .ram = rig.blocks, .n_ram = 1 };
    rig.mgr = hub_devmgr_new(&env, &err);
    int st;
    waitpid(dev, &st, 0);
}
