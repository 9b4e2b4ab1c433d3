/*
 * The next boot stage in the description and the device tree: kernel (RISC-V Linux Image or ELF), initrd,
 * bootargs, --kernel/--initrd/--append/--dtb, `dtb:` files patched like QEMU's -dtb, `chosen:`, `rng_seed:`;
 * every bad value named by file, line (or option) and key.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <libfdt.h>

#include "common.h"
#include "machine.h"

static char *dir;
static char *yaml_path;

/* A RISC-V Linux Image: the 64-byte header and @len - 64 bytes of code. */
static void write_image(const char *name, uint64_t text_offset, uint64_t image_size, size_t len, bool magic)
{
    uint8_t *b = calloc(1, len);
    b[0] = 0x6f;        /* j +0x40, as code0 does */
    b[1] = 0x00;
    b[2] = 0x00;
    b[3] = 0x04;
    for (int i = 0; i < 8; i++) {
        b[8 + i] = (uint8_t)(text_offset >> (8 * i));
        b[16 + i] = (uint8_t)(image_size >> (8 * i));
    }
    b[32] = 2;          /* version 0.2 */
    if (magic) {
        memcpy(b + 48, "RISCV\0\0\0", 8);
        memcpy(b + 56, "RSC\x05", 4);
    }
    free(write_file(dir, name, (const char *)b, len, 0644));
    free(b);
}

static void setup(void)
{
    dir = tmpdir_new();
    free(write_file(dir, "fw.bin", "\x13\x00\x00\x00", 4, 0644));
    free(write_file(dir, "rd.img", "initrd-bytes", 12, 0644));
    free(write_file(dir, "empty.img", "", 0, 0644));
    free(write_file(dir, "plexus-fake-dev", "#!/bin/sh\nexit 0\n", 17, 0755));
    write_image("Image", 0x200000, 0x10000, 4096, true);
    write_image("nomagic", 0x200000, 0x10000, 4096, false);
    write_image("small", 0x200000, 100, 4096, true);
    write_image("odd", 0x200100, 0x10000, 4096, true);
    free(write_file(dir, "Image.gz", "\x1f\x8b\x08\x00", 4, 0644));
    free(write_file(dir, "elf", "\x7f" "ELF\x02\x01\x01", 7, 0644));
    /* a device tree to boot with instead of the generated one, with no /chosen */
    char fdt[512];
    cr_assert_eq(fdt_create_empty_tree(fdt, sizeof(fdt)), 0);
    cr_assert_geq(fdt_setprop_string(fdt, 0, "model", "mine"), 0);
    cr_assert_eq(fdt_pack(fdt), 0);
    free(write_file(dir, "board.dtb", fdt, fdt_totalsize(fdt), 0644));
    free(write_file(dir, "notadtb", "this is text, not a device tree", 31, 0644));
}

static void teardown(void)
{
    free(yaml_path);
    yaml_path = NULL;
    tmpdir_remove(dir);
}

TestSuite(machine_boot, .init = setup, .fini = teardown);

static const char base_yaml[] =
    "name: t\n"                                 /* 1 */
    "ram:\n"                                    /* 2 */
    "  - base: 0x80000000\n"                    /* 3 */
    "    size: 128M\n"                          /* 4 */
    "firmware:\n"                               /* 5 */
    "  - file: fw.bin\n"                        /* 6 */
    "kernel: Image\n"                           /* 7 */
    "initrd: rd.img\n"                          /* 8 */
    "bootargs: console=ttyS0\n";                /* 9 */

static char *load_with(const char *text, const hub_mconfig_opts *extra, hub_mconfig **out)
{
    free(yaml_path);
    yaml_path = write_file(dir, "m.yaml", text, strlen(text), 0644);
    hub_mconfig_opts o = extra ? *extra : (hub_mconfig_opts){ 0 };
    o.exe_dir = dir;
    hub_mconfig *c = NULL;
    Error *e = NULL;
    int r = hub_mconfig_load(yaml_path, &o, &c, &e);
    char *err = e ? strdup(error_get_pretty(e)) : NULL;
    error_free(e);
    if (r < 0) {
        cr_assert_not_null(err);
        return err;
    }
    cr_assert_null(err);
    if (out)
        *out = c;
    else
        hub_mconfig_free(c);
    return NULL;
}

/* @text with @line appended (or the base description when @line is NULL). */
static char *with(const char *line)
{
    char *s;
    cr_assert(asprintf(&s, "%s%s", base_yaml, line ? line : "") > 0);
    return s;
}

