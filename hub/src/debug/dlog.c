/* -d/-D: the CPU observer that writes QEMU-style diagnostic lines. */
#define _GNU_SOURCE
#include "dlog.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

const char hub_dlog_help[] =
    "guest_errors  guest accesses to unassigned addresses and of a size the device does not take,\n"
    "              with the guest pc and privilege; errors and warnings the devices report\n"
    "unimp         CSR instructions the hart refused (unimplemented, or not at that privilege)\n"
    "int           exceptions and interrupts taken: cause, epc, tval, privilege change\n"
    "exec          every block of guest code executed (slow; large)\n"
    "mmio          every device register access: region, address, size, value, pc\n";

static const struct { const char *name; unsigned bit; } items[] = {
    { "guest_errors", HUB_DLOG_GUEST_ERRORS }, { "unimp", HUB_DLOG_UNIMP }, { "int", HUB_DLOG_INT },
    { "exec", HUB_DLOG_EXEC }, { "mmio", HUB_DLOG_MMIO },
};

int
hub_dlog_parse(const char *spec, unsigned *mask, Error **errp)
{
    unsigned m = 0;
    const char *p = spec;
    while (*p) {
        size_t n = strcspn(p, ",");
        bool found = false;
        for (size_t i = 0; i < sizeof(items) / sizeof(items[0]) && !found; i++)
            if (strlen(items[i].name) == n && !strncmp(items[i].name, p, n)) {
                m |= items[i].bit;
                found = true;
            }
        if (!found && n) {
            error_setg(errp, "-d: unknown item '%.*s'; the items are guest_errors, unimp, int, exec, mmio "
                       "(-d help tells what each logs)", (int)n, p);
            return -EINVAL;
        }
        p += n + (p[n] == ',');
    }
    *mask = m;
    return 0;
}

struct hub_dlog {
    unsigned mask;
    char **mmio_devices;    /* NULL-terminated; NULL: every device (with HUB_DLOG_MMIO) */
    FILE *out;
    void (*begin_line)(void *opaque);
    void *opaque;
    hub_cpu_observer obs;
};

static const char *priv_name(unsigned p)
{
    return p == 0 ? "U" : p == 1 ? "S" : p == 3 ? "M" : "?";
}

const char *
hub_cause_name(bool interrupt, uint64_t cause)
{
    static const char *const exc[] = {
        "instruction address misaligned", "instruction access fault", "illegal instruction", "breakpoint",
        "load address misaligned", "load access fault", "store address misaligned", "store access fault",
        "ecall from U", "ecall from S", "reserved", "ecall from M", "instruction page fault",
        "load page fault", "reserved", "store page fault",
    };
    static const char *const irq[] = {
        "reserved", "supervisor software", "reserved", "machine software", "reserved", "supervisor timer",
        "reserved", "machine timer", "reserved", "supervisor external", "reserved", "machine external",
    };
    if (interrupt)
        return cause < sizeof(irq) / sizeof(irq[0]) ? irq[cause] : "platform";
    return cause < sizeof(exc) / sizeof(exc[0]) ? exc[cause] : "unknown";
}

static FILE *line(hub_dlog *l)
{
    if (l->begin_line)
        l->begin_line(l->opaque);
    return l->out;
}

static void done(hub_dlog *l)
{
    fflush(l->out);
}

static void on_trap(void *opaque, const hub_cpu_trap_info *t)
{
    hub_dlog *l = opaque;
    fprintf(line(l), "int: %s %" PRIu64 " (%s) epc 0x%" PRIx64 " tval 0x%" PRIx64 " %s->%s\n",
            t->interrupt ? "interrupt" : "exception", t->cause, hub_cause_name(t->interrupt, t->cause), t->epc,
            t->tval, priv_name(t->from_priv), priv_name(t->to_priv));
    done(l);
}

/* Is @region ("DEVICE.REGION") one of a device whose accesses are logged by itself? */
static bool traced_device(const hub_dlog *l, const char *region)
{
    const char *dot = region ? strchr(region, '.') : NULL;
    for (char *const *d = l->mmio_devices; d && *d && dot; d++)
        if (strlen(*d) == (size_t)(dot - region) && !strncmp(*d, region, (size_t)(dot - region)))
            return true;
    return false;
}

static void on_access(void *opaque, const hub_cpu_access_info *a, uint64_t pc, unsigned priv)
{
    hub_dlog *l = opaque;
    if (a->error && (l->mask & HUB_DLOG_GUEST_ERRORS)) {
        FILE *f = line(l);
        fprintf(f, "guest_errors: %u-byte %s at 0x%" PRIx64 " ", a->size, a->write ? "store" : "load", a->addr);
        if (a->unassigned)
            fprintf(f, "where nothing is mapped");
        else
            fprintf(f, "refused by region '%s' (size or offset it does not take)", a->region ? a->region : "?");
        fprintf(f, ", pc 0x%" PRIx64 " in %s-mode: access fault\n", pc, priv_name(priv));
        done(l);
    }
    if ((l->mask & HUB_DLOG_MMIO) || traced_device(l, a->region)) {
        fprintf(line(l), "mmio: %s %s %u @0x%" PRIx64 " %s 0x%" PRIx64 "%s pc 0x%" PRIx64 "\n",
                a->region ? a->region : "-", a->write ? "write" : "read", a->size, a->addr, a->write ? "<-" : "=",
                a->value, a->error ? " (refused)" : "", pc);
        done(l);
    }
}

