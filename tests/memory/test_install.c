/*
 * The memory library from an installed tree: `cmake --install` the memory module of this build into a
 * temporary prefix, compile a small program with `cc prog.c $(pkg-config --cflags --libs plexus-memory)`
 * and nothing but PKG_CONFIG_PATH pointing into the prefix, run it and check what it prints.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PLEXUS_INSTALL_LIBDIR
#define PLEXUS_INSTALL_LIBDIR "lib"
#endif
#ifndef PLEXUS_TEST_SANITIZE
#define PLEXUS_TEST_SANITIZE 0
#endif

static const char prog[] =
    "#include <plexus/memory.h>\n"
    "#include <string.h>\n"
    "static uint64_t rd(void *o, hwaddr a, unsigned s) { return 0x1000 + a; }\n"
    "static const MemoryRegionOps ops = { .read = rd, .endianness = DEVICE_LITTLE_ENDIAN };\n"
    "int main(void)\n"
    "{\n"
    "    MemoryRegion sys, ram, io;\n"
    "    AddressSpace as;\n"
    "    Error *err = NULL;\n"
    "    memory_region_init(&sys, NULL, \"system\", UINT64_MAX);\n"
    "    memory_region_init_ram(&ram, NULL, \"ram\", 4096, &err);\n"
    "    if (err) { printf(\"error: %s\\n\", error_get_pretty(err)); return 1; }\n"
    "    memory_region_init_io(&io, NULL, &ops, NULL, \"io\", 256);\n"
    "    memory_region_add_subregion(&sys, 0x80000000, &ram);\n"
    "    memory_region_add_subregion(&sys, 0x10000000, &io);\n"
    "    address_space_init(&as, &sys, \"memory\");\n"
    "    stl_le_phys(&as, 0x80000010, 0xc0ffee);\n"
    "    printf(\"ram=%x io=%x fd=%s\\n\", ldl_le_phys(&as, 0x80000010), ldl_le_phys(&as, 0x10000004),\n"
    "           memory_region_get_fd(&ram) >= 0 ? \"yes\" : \"no\");\n"
    "    address_space_destroy(&as);\n"
    "    memory_region_del_subregion(&sys, &ram);\n"
    "    memory_region_del_subregion(&sys, &io);\n"
    "    memory_region_destroy(&ram);\n"
    "    memory_region_destroy(&io);\n"
    "    memory_region_destroy(&sys);\n"
    "    return 0;\n"
    "}\n";

static int sh(const char *cmd, char *out, size_t outsz)
{
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t n = fread(out, 1, outsz - 1, p);
    out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(install, program_builds_with_pkg_config_and_runs)
{
    const char *build = getenv("PLEXUS_BUILD_DIR");
    cr_assert_not_null(build, "PLEXUS_BUILD_DIR must be set");
    char tmp[] = "/tmp/plexus-mem-install-XXXXXX";
    cr_assert_not_null(mkdtemp(tmp));
    char cmd[4096], out[8192], path[512];

    snprintf(cmd, sizeof(cmd), "cmake --install '%s/memory' --prefix '%s/prefix' 2>&1", build, tmp);
    cr_assert_eq(sh(cmd, out, sizeof(out)), 0, "install failed:\n%s", out);

    snprintf(path, sizeof(path), "%s/prog.c", tmp);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(prog, f);
    fclose(f);

    snprintf(cmd, sizeof(cmd),
             "cd '%s' && PKG_CONFIG_PATH='%s/prefix/%s/pkgconfig' && export PKG_CONFIG_PATH && "
             "cc %s -o prog prog.c $(pkg-config --cflags --libs plexus-memory) 2>&1 && ./prog 2>&1",
             tmp, tmp, PLEXUS_INSTALL_LIBDIR,
             PLEXUS_TEST_SANITIZE ? "-fsanitize=address,undefined" : "");
    int st = sh(cmd, out, sizeof(out));
    cr_assert_eq(st, 0, "build or run failed (%d):\n%s", st, out);
    cr_assert_str_eq(out, "ram=c0ffee io=1004 fd=yes\n");

    snprintf(cmd, sizeof(cmd), "PKG_CONFIG_PATH='%s/prefix/%s/pkgconfig' pkg-config --cflags plexus-memory", tmp,
             PLEXUS_INSTALL_LIBDIR);
    sh(cmd, out, sizeof(out));
    cr_assert_not_null(strstr(out, tmp), "pkg-config does not point into the prefix: %s", out);

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
    cr_assert_eq(system(cmd), 0);
}