static void expect_error_opts(const char *text, const hub_mconfig_opts *o, const char *want_suffix)
{
    char *err = load_with(text, o, NULL);
    cr_assert_not_null(err, "expected an error ending with: %s", want_suffix);
    char *want;
    cr_assert(asprintf(&want, "%s%s", yaml_path, want_suffix) > 0);
    cr_expect_str_eq(err, want);
    free(want);
    free(err);
}

static void expect_error(const char *line, const char *want_suffix)
{
    char *y = with(line);
    expect_error_opts(y, NULL, want_suffix);
    free(y);
}

/* base_yaml with its line for @key replaced by @replacement ("" drops it). */
static char *replaced(const char *key_line, const char *replacement)
{
    const char *at = strstr(base_yaml, key_line);
    cr_assert_not_null(at);
    char *s;
    cr_assert(asprintf(&s, "%.*s%s%s", (int)(at - base_yaml), base_yaml, replacement, at + strlen(key_line)) > 0);
    return s;
}

Test(machine_boot, keys_load)
{
    hub_mconfig *c = NULL;
    cr_assert_null(load_with(base_yaml, NULL, &c));
    cr_assert_not_null(c->kernel);
    cr_expect(strstr(c->kernel, "/Image") != NULL);
    cr_expect_not(c->kernel_elf);
    cr_expect_eq(c->kernel_image.text_offset, 0x200000);
    cr_expect_eq(c->kernel_image.image_size, 0x10000);
    cr_expect_eq(c->kernel_image.file_size, 4096);
    cr_expect_eq(c->kernel_image.version, 2);
    cr_expect_not(c->has_kernel_address);
    cr_assert_not_null(c->initrd);
    cr_expect_eq(c->initrd_size, 12);
    cr_expect_str_eq(c->bootargs, "console=ttyS0");
    cr_expect_eq(c->rng_seed, HUB_RNG_DEFAULT);
    hub_mconfig_free(c);
}

Test(machine_boot, options_replace_keys)
{
    char *img = NULL, *rd = NULL;
    write_image("other", 0x400000, 0x20000, 128, true);
    cr_assert(asprintf(&img, "%s/other", dir) > 0);
    cr_assert(asprintf(&rd, "%s/fw.bin", dir) > 0);
    /* --append is one literal string: brackets, colons, quotes and backslashes stay as they are */
    const char *args = "root=/dev/vda [x] a: b \"q\" back\\slash";
    hub_mconfig_opts o = { .kernel = img, .initrd = rd, .append = args };
    hub_mconfig *c = NULL;
    cr_assert_null(load_with(base_yaml, &o, &c));
    cr_expect_str_eq(c->kernel, img);
    cr_expect_eq(c->kernel_image.text_offset, 0x400000);
    cr_expect_str_eq(c->initrd, rd);
    cr_expect_eq(c->initrd_size, 4);
    cr_expect_str_eq(c->bootargs, args);
    hub_mconfig_free(c);
    free(img);
    free(rd);
}

Test(machine_boot, set_overrides_keys)
{
    const char *sets[] = { "kernel=elf", "bootargs=quiet", "rng_seed=0x00ff10", "chosen.linux,foo=7" };
    hub_mconfig_opts o = { .sets = sets, .n_sets = 4 };
    hub_mconfig *c = NULL;
    cr_assert_null(load_with(base_yaml, &o, &c));
    cr_expect(c->kernel_elf);
    cr_expect_str_eq(c->bootargs, "quiet");
    cr_expect_eq(c->rng_seed, HUB_RNG_FIXED);
    cr_assert_eq(c->rng_seed_len, 3);
    cr_expect_eq(c->rng_seed_bytes[0], 0x00);
    cr_expect_eq(c->rng_seed_bytes[1], 0xff);
    cr_expect_eq(c->rng_seed_bytes[2], 0x10);
    cr_assert_eq(c->n_chosen, 1);
    cr_expect_str_eq(c->chosen[0].name, "linux,foo");
    cr_expect_eq(c->chosen[0].cells[0], 7);
    hub_mconfig_free(c);
}