static void on_block(void *opaque, uint64_t pc, uint32_t size, unsigned priv)
{
    hub_dlog *l = opaque;
    fprintf(line(l), "exec: 0x%" PRIx64 " +%" PRIu32 " %s\n", pc, size, priv_name(priv));
}

static void on_unimp(void *opaque, unsigned csr, uint64_t pc, unsigned priv)
{
    hub_dlog *l = opaque;
    fprintf(line(l), "unimp: CSR 0x%03x refused at pc 0x%" PRIx64 " in %s-mode: illegal instruction\n", csr,
            pc, priv_name(priv));
    done(l);
}

void
hub_dlog_device(hub_dlog *l, const char *device, const char *level, const char *msg)
{
    if (!l || !(l->mask & HUB_DLOG_GUEST_ERRORS) || l->out == stderr)
        return;     /* on stderr the console line is the same line */
    fprintf(line(l), "guest_errors: device %s: %s: %s\n", device, level, msg);
    done(l);
}

hub_dlog *
hub_dlog_new(unsigned mask, FILE *out, const char *const *mmio_devices, void (*begin_line)(void *opaque),
             void *opaque)
{
    hub_dlog *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    *l = (hub_dlog){ .mask = mask, .out = out, .begin_line = begin_line, .opaque = opaque };
    size_t n = 0;
    while (mmio_devices && mmio_devices[n])
        n++;
    if (n && !(mask & HUB_DLOG_MMIO)) {
        l->mmio_devices = calloc(n + 1, sizeof(char *));
        if (!l->mmio_devices)
            abort();
        for (size_t i = 0; i < n; i++)
            l->mmio_devices[i] = strdup(mmio_devices[i]);
    }
    unsigned ev = 0;
    if (mask & HUB_DLOG_INT)
        ev |= HUB_CPU_OBS_TRAP;
    if (mask & HUB_DLOG_GUEST_ERRORS)
        ev |= HUB_CPU_OBS_MMIO_ERROR;
    if ((mask & HUB_DLOG_MMIO) || l->mmio_devices)
        ev |= HUB_CPU_OBS_MMIO | HUB_CPU_OBS_PC;
    if (mask & HUB_DLOG_EXEC)
        ev |= HUB_CPU_OBS_BLOCK;
    if (mask & HUB_DLOG_UNIMP)
        ev |= HUB_CPU_OBS_UNIMP;
    l->obs = (hub_cpu_observer){ .events = ev, .trap = on_trap, .access = on_access, .block = on_block,
                                 .unimp_csr = on_unimp };
    return l;
}

void
hub_dlog_free(hub_dlog *l)
{
    if (!l)
        return;
    fflush(l->out);
    for (char **d = l->mmio_devices; d && *d; d++)
        free(*d);
    free(l->mmio_devices);
    free(l);
}

const hub_cpu_observer *
hub_dlog_observer(hub_dlog *l)
{
    return l && l->obs.events ? &l->obs : NULL;
}

void
hub_print_registers(hub_cpu *cpu, FILE *out)
{
    static const char *const abi[32] = {
        "zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1", "a0", "a1", "a2", "a3", "a4", "a5",
        "a6", "a7", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "t3", "t4", "t5", "t6",
    };
    uint64_t v = 0, priv = 0;
    hub_cpu_get_reg(cpu, HUB_REG_PC, &v);
    hub_cpu_get_reg(cpu, HUB_REG_PRIV, &priv);
    fprintf(out, " pc       %016" PRIx64 "  priv %s\n", v, priv_name((unsigned)priv));
    for (unsigned r = 0; r < 32; r++) {
        hub_cpu_get_reg(cpu, r, &v);
        fprintf(out, " x%-2u/%-4s %016" PRIx64 "%s", r, abi[r], v, r % 4 == 3 ? "\n" : " ");
    }
    size_t n;
    const hub_csr_name *csrs = hub_cpu_csrs(&n);
    unsigned col = 0;
    for (size_t i = 0; i < n; i++) {
        if (csrs[i].csr <= HUB_CSR_FCSR)
            continue;
        hub_cpu_get_reg(cpu, HUB_REG_CSR0 + csrs[i].csr, &v);
        fprintf(out, " %-10s %016" PRIx64 "%s", csrs[i].name, v, ++col % 3 == 0 ? "\n" : " ");
    }
    if (col % 3)
        fputc('\n', out);
}
