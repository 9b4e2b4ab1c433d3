/*
 * libFuzzer target: the GDB stub as a debugger (or anyone who reaches its socket) could talk to it. A real
 * hart (RAM and a device region, never run) stopped for the debugger; the input arrives on the stub's socket
 * as one read; the stub must answer without crashing, reading or writing outside its buffers, or touching
 * the device region (reads of device registers are refused). Whatever the input asked for (continue, step,
 * detach, kill) is undone before the next one: the guest is stopped again, the debugger reconnected.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <plexus/memory.h>

#include "cpu.h"
#include "gdb.h"
#include "vclock.h"

#define RAM_BASE 0x80000000ull
#define RAM_SIZE (1u << 20)

static struct {
    vclock clock;
    MemoryRegion root, ram, dev;
    AddressSpace as;
    hub_cpu *cpu;
    hub_gdb *gdb;
    char path[108];
    int client;
    bool resumed;
    unsigned device_accesses;
    unsigned runs;
} F;

static uint64_t dev_read(void *opaque, hwaddr addr, unsigned size)
{
    F.device_accesses++;
    return 0;
}

static void dev_write(void *opaque, hwaddr addr, uint64_t data, unsigned size)
{
    F.device_accesses++;
}

static const MemoryRegionOps dev_ops = {
    .read = dev_read, .write = dev_write, .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = { .min_access_size = 1, .max_access_size = 8 },
};

static void on_resume(void *opaque)
{
    F.resumed = true;
}

static void on_kill(void *opaque)
{
    F.resumed = true;
}

static void on_monitor(void *opaque, const char *cmd, FILE *out)
{
    fprintf(out, "monitor: %s\n", cmd);
}

static void connect_client(void)
{
    F.client = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", F.path);
    if (connect(F.client, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        abort();
    hub_gdb_service(F.gdb);     /* accept */
    hub_gdb_stopped(F.gdb, &(hub_cpu_debug_event){ .reason = HUB_CPU_STOP_BREAK, .pc = RAM_BASE });
}

static void setup(void)
{
    Error *err = NULL;
    vclock_init(&F.clock);
    memory_region_init(&F.root, NULL, "system", UINT64_MAX);
    memory_region_init_ram(&F.ram, NULL, "ram", RAM_SIZE, &err);
    memory_region_add_subregion(&F.root, RAM_BASE, &F.ram);
    memory_region_init_io(&F.dev, NULL, &dev_ops, NULL, "dev", 0x1000);
    memory_region_add_subregion(&F.root, 0x10000000, &F.dev);
    address_space_init(&F.as, &F.root, "memory");
    hub_cpu_config cfg = { .as = &F.as, .clock = &F.clock, .insns_per_ns = 0.1, .reset_pc = RAM_BASE };
    F.cpu = hub_cpu_new(&cfg, &err);
    if (!F.cpu)
        abort();
    snprintf(F.path, sizeof(F.path), "/tmp/plexus-fuzz-gdb-%d.sock", (int)getpid());
    char spec[128];
    snprintf(spec, sizeof(spec), "unix:%s", F.path);
    hub_gdb_host h = { .cpu = F.cpu, .resume = on_resume, .kill = on_kill, .monitor = on_monitor, .opaque = NULL };
    if (hub_gdb_open(spec, &h, &F.gdb, &err) < 0)
        abort();
    connect_client();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!F.cpu)
        setup();
    if (size > 65536)
        return 0;
    F.resumed = false;
    char buf[65536];
    /* in pieces, reading the replies in between, so that the stub never waits on a full socket */
    for (size_t at = 0; at < size && hub_gdb_connected(F.gdb);) {
        size_t n = size - at < 128 ? size - at : 128;
        if (send(F.client, data + at, n, MSG_NOSIGNAL) != (ssize_t)n)
            break;
        hub_gdb_service(F.gdb);
        while (recv(F.client, buf, sizeof(buf), MSG_DONTWAIT) > 0)
            ;
        at += n;
    }
    if (F.device_accesses)
        abort();        /* a device register was touched without `debug-io on` */
    if (!hub_gdb_connected(F.gdb)) {
        close(F.client);
        connect_client();
    } else if (F.resumed) {
        hub_gdb_stopped(F.gdb, &(hub_cpu_debug_event){ .reason = HUB_CPU_STOP_STEP, .pc = RAM_BASE });
        while (recv(F.client, buf, sizeof(buf), MSG_DONTWAIT) > 0)
            ;
    }
    /* breakpoints and watchpoints pile up to their limits (-ENOSPC is a path too), then go: changing the
     * watchpoint hooks drops all translated code, which takes Unicorn ~30 ms */
    if (++F.runs % 64 == 0)
        hub_cpu_debug_clear(F.cpu);
    return 0;
}
