/* The device tree the firmware finds in a1, shaped like QEMU's riscv virt machine's. */
#define _GNU_SOURCE
#include "machine.h"

#include <errno.h>
#include <inttypes.h>
#include <libfdt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLINT_SIZE      0x10000ULL
#define PLIC_SIZE       0x4000000ULL
#define POWEROFF_SIZE   0x1000ULL

enum { PH_CPU = 1, PH_INTC, PH_PLIC, PH_TEST };

typedef struct dtw { void *fdt; int err; } dtw;

static void chk(dtw *w, int r)
{
    if (r < 0 && !w->err)
        w->err = r;
}

static void prop_u32(dtw *w, const char *name, uint32_t v)
{
    chk(w, fdt_property_u32(w->fdt, name, v));
}

static void prop_str(dtw *w, const char *name, const char *s)
{
    chk(w, fdt_property_string(w->fdt, name, s));
}

/* Several strings in one property: "a\0b\0". */
static void prop_strs(dtw *w, const char *name, const char *const *s, size_t n)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += strlen(s[i]) + 1;
    char *buf = malloc(len ? len : 1), *p = buf;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(s[i]) + 1;
        memcpy(p, s[i], l);
        p += l;
    }
    chk(w, fdt_property(w->fdt, name, buf, (int)len));
    free(buf);
}

static void prop_cells(dtw *w, const char *name, const uint32_t *c, size_t n)
{
    fdt32_t *buf = calloc(n ? n : 1, sizeof(fdt32_t));
    for (size_t i = 0; i < n; i++)
        buf[i] = cpu_to_fdt32(c[i]);
    chk(w, fdt_property(w->fdt, name, buf, (int)(n * sizeof(fdt32_t))));
    free(buf);
}

static void prop_reg(dtw *w, uint64_t base, uint64_t size)
{
    uint32_t c[4] = { (uint32_t)(base >> 32), (uint32_t)base, (uint32_t)(size >> 32), (uint32_t)size };
    prop_cells(w, "reg", c, 4);
}

static void begin(dtw *w, const char *name, uint64_t addr, bool with_addr)
{
    char n[128];
    if (with_addr)
        snprintf(n, sizeof(n), "%s@%" PRIx64, name, addr);
    else
        snprintf(n, sizeof(n), "%s", name);
    chk(w, fdt_begin_node(w->fdt, n));
}

static void end(dtw *w)
{
    chk(w, fdt_end_node(w->fdt));
}

/* A device's node: as the machine file names it, else as the device declared it, else the device's name. */
static const char *node_name(const hub_mc_device *d, const hub_dt_device_info *info)
{
    if (d->dt_node)
        return d->dt_node;
    return info->node && *info->node ? info->node : d->dev.name;
}

