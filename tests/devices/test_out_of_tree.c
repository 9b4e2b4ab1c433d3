/*
 * An out-of-tree device builds against an installed SDK: `cmake --install` this build tree into a temporary
 * prefix, build examples/out-of-tree-device with its Makefile and nothing but PKG_CONFIG_PATH pointing into that
 * prefix, then run the program and the plugin (through the installed plexus-device-runner). With no hub they
 * must start, and stop with the SDK's "no hub" message. Then the program runs behind the hub's device layer and
 * its registers answer guest accesses.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <sys/stat.h>

#include "dev/devmgr.h"
#include "run_capture.h"

#ifndef PLEXUS_INSTALL_LIBDIR
#define PLEXUS_INSTALL_LIBDIR "lib"
#endif
#ifndef PLEXUS_TEST_SANITIZE
#define PLEXUS_TEST_SANITIZE 0
#endif

static char tmp[256];
static run_result *r;

static void setup(void)
{
    r = malloc(sizeof(*r));
    cr_assert_not_null(r);
    strcpy(tmp, "/tmp/plexus-oot-XXXXXX");
    cr_assert_not_null(mkdtemp(tmp));
}

static void teardown(void)
{
    char *argv[] = { "rm", "-rf", tmp, NULL };

    run_capture(argv, NULL, NULL, 60000, r);
    free(r);
}

static void copy_file(const char *from, const char *to)
{
    char buf[8192];
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    size_t n;

    cr_assert(in && out, "cannot copy %s to %s", from, to);
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
        cr_assert_eq(fwrite(buf, 1, n, out), n);
    fclose(in);
    fclose(out);
}

TestSuite(out_of_tree, .init = setup, .fini = teardown);

/* The counter device behind a hub: ID, scratch write/read, count of scratch writes, clear. */
static void run_behind_hub(const char *prog)
{
    MemoryRegion sysmem;
    AddressSpace as;
    vclock clock;
    Error *err = NULL;
    MemTxResult r;

    memory_region_init(&sysmem, NULL, "system", UINT64_MAX);
    address_space_init(&as, &sysmem, "memory");
    vclock_init(&clock);
    hub_devmgr_env env = { .sysmem = &sysmem, .as = &as, .clock = &clock };
    hub_devmgr *m = hub_devmgr_new(&env, &err);
    cr_assert_not_null(m, "%s", err ? error_get_pretty(err) : "");
    hub_region_map reg = { .region = "regs", .base = 0x20000000 };
    hub_device_config cfg = { .name = "counter0", .program = prog, .regions = &reg, .n_regions = 1 };
    hub_device *d = hub_devmgr_add(m, &cfg, &err);
    cr_assert_not_null(d, "%s", err ? error_get_pretty(err) : "");
    cr_assert_str_eq(hub_device_model(d), "example,counter");

    cr_assert_eq(address_space_ldl_le(&as, 0x20000000, MEMTXATTRS_UNSPECIFIED, &r), 0x434e5452);
    for (uint32_t i = 1; i <= 5; i++)
        address_space_stl_le(&as, 0x20000004, i * 0x1111, MEMTXATTRS_UNSPECIFIED, &r);
    cr_assert_eq(address_space_ldl_le(&as, 0x20000004, MEMTXATTRS_UNSPECIFIED, &r), 5 * 0x1111);
    cr_assert_eq(address_space_ldl_le(&as, 0x20000008, MEMTXATTRS_UNSPECIFIED, &r), 5);
    address_space_stl_le(&as, 0x2000000c, 1, MEMTXATTRS_UNSPECIFIED, &r);
    cr_assert_eq(address_space_ldl_le(&as, 0x20000008, MEMTXATTRS_UNSPECIFIED, &r), 0);
    cr_assert_eq(r, MEMTX_OK);

    hub_devmgr_free(m);
    address_space_destroy(&as);
    memory_region_destroy(&sysmem);
}

