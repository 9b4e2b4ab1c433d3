/*
 * An out-of-tree device builds against an installed SDK: `cmake --install` this build tree into a temporary
 * prefix, build examples/out-of-tree-device with its Makefile and nothing but PKG_CONFIG_PATH pointing into that
 * prefix, then run the program and the plugin (through the installed plexus-device-runner). With no hub they
 * must start, and stop with the SDK's "no hub" message.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <sys/stat.h>

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

    snprintf(runner, sizeof(runner), "%s/bin/plexus-device-runner", prefix);
    snprintf(plugin, sizeof(plugin), "%s/counter-device.so", srcdir);
    char *run_plugin[] = { runner, plugin, NULL };
    /* As for any library in a private prefix, the installed runner finds libplexus-sdk through the loader path. */
    char ld_env[700];
    snprintf(ld_env, sizeof(ld_env), "LD_LIBRARY_PATH=%s/%s", prefix, PLEXUS_INSTALL_LIBDIR);
    const char *run_env[] = { ld_env, NULL };
    cr_assert_eq(run_capture(run_plugin, run_env, NULL, 30000, r), 0);
    cr_assert_neq(r->status, 0, "the plugin without a hub exited 0:\n%s", r->out);
    cr_assert_lt(r->status, 128, "the runner crashed (status %d):\n%s", r->status, r->out);
    cr_assert_null(strstr(r->out, "cannot load"), "%s", r->out);
    cr_assert_null(strstr(r->out, "exports no"), "%s", r->out);
    cr_assert_not_null(strstr(r->out, "PLEXUS_ENDPOINT"), "unexpected output:\n%s", r->out);
}