static void build(dtw *w, const hub_mconfig *c, const hub_dt_device_info *devs)
{
    void *fdt = w->fdt;
    chk(w, fdt_finish_reservemap(fdt));
    begin(w, "", 0, false);
    prop_u32(w, "#address-cells", 2);
    prop_u32(w, "#size-cells", 2);
    prop_str(w, "compatible", "riscv-virtio");
    char model[160];
    snprintf(model, sizeof(model), "plexus,%s", c->name);
    prop_str(w, "model", model);

    begin(w, "chosen", 0, false);       /* the rest of /chosen: patch_chosen() */
    if (c->console >= 0) {
        const hub_mc_device *d = &c->devices[c->console];
        if (d->n_dt_compatible) {
            char path[192];
            snprintf(path, sizeof(path), "/soc/%s@%" PRIx64, node_name(d, &devs[c->console]),
                     devs[c->console].base);
            prop_str(w, "stdout-path", path);
        }
    }
    end(w);

    if (c->poweroff) {
        static const struct { const char *node, *compat; uint32_t value; } sc[] = {
            { "poweroff", "syscon-poweroff", 0x5555 }, { "reboot", "syscon-reboot", 0x7777 },
        };
        for (size_t i = 0; i < 2; i++) {
            begin(w, sc[i].node, 0, false);
            prop_u32(w, "value", sc[i].value);
            prop_u32(w, "offset", 0);
            prop_u32(w, "regmap", PH_TEST);
            prop_str(w, "compatible", sc[i].compat);
            end(w);
        }
    }

    for (size_t i = 0; i < c->n_ram; i++) {
        begin(w, "memory", c->ram[i].base, true);
        prop_str(w, "device_type", "memory");
        prop_reg(w, c->ram[i].base, c->ram[i].size);
        end(w);
    }

    begin(w, "cpus", 0, false);
    prop_u32(w, "#address-cells", 1);
    prop_u32(w, "#size-cells", 0);
    prop_u32(w, "timebase-frequency", (uint32_t)c->timebase_hz);
    begin(w, "cpu", 0, true);
    prop_u32(w, "phandle", PH_CPU);
    prop_str(w, "device_type", "cpu");
    prop_u32(w, "reg", 0);
    prop_str(w, "status", "okay");
    prop_str(w, "compatible", "riscv");
    /* The hart: Unicorn's SiFive U54 model, base ISA with M, A, F, D, C (Zicsr and Zifencei are part of
     * it); its satp takes Sv39, Sv48 and Sv57, and mmu-type names the largest. */
    prop_str(w, "riscv,isa", HUB_DT_RISCV_ISA);
    prop_str(w, "mmu-type", HUB_DT_MMU_TYPE);
    begin(w, "interrupt-controller", 0, false);
    prop_u32(w, "#interrupt-cells", 1);
    chk(w, fdt_property(fdt, "interrupt-controller", NULL, 0));
    prop_str(w, "compatible", "riscv,cpu-intc");
    prop_u32(w, "phandle", PH_INTC);
    end(w);
    end(w);
    begin(w, "cpu-map", 0, false);
    begin(w, "cluster0", 0, false);
    begin(w, "core0", 0, false);
    prop_u32(w, "cpu", PH_CPU);
    end(w);
    end(w);
    end(w);
    end(w);

    begin(w, "soc", 0, false);
    prop_u32(w, "#address-cells", 2);
    prop_u32(w, "#size-cells", 2);
    prop_str(w, "compatible", "simple-bus");
    chk(w, fdt_property(fdt, "ranges", NULL, 0));

    for (size_t i = 0; i < c->n_devices; i++) {
        const hub_mc_device *d = &c->devices[i];
        if (!d->n_dt_compatible)
            continue;
        begin(w, node_name(d, &devs[i]), devs[i].base, true);
        if (d->dev.n_irqs) {
            uint32_t irqs[64];
            size_t n = 0;
            for (size_t j = 0; j < d->dev.n_irqs && n < 64; j++)
                irqs[n++] = d->dev.irqs[j].irq;
            prop_cells(w, "interrupts", irqs, n);
            prop_u32(w, "interrupt-parent", PH_PLIC);
        }
        for (size_t j = 0; j < d->n_dt_props; j++) {
            const hub_dt_prop *p = &d->dt_props[j];
            if (p->kind == HUB_DT_EMPTY)
                chk(w, fdt_property(fdt, p->name, NULL, 0));
            else if (p->kind == HUB_DT_CELLS)
                prop_cells(w, p->name, p->cells, p->n_cells);
            else
                prop_strs(w, p->name, (const char *const *)p->strings, p->n_strings);
        }
        prop_reg(w, devs[i].base, devs[i].size);
        prop_strs(w, "compatible", (const char *const *)d->dt_compatible, d->n_dt_compatible);
        end(w);
    }

    if (c->poweroff) {
        begin(w, "test", c->poweroff_base, true);
        prop_u32(w, "phandle", PH_TEST);
        prop_reg(w, c->poweroff_base, POWEROFF_SIZE);
        static const char *const tc[] = { "sifive,test1", "sifive,test0", "syscon" };
        prop_strs(w, "compatible", tc, 3);
        end(w);
    }
    if (c->plic) {
        begin(w, "plic", c->plic_base, true);
        prop_u32(w, "phandle", PH_PLIC);
        prop_u32(w, "riscv,ndev", c->plic_sources);
        prop_reg(w, c->plic_base, PLIC_SIZE);
        uint32_t ie[4] = { PH_INTC, 11, PH_INTC, 9 };      /* M-mode then S-mode external interrupt */
        prop_cells(w, "interrupts-extended", ie, 4);
        chk(w, fdt_property(fdt, "interrupt-controller", NULL, 0));
        static const char *const pc[] = { "sifive,plic-1.0.0", "riscv,plic0" };
        prop_strs(w, "compatible", pc, 2);
        prop_u32(w, "#address-cells", 0);
        prop_u32(w, "#interrupt-cells", 1);
        end(w);
    }
    if (c->clint) {
        begin(w, "clint", c->clint_base, true);
        uint32_t ie[4] = { PH_INTC, 3, PH_INTC, 7 };       /* software then timer interrupt */
        prop_cells(w, "interrupts-extended", ie, 4);
        prop_reg(w, c->clint_base, CLINT_SIZE);
        static const char *const cc[] = { "sifive,clint0", "riscv,clint0" };
        prop_strs(w, "compatible", cc, 2);
        end(w);
    }
    end(w);     /* soc */
    end(w);     /* root */
    chk(w, fdt_finish(fdt));
}