Test(out_of_tree, builds_against_installed_sdk_and_runs)
{
    const char *build = getenv("PLEXUS_BUILD_DIR"), *source = getenv("PLEXUS_SOURCE_DIR");
    char prefix[512], pcpath[600], srcdir[512], path[1024], pc_env[700], cflags[128], prog[600], plugin[600],
        runner[600];

    cr_assert(build && source, "PLEXUS_BUILD_DIR and PLEXUS_SOURCE_DIR must be set");
    snprintf(prefix, sizeof(prefix), "%s/prefix", tmp);
    snprintf(pcpath, sizeof(pcpath), "%s/%s/pkgconfig", prefix, PLEXUS_INSTALL_LIBDIR);
    snprintf(srcdir, sizeof(srcdir), "%s/src", tmp);
    cr_assert_eq(mkdir(srcdir, 0755), 0);

    /* 1. install */
    char *install[] = { "cmake", "--install", (char *)build, "--prefix", prefix, NULL };
    cr_assert_eq(run_capture(install, NULL, NULL, 120000, r), 0);
    cr_assert_eq(r->status, 0, "cmake --install failed:\n%s", r->out);
    snprintf(path, sizeof(path), "%s/include/plexus/sdk.h", prefix);
    cr_assert_eq(access(path, R_OK), 0, "no %s after install", path);
    snprintf(path, sizeof(path), "%s/plexus-sdk.pc", pcpath);
    cr_assert_eq(access(path, R_OK), 0, "no %s after install", path);

    /* 2. build a copy of the example, away from the source tree */
    for (const char *const *f = (const char *const[]){ "counter.c", "Makefile", NULL }; *f; f++) {
        char from[1024], to[1024];

        snprintf(from, sizeof(from), "%s/examples/out-of-tree-device/%s", source, *f);
        snprintf(to, sizeof(to), "%s/%s", srcdir, *f);
        copy_file(from, to);
    }
    snprintf(pc_env, sizeof(pc_env), "PKG_CONFIG_PATH=%s", pcpath);
    /* An SDK built with sanitizers can only be loaded by programs built with them. */
    snprintf(cflags, sizeof(cflags), "CFLAGS=-O1 -g%s",
             PLEXUS_TEST_SANITIZE ? " -fsanitize=address,undefined -fno-omit-frame-pointer" : "");
    char *make[] = { "make", "-C", srcdir, pc_env, cflags,
                     PLEXUS_TEST_SANITIZE ? "LDFLAGS=-fsanitize=address,undefined" : "LDFLAGS=", NULL };
    const char *env[] = { pc_env, NULL };
    cr_assert_eq(run_capture(make, env, NULL, 120000, r), 0);
    cr_assert_eq(r->status, 0, "make failed:\n%s", r->out);
    cr_assert_not_null(strstr(r->out, prefix), "the build did not use the installed SDK:\n%s", r->out);

    /* 3. run both without a hub: the SDK must start and say what is missing */
    unsetenv("PLEXUS_ENDPOINT");
    unsetenv("PLEXUS_ATTACH");
    snprintf(prog, sizeof(prog), "%s/counter-device", srcdir);
    char *run_prog[] = { prog, NULL };
    cr_assert_eq(run_capture(run_prog, NULL, NULL, 30000, r), 0);
    cr_assert_neq(r->status, 0, "counter-device without a hub exited 0:\n%s", r->out);
    cr_assert_lt(r->status, 128, "counter-device crashed (status %d):\n%s", r->status, r->out);
    cr_assert_not_null(strstr(r->out, "PLEXUS_ENDPOINT"), "unexpected output:\n%s", r->out);

    /* 4. with a hub */
    run_behind_hub(prog);

    snprintf(runner, sizeof(runner), "%s/bin/plexus-device-runner", prefix);
    snprintf(plugin, sizeof(plugin), "%s/counter-device.so", srcdir);
    char *run_plugin[] = { runner, plugin, NULL };
    /* The installed runner finds libplexus-sdk through its own run path, the plugin through the one pkg-config
     * gave it: no LD_LIBRARY_PATH. */
    unsetenv("LD_LIBRARY_PATH");
    cr_assert_eq(run_capture(run_plugin, NULL, NULL, 30000, r), 0);
    cr_assert_neq(r->status, 0, "the plugin without a hub exited 0:\n%s", r->out);
    cr_assert_lt(r->status, 128, "the runner crashed (status %d):\n%s", r->status, r->out);
    cr_assert_null(strstr(r->out, "cannot load"), "%s", r->out);
    cr_assert_null(strstr(r->out, "exports no"), "%s", r->out);
    cr_assert_not_null(strstr(r->out, "PLEXUS_ENDPOINT"), "unexpected output:\n%s", r->out);
}