Test(machine_boot, kernel_errors)
{
    char *y = replaced("kernel: Image\n", "kernel: nosuch\n");
    char *err = load_with(y, NULL, NULL);
    cr_assert_not_null(err);
    char *want;
    cr_assert(asprintf(&want, "%s:7: key 'kernel': kernel file 'nosuch' not found or not readable (looked in "
                       "%s/nosuch)", yaml_path, dir) > 0);
    cr_expect_str_eq(err, want);
    free(want);
    free(err);
    free(y);

    struct { const char *file, *want; } bad[] = {
        { "nomagic", "neither an ELF nor a RISC-V Linux Image (no 'RSC\\x05' magic at offset 56)" },
        { "small", "RISC-V Linux Image: bad header: image_size 100 is smaller than the file (4096 bytes)" },
        { "odd", "RISC-V Linux Image: bad header: text_offset 0x200100 is not 4 KiB aligned" },
        { "Image.gz", "a gzip-compressed file; decompress it first (gunzip)" },
        { "empty.img", "too short for a RISC-V Linux Image header (64 bytes)" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char line[64];
        snprintf(line, sizeof(line), "kernel: %s\n", bad[i].file);
        y = replaced("kernel: Image\n", line);
        char *suffix;
        cr_assert(asprintf(&suffix, ":7: key 'kernel': %s/%s: %s", dir, bad[i].file, bad[i].want) > 0);
        expect_error_opts(y, NULL, suffix);
        free(suffix);
        free(y);
    }
}

Test(machine_boot, option_errors_name_the_option)
{
    hub_mconfig_opts o = { .kernel = "/nonexistent/Image" };
    expect_error_opts(base_yaml, &o, " (--kernel): key 'kernel': kernel file '/nonexistent/Image' not found or "
                      "not readable (looked in /nonexistent/Image)");
    char *bad = NULL;
    cr_assert(asprintf(&bad, "%s/notadtb", dir) > 0);
    o = (hub_mconfig_opts){ .dtb = bad };
    char *suffix;
    cr_assert(asprintf(&suffix, " (--dtb): key 'dtb': '%s' is not a valid flattened device tree (.dtb; compile a "
                       ".dts with dtc): FDT_ERR_BADMAGIC", bad) > 0);
    expect_error_opts(base_yaml, &o, suffix);
    free(suffix);
    free(bad);
}

Test(machine_boot, address_and_initrd_errors)
{
    expect_error("kernel_address: 0x80300000\n", ":10: key 'kernel_address': expected a 2 MiB aligned address plus "
                 "the Image's text_offset 0x200000 (e.g. 0x80200000); got 0x80300000");
    expect_error("kernel_address: lots\n", ":10: key 'kernel_address': expected an address or size such as "
                 "0x80000000, 4096 or 128M; got 'lots'");
    char *y = replaced("kernel: Image\n", "kernel: elf\n");
    char *z;
    cr_assert(asprintf(&z, "%skernel_address: 0x80200000\n", y) > 0);
    expect_error_opts(z, NULL, ":10: key 'kernel_address': an ELF kernel loads at its own addresses; "
                      "kernel_address is for a RISC-V Linux Image");
    free(y);
    free(z);
    y = replaced("kernel: Image\n", "");
    expect_error_opts(y, NULL, ":7: key 'initrd': an initrd needs a kernel to read it (kernel: or --kernel)");
    free(y);
    y = replaced("initrd: rd.img\n", "initrd: empty.img\n");
    char *suffix;
    cr_assert(asprintf(&suffix, ":8: key 'initrd': '%s/empty.img' is empty", dir) > 0);
    expect_error_opts(y, NULL, suffix);
    free(suffix);
    free(y);
}

Test(machine_boot, chosen_and_rng_errors)
{
    expect_error("chosen: [1, 2]\n", ":10: key 'chosen': expected a mapping of /chosen property names to values");
    expect_error("chosen:\n  bootargs: quiet\n", ":11: key 'chosen.bootargs': 'bootargs' comes from bootargs: (or "
                 "--append); remove it here");
    expect_error("chosen:\n  linux,initrd-start: 0\n", ":11: key 'chosen.linux,initrd-start': 'linux,initrd-start' "
                 "comes from initrd: (or --initrd); remove it here");
    expect_error("chosen:\n  rng-seed: 1\n", ":11: key 'chosen.rng-seed': 'rng-seed' comes from rng_seed:; remove it "
                 "here");
    expect_error("chosen:\n  bad name: 1\n", ":11: key 'chosen.bad name': expected a property name of at most 31 "
                 "letters, digits and ,._+?#-; got 'bad name'");
    expect_error("chosen:\n  x: {a: 1}\n", ":11: key 'chosen.x': expected a number, a string, true, or a list of "
                 "numbers or strings");
    expect_error("rng_seed: sometimes\n", ":10: key 'rng_seed': expected random, none, or 1 to 64 bytes in hex "
                 "(e.g. 0x0123abcd); got 'sometimes'");
    expect_error("rng_seed: 0x123\n", ":10: key 'rng_seed': expected random, none, or 1 to 64 bytes in hex "
                 "(e.g. 0x0123abcd); got '0x123'");
    char *suffix;
    cr_assert(asprintf(&suffix, ":10: key 'dtb': '%s/notadtb' is not a valid flattened device tree (.dtb; compile "
                       "a .dts with dtc): FDT_ERR_BADMAGIC", dir) > 0);
    expect_error("dtb: notadtb\n", suffix);
    free(suffix);
}

/* ---- the device tree ---- */
static void *build(const char *text, const hub_dt_boot *boot, size_t *size)
{
    hub_mconfig *c = NULL;
    char *err = load_with(text, NULL, &c);
    cr_assert_null(err, "%s", err);
    void *dtb = NULL;
    Error *e = NULL;
    cr_assert_eq(hub_dtb_build(c, NULL, boot, &dtb, size, &e), 0, "%s", e ? error_get_pretty(e) : "");
    cr_assert_eq(fdt_check_full(dtb, *size), 0);
    hub_mconfig_free(c);
    return dtb;
}

static const void *prop(const void *dtb, const char *path, const char *name, int *len)
{
    int node = fdt_path_offset(dtb, path);
    cr_assert_geq(node, 0, "%s missing", path);
    return fdt_getprop(dtb, node, name, len);
}

Test(machine_boot, chosen_gets_initrd_bootargs_seed_and_extras)
{
    static const uint8_t seed[3] = { 1, 2, 3 };
    hub_dt_boot b = { .has_initrd = true, .initrd_start = 0x188200000ULL, .initrd_end = 0x188200010ULL,
                      .rng_seed = seed, .rng_seed_len = 3 };
    char *y = with("chosen:\n  linux,pci-probe-only: 1\n  stdout-path: /soc/other\n  flag: true\n");
    size_t size;
    void *dtb = build(y, &b, &size);
    int len;
    const fdt64_t *v = prop(dtb, "/chosen", "linux,initrd-start", &len);
    cr_assert_eq(len, 8, "64-bit cells: the root has #address-cells = 2");
    cr_expect_eq(fdt64_ld(v), 0x188200000ULL);
    v = prop(dtb, "/chosen", "linux,initrd-end", &len);
    cr_assert_eq(len, 8);
    cr_expect_eq(fdt64_ld(v), 0x188200010ULL);
    const char *s = prop(dtb, "/chosen", "bootargs", &len);
    cr_expect_str_eq(s, "console=ttyS0");
    const uint8_t *r = prop(dtb, "/chosen", "rng-seed", &len);
    cr_assert_eq(len, 3);
    cr_expect_eq(memcmp(r, seed, 3), 0);
    const fdt32_t *one = prop(dtb, "/chosen", "linux,pci-probe-only", &len);
    cr_assert_eq(len, 4);
    cr_expect_eq(fdt32_to_cpu(*one), 1);
    s = prop(dtb, "/chosen", "stdout-path", &len);
    cr_expect_str_eq(s, "/soc/other");
    cr_expect_not_null(prop(dtb, "/chosen", "flag", &len));
    cr_expect_eq(len, 0);
    free(dtb);
    free(y);

    /* the same description without a boot stage: /chosen has only what the description says */
    dtb = build(base_yaml, NULL, &size);
    cr_expect_null(prop(dtb, "/chosen", "linux,initrd-start", &len));
    cr_expect_null(prop(dtb, "/chosen", "rng-seed", &len));
    free(dtb);
}

Test(machine_boot, dtb_file_replaces_the_generated_tree_and_gets_chosen)
{
    hub_dt_boot b = { .has_initrd = true, .initrd_start = 0x88200000, .initrd_end = 0x88200100 };
    char *y = with("dtb: board.dtb\nchosen:\n  extra: [\"a\", \"b\"]\n");
    size_t size;
    void *dtb = build(y, &b, &size);
    int len;
    const char *model = prop(dtb, "/", "model", &len);
    cr_expect_str_eq(model, "mine");
    cr_expect_lt(fdt_path_offset(dtb, "/cpus"), 0, "nothing generated");
    const char *s = prop(dtb, "/chosen", "bootargs", &len);
    cr_expect_str_eq(s, "console=ttyS0");
    const fdt64_t *v = prop(dtb, "/chosen", "linux,initrd-start", &len);
    cr_assert_not_null(v);
    cr_expect_eq(fdt64_ld(v), 0x88200000ULL);
    const char *e = prop(dtb, "/chosen", "extra", &len);
    cr_assert_eq(len, 4);
    cr_expect_eq(memcmp(e, "a\0b\0", 4), 0);
    free(dtb);
    free(y);
}