/* The generated tree, packed. */
static int generate(const hub_mconfig *c, const hub_dt_device_info *devs, void **out)
{
    for (int cap = 16384; cap <= (1 << 22); cap *= 2) {
        dtw w = { .fdt = malloc((size_t)cap) };
        if (!w.fdt)
            return -FDT_ERR_NOSPACE;
        w.err = fdt_create(w.fdt, cap);
        if (!w.err)
            build(&w, c, devs);
        if (!w.err) {
            *out = w.fdt;
            return 0;
        }
        free(w.fdt);
        if (w.err != -FDT_ERR_NOSPACE)
            return w.err;
    }
    return -FDT_ERR_NOSPACE;
}

static int set_dt_prop(void *fdt, int node, const hub_dt_prop *p)
{
    if (p->kind == HUB_DT_EMPTY)
        return fdt_setprop(fdt, node, p->name, NULL, 0);
    if (p->kind == HUB_DT_CELLS) {
        int r = fdt_setprop(fdt, node, p->name, NULL, 0);
        for (size_t i = 0; r >= 0 && i < p->n_cells; i++)
            r = fdt_appendprop_u32(fdt, node, p->name, p->cells[i]);
        return r;
    }
    int r = fdt_setprop(fdt, node, p->name, NULL, 0);
    for (size_t i = 0; r >= 0 && i < p->n_strings; i++)
        r = fdt_appendprop_string(fdt, node, p->name, p->strings[i]);
    return r;
}

/* /chosen gets what QEMU puts there for -append and -initrd, the rng seed and the description's extras. */
static int patch_chosen(void *fdt, const hub_mconfig *c, const hub_dt_boot *b)
{
    int node = fdt_path_offset(fdt, "/chosen");
    if (node == -FDT_ERR_NOTFOUND)
        node = fdt_add_subnode(fdt, 0, "chosen");
    if (node < 0)
        return node;
    int r = 0;
    if (c->bootargs && *c->bootargs)
        r = fdt_setprop_string(fdt, node, "bootargs", c->bootargs);
    if (r >= 0 && b && b->has_initrd) {
        r = fdt_setprop_u64(fdt, node, "linux,initrd-start", b->initrd_start);
        if (r >= 0)
            r = fdt_setprop_u64(fdt, node, "linux,initrd-end", b->initrd_end);
    }
    if (r >= 0 && b && b->rng_seed)
        r = fdt_setprop(fdt, node, "rng-seed", b->rng_seed, (int)b->rng_seed_len);
    for (size_t i = 0; r >= 0 && i < c->n_chosen; i++)
        r = set_dt_prop(fdt, node, &c->chosen[i]);
    return r < 0 ? r : 0;
}

int hub_dtb_build(const hub_mconfig *c, const hub_dt_device_info *devs, const hub_dt_boot *boot, void **dtb,
                  size_t *size, Error **errp)
{
    void *base = NULL;
    int r = c->dtb_blob ? 0 : generate(c, devs, &base);
    const void *tree = c->dtb_blob ? c->dtb_blob : base;
    size_t cap = r < 0 ? 0 : fdt_totalsize(tree) + 4096 + (c->bootargs ? strlen(c->bootargs) : 0);
    for (size_t i = 0; i < c->n_chosen; i++)
        cap += 64 + strlen(c->chosen[i].name) + 4 * c->chosen[i].n_cells;
    for (size_t i = 0; i < c->n_chosen; i++)
        for (size_t k = 0; k < c->chosen[i].n_strings; k++)
            cap += strlen(c->chosen[i].strings[k]) + 1;
    void *fdt = NULL;
    for (; r >= 0; cap *= 2) {
        if (cap > (64u << 20)) {
            r = -FDT_ERR_NOSPACE;
            break;
        }
        free(fdt);
        fdt = malloc(cap);
        if (!fdt)
            abort();
        r = fdt_open_into(tree, fdt, (int)cap);
        if (r >= 0)
            r = patch_chosen(fdt, c, boot);
        if (r >= 0)
            r = fdt_pack(fdt);
        if (r != -FDT_ERR_NOSPACE)
            break;
        r = 0;
    }
    free(base);
    if (r < 0) {
        free(fdt);
        error_setg(errp, "%s%sdevice tree: %s", c->dtb_file ? c->dtb_file : "", c->dtb_file ? ": " : "",
                   fdt_strerror(r));
        return -EINVAL;
    }
    *dtb = fdt;
    *size = fdt_totalsize(fdt);
    return 0;
}

uint64_t hub_dtb_address(const hub_mconfig *c, size_t dtb_size)
{
    const uint64_t three_gib = 3ULL << 30, two_mib = 2ULL << 20;
    uint64_t span = c->ram[0].size < three_gib ? c->ram[0].size : three_gib;
    uint64_t end = c->ram[0].base + span;
    uint64_t at = (end - dtb_size) & ~(two_mib - 1);
    if (at < c->ram[0].base || dtb_size > span)     /* a RAM block under 2 MiB: page-align instead */
        at = (end - dtb_size) & ~0xfffULL;
    return at;
}
