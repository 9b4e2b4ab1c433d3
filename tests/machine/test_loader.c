/* Firmware loaders: ELF segments and entry, raw images, and what they refuse. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>

#include "common.h"
#include "machine.h"

#define RAM_BASE 0x80000000ULL
#define RAM_SIZE 0x10000ULL

typedef struct fake_ram { uint8_t bytes[RAM_SIZE]; unsigned writes; } fake_ram;

static int ram_write(void *opaque, uint64_t addr, const void *buf, size_t len)
{
    fake_ram *r = opaque;
    if (addr < RAM_BASE || addr - RAM_BASE > RAM_SIZE || len > RAM_SIZE - (addr - RAM_BASE))
        return -EFAULT;
    memcpy(r->bytes + (addr - RAM_BASE), buf, len);
    r->writes++;
    return 0;
}

static char *tiny_elf(void)
{
    char *p;
    cr_assert(asprintf(&p, "%s/tests/machine/tiny.elf", getenv("PLEXUS_BUILD_DIR")) > 0);
    return p;
}

Test(machine_loader, elf_segments_and_entry)
{
    static fake_ram ram;
    memset(ram.bytes, 0xaa, sizeof(ram.bytes));
    hub_load_result res = { 0 };
    Error *err = NULL;
    char *path = tiny_elf();
    cr_assert_eq(hub_load_elf(path, ram_write, &ram, &res, &err), 0, "%s", err ? error_get_pretty(err) : "");
    cr_expect(res.has_entry);
    cr_expect_eq(res.entry, RAM_BASE);
    cr_assert_eq(res.n_ranges, 2);
    cr_expect_eq(res.ranges[0].start, RAM_BASE);
    cr_expect_eq(res.ranges[1].start, RAM_BASE + 0x2000);
    cr_expect_eq(res.ranges[1].end, RAM_BASE + 0x2000 + 8 + 64);
    /* li a0, 0x5555 is lui a0, 5; addiw a0, a0, 0x555 */
    uint32_t insn;
    memcpy(&insn, ram.bytes, 4);
    cr_expect_eq(insn & 0x7f, 0x37, "first instruction should be a lui, got 0x%08x", insn);
    uint64_t marker;
    memcpy(&marker, ram.bytes + 0x2000, 8);
    cr_expect_eq(marker, 0x1122334455667788ULL);
    /* .bss is zeroed over the 0xaa filler */
    for (unsigned i = 0; i < 64; i++)
        cr_expect_eq(ram.bytes[0x2008 + i], 0, "bss byte %u", i);
    cr_expect_eq(ram.bytes[0x2008 + 64], 0xaa);
    hub_load_result_clear(&res);
    free(path);
}

static int no_ram(void *opaque, uint64_t addr, const void *buf, size_t len)
{
    return -EFAULT;
}

Test(machine_loader, elf_rejects_bad_input)
{
    static fake_ram ram;
    hub_load_result res = { 0 };
    Error *err = NULL;
    char *path = tiny_elf();
    cr_expect_eq(hub_load_elf(path, no_ram, NULL, &res, &err), -EFAULT);
    cr_assert_not_null(err);
    cr_expect(strstr(error_get_pretty(err), "segment at 0x80000000 is not inside RAM") != NULL, "%s", error_get_pretty(err));
    error_free(err);
    err = NULL;
    hub_load_result_clear(&res);

    cr_expect_eq(hub_load_elf("/bin/sh", ram_write, &ram, &res, &err), -ENOEXEC);
    cr_assert_not_null(err);
    cr_expect(strstr(error_get_pretty(err), "expected a 64-bit RISC-V ELF") != NULL, "%s", error_get_pretty(err));
    error_free(err);
    err = NULL;

    char *dir = tmpdir_new();
    char *junk = write_file(dir, "junk.elf", "\x7f" "ELF junk", 9, 0644);
    cr_expect_lt(hub_load_elf(junk, ram_write, &ram, &res, &err), 0);
    cr_assert_not_null(err);
    cr_expect(strstr(error_get_pretty(err), "junk.elf") != NULL, "%s", error_get_pretty(err));
    error_free(err);
    free(junk);
    tmpdir_remove(dir);
    hub_load_result_clear(&res);
    free(path);
}

Test(machine_loader, raw_image_at_address)
{
    static fake_ram ram;
    char *dir = tmpdir_new();
    char *p = write_file(dir, "img.bin", "\x01\x02\x03\x04\x05", 5, 0644);
    hub_load_result res = { 0 };
    Error *err = NULL;
    cr_assert_eq(hub_load_raw(p, RAM_BASE + 0x100, ram_write, &ram, &res, &err), 0);
    cr_expect_not(res.has_entry);
    cr_assert_eq(res.n_ranges, 1);
    cr_expect_eq(res.ranges[0].start, RAM_BASE + 0x100);
    cr_expect_eq(res.ranges[0].end, RAM_BASE + 0x105);
    cr_expect_eq(ram.bytes[0x100], 1);
    cr_expect_eq(ram.bytes[0x104], 5);
    hub_load_result_clear(&res);
    /* past the end of RAM */
    int r = hub_load_raw(p, RAM_BASE + RAM_SIZE - 2, ram_write, &ram, &res, &err);
    cr_expect_eq(r, -EFAULT);
    cr_assert_not_null(err);
    cr_expect(strstr(error_get_pretty(err), "does not fit in RAM") != NULL, "%s", error_get_pretty(err));
    error_free(err);
    hub_load_result_clear(&res);
    free(p);
    tmpdir_remove(dir);
}
