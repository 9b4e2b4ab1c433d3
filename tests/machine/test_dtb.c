/* The generated device tree: nodes and properties as QEMU's virt machine has them, readable by dtc. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <libfdt.h>

#include "common.h"
#include "machine.h"

static const char yaml[] =
    "name: dtbtest\n"
    "ram:\n"
    "  - name: main\n"
    "    base: 0x80000000\n"
    "    size: 128M\n"
    "bootargs: console=ttyS0\n"
    "console: uart0\n"
    "devices:\n"
    "  - name: uart0\n"
    "    program: plexus-fake-dev\n"
    "    base: 0x10000000\n"
    "    irq: 10\n"
    "    dt:\n"
    "      compatible: ns16550a\n"
    "      properties:\n"
    "        clock-frequency: 3686400\n"
    "        label: [a, b]\n"
    "        wakeup-source: true\n"
    "  - name: dma0\n"
    "    program: plexus-fake-dev\n"
    "    base: 0x10010000\n"
    "    irq: 12\n"
    "    dt:\n"
    "      compatible: [\"plexus,dma\", \"plexus,dma-v0\"]\n"
    "      node: dma\n"
    "  - name: hidden\n"
    "    program: plexus-fake-dev\n"
    "    base: 0x10020000\n";

static char *dir;
static hub_mconfig *cfg;
static void *dtb;
static size_t dtb_size;

static void setup(void)
{
    dir = tmpdir_new();
    free(write_file(dir, "plexus-fake-dev", "#!/bin/sh\n", 10, 0755));
    char *p = write_file(dir, "m.yaml", yaml, sizeof(yaml) - 1, 0644);
    hub_mconfig_opts o = { .exe_dir = dir };
    Error *err = NULL;
    cr_assert_eq(hub_mconfig_load(p, &o, &cfg, &err), 0, "%s", err ? error_get_pretty(err) : "");
    free(p);
    /* the UART declares "serial" (as plexus-uart16550 does); dma0's declaration loses to its `dt.node` */
    hub_dt_device_info info[3] = { { 0x10000000, 0x100, "serial" }, { 0x10010000, 0x1000, "dma-controller" },
                                   { 0x10020000, 0x10, NULL } };
    cr_assert_eq(hub_dtb_build(cfg, info, NULL, &dtb, &dtb_size, &err), 0, "%s", err ? error_get_pretty(err) : "");
    cr_assert_eq(fdt_check_header(dtb), 0);
    cr_assert_eq(fdt_totalsize(dtb), dtb_size);
}

static void teardown(void)
{
    free(dtb);
    hub_mconfig_free(cfg);
    tmpdir_remove(dir);
}

TestSuite(machine_dtb, .init = setup, .fini = teardown);

static int node(const char *path)
{
    int off = fdt_path_offset(dtb, path);
    cr_assert_geq(off, 0, "node %s missing: %s", path, fdt_strerror(off));
    return off;
}

static uint32_t u32(const char *path, const char *prop)
{
    int len;
    const fdt32_t *v = fdt_getprop(dtb, node(path), prop, &len);
    cr_assert_not_null(v, "%s:%s missing", path, prop);
    cr_assert_eq(len, 4, "%s:%s has %d bytes", path, prop, len);
    return fdt32_to_cpu(*v);
}

static void cells(const char *path, const char *prop, const uint32_t *want, int n)
{
    int len;
    const fdt32_t *v = fdt_getprop(dtb, node(path), prop, &len);
    cr_assert_not_null(v, "%s:%s missing", path, prop);
    cr_assert_eq(len, n * 4, "%s:%s has %d bytes", path, prop, len);
    for (int i = 0; i < n; i++)
        cr_expect_eq(fdt32_to_cpu(v[i]), want[i], "%s:%s cell %d", path, prop, i);
}

static void str(const char *path, const char *prop, const char *want, int want_len)
{
    int len;
    const char *v = fdt_getprop(dtb, node(path), prop, &len);
    cr_assert_not_null(v, "%s:%s missing", path, prop);
    cr_assert_eq(len, want_len, "%s:%s length %d", path, prop, len);
    cr_expect_eq(memcmp(v, want, (size_t)len), 0, "%s:%s value", path, prop);
}

Test(machine_dtb, root_memory_chosen)
{
    cr_expect_eq(u32("/", "#address-cells"), 2);
    cr_expect_eq(u32("/", "#size-cells"), 2);
    str("/", "compatible", "riscv-virtio", 13);
    str("/memory@80000000", "device_type", "memory", 7);
    cells("/memory@80000000", "reg", (uint32_t[]){ 0, 0x80000000, 0, 0x8000000 }, 4);
    str("/chosen", "stdout-path", "/soc/serial@10000000", 21);
    str("/chosen", "bootargs", "console=ttyS0", 14);
}

Test(machine_dtb, cpus)
{
    cr_expect_eq(u32("/cpus", "timebase-frequency"), 10000000);
    cr_expect_eq(u32("/cpus/cpu@0", "reg"), 0);
    str("/cpus/cpu@0", "riscv,isa", "rv64imafdc_zicsr_zifencei", 26);
    str("/cpus/cpu@0", "mmu-type", "riscv,sv57", 11);
    str("/cpus/cpu@0", "device_type", "cpu", 4);
    str("/cpus/cpu@0/interrupt-controller", "compatible", "riscv,cpu-intc", 15);
    cr_expect_eq(u32("/cpus/cpu@0/interrupt-controller", "#interrupt-cells"), 1);
    cr_expect_not_null(fdt_getprop(dtb, node("/cpus/cpu@0/interrupt-controller"), "interrupt-controller", NULL));
}

Test(machine_dtb, clint_plic_test)
{
    uint32_t intc = u32("/cpus/cpu@0/interrupt-controller", "phandle");
    str("/soc/clint@2000000", "compatible", "sifive,clint0\0riscv,clint0", 27);
    cells("/soc/clint@2000000", "interrupts-extended", (uint32_t[]){ intc, 3, intc, 7 }, 4);
    cells("/soc/clint@2000000", "reg", (uint32_t[]){ 0, 0x2000000, 0, 0x10000 }, 4);
    str("/soc/plic@c000000", "compatible", "sifive,plic-1.0.0\0riscv,plic0", 30);
    cr_expect_eq(u32("/soc/plic@c000000", "riscv,ndev"), 96);
    cells("/soc/plic@c000000", "interrupts-extended", (uint32_t[]){ intc, 11, intc, 9 }, 4);
    str("/soc/test@100000", "compatible", "sifive,test1\0sifive,test0\0syscon", 33);
    uint32_t test = u32("/soc/test@100000", "phandle");
    cr_expect_eq(u32("/poweroff", "regmap"), test);
    cr_expect_eq(u32("/poweroff", "value"), 0x5555);
    str("/poweroff", "compatible", "syscon-poweroff", 16);
    cr_expect_eq(u32("/reboot", "value"), 0x7777);
}

Test(machine_dtb, devices)
{
    uint32_t plic = u32("/soc/plic@c000000", "phandle");
    str("/soc/serial@10000000", "compatible", "ns16550a", 9);
    cr_expect_eq(u32("/soc/serial@10000000", "clock-frequency"), 3686400);
    cr_expect_eq(u32("/soc/serial@10000000", "interrupts"), 10);
    cr_expect_eq(u32("/soc/serial@10000000", "interrupt-parent"), plic);
    cells("/soc/serial@10000000", "reg", (uint32_t[]){ 0, 0x10000000, 0, 0x100 }, 4);
    str("/soc/serial@10000000", "label", "a\0b", 4);
    int len = -1;
    cr_expect_not_null(fdt_getprop(dtb, node("/soc/serial@10000000"), "wakeup-source", &len));
    cr_expect_eq(len, 0);
    str("/soc/dma@10010000", "compatible", "plexus,dma\0plexus,dma-v0", 25);
    cells("/soc/dma@10010000", "reg", (uint32_t[]){ 0, 0x10010000, 0, 0x1000 }, 4);
    cr_expect_eq(u32("/soc/dma@10010000", "interrupts"), 12);
    /* a device without `dt:` gets no node */
    cr_expect_lt(fdt_path_offset(dtb, "/soc/hidden@10020000"), 0);
}

Test(machine_dtb, placed_at_top_of_ram_2mib_aligned)
{
    uint64_t a = hub_dtb_address(cfg, dtb_size);
    cr_expect_eq(a, 0x80000000ULL + (128ULL << 20) - (2ULL << 20));
    cr_expect_eq(a % (2ULL << 20), 0);
}

Test(machine_dtb, small_ram_gets_a_page_aligned_dtb)
{
    hub_mconfig small = *cfg;
    hub_mc_ram r = { .name = "tiny", .base = 0x80000000ULL, .size = 1ULL << 20 };
    small.ram = &r;
    small.n_ram = 1;
    uint64_t a = hub_dtb_address(&small, dtb_size);
    cr_expect_geq(a, r.base);
    cr_expect_leq(a + dtb_size, r.base + r.size);
    cr_expect_eq(a % 4096, 0);
}

Test(machine_dtb, dtc_reads_it)
{
    char *p = write_file(dir, "out.dtb", dtb, dtb_size, 0644);
    char *cmd;
    cr_assert(asprintf(&cmd, "dtc -q -I dtb -O dts -o %s/out.dts %s", dir, p) > 0);
    cr_assert_eq(system(cmd), 0, "dtc failed on the generated DTB");
    char *dts;
    cr_assert(asprintf(&dts, "%s/out.dts", dir) > 0);
    FILE *f = fopen(dts, "r");
    cr_assert_not_null(f);
    char buf[16384];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = 0;
    fclose(f);
    cr_expect(strstr(buf, "serial@10000000 {") != NULL);
    cr_expect(strstr(buf, "compatible = \"ns16550a\";") != NULL);
    free(dts);
    free(cmd);
    free(p);
}

/* A device that declares no node name, in a description that gives none, gets its own name. */
Test(machine_dtb, undeclared_node_takes_the_device_name)
{
    hub_dt_device_info info[3] = { { 0x10000000, 0x100, NULL }, { 0x10010000, 0x1000, NULL },
                                   { 0x10020000, 0x10, NULL } };
    void *d2;
    size_t n2;
    Error *err = NULL;
    cr_assert_eq(hub_dtb_build(cfg, info, NULL, &d2, &n2, &err), 0, "%s", err ? error_get_pretty(err) : "");
    cr_expect_geq(fdt_path_offset(d2, "/soc/uart0@10000000"), 0);
    cr_expect_lt(fdt_path_offset(d2, "/soc/serial@10000000"), 0);
    cr_expect_geq(fdt_path_offset(d2, "/soc/dma@10010000"), 0, "the description's node name stands");
    int len;
    const char *sp = fdt_getprop(d2, fdt_path_offset(d2, "/chosen"), "stdout-path", &len);
    cr_expect_str_eq(sp, "/soc/uart0@10000000");
    free(d2);
}
