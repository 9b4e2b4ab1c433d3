/*
 * plexus as an installed product. Each test installs this build tree (`cmake --install`) into a fresh temporary
 * prefix that is not on the loader's path, then uses only what the prefix holds, from a scratch folder, with
 * PATH=/usr/bin:/bin and no LD_LIBRARY_PATH or PLEXUS_* variables: the hello example by name, device plugins
 * from lib/plexus/devices, Debian's U-Boot to its prompt, the out-of-tree example built with the installed
 * pkg-config file, and the projects `plexus new-device` writes, built and booted as their READMEs say.
 *
 * With PLEXUS_TEST_PREFIX=DIR the same tests use an existing installation instead (scripts/test-package.sh
 * runs them against the Debian package, PLEXUS_TEST_PREFIX=/usr); the build-tree suite is skipped then.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <poll.h>
#include <pty.h>
#include <stdio.h>
#include <sys/stat.h>

#include "../devices/run_capture.h"

#ifndef PLEXUS_TEST_SANITIZE
#define PLEXUS_TEST_SANITIZE 0
#endif
#define SANITIZE_FLAGS "-fsanitize=address,undefined -fno-omit-frame-pointer"

static char tmp[256];           /* this test's scratch folder */
static char prefix[512];        /* the installation under test */
static char build[512], source[512];
static run_result *res;

static void setup(void)
{
    const char *b = getenv("PLEXUS_BUILD_DIR"), *s = getenv("PLEXUS_SOURCE_DIR");

    cr_assert(b && s, "PLEXUS_BUILD_DIR and PLEXUS_SOURCE_DIR must be set (run through ctest)");
    snprintf(build, sizeof(build), "%s", b);
    snprintf(source, sizeof(source), "%s", s);
    res = malloc(sizeof(*res));
    cr_assert_not_null(res);
    strcpy(tmp, "/tmp/plexus-installed-XXXXXX");
    cr_assert_not_null(mkdtemp(tmp));
    /* Nothing from the build or the caller's environment may help the installed programs. */
    for (const char *const *v = (const char *const[]){ "LD_LIBRARY_PATH", "PKG_CONFIG_PATH", "PLEXUS_PATH",
                                                        "PLEXUS_DEVICE_RUNNER", "PLEXUS_TRANSPORT",
                                                        "PLEXUS_BUILD_DIR", "PLEXUS_SOURCE_DIR", NULL };
         *v; v++)
        unsetenv(*v);
    setenv("PATH", "/usr/bin:/bin", 1);
}

static void teardown(void)
{
    char *argv[] = { "rm", "-rf", tmp, NULL };

    if (tmp[0])
        run_capture(argv, NULL, NULL, 60000, res);
    tmp[0] = 0;
    free(res);
    res = NULL;
}

/* Criterion does not run .fini after a skip: clean up first. */
#define skip_test(...)                                                                                         \
    do {                                                                                                       \
        teardown();                                                                                            \
        cr_skip_test(__VA_ARGS__);                                                                             \
    } while (0)

static const char *existing_prefix(void)
{
    const char *p = getenv("PLEXUS_TEST_PREFIX");
    return p && *p ? p : NULL;
}

/* The installation under test: PLEXUS_TEST_PREFIX, or this build installed into <tmp>/prefix. */
static void install(void)
{
    if (existing_prefix()) {
        snprintf(prefix, sizeof(prefix), "%s", existing_prefix());
        return;
    }
    snprintf(prefix, sizeof(prefix), "%s/prefix", tmp);
    char *argv[] = { "cmake", "--install", build, "--prefix", prefix, NULL };
    cr_assert_eq(run_capture(argv, NULL, NULL, 120000, res), 0);
    cr_assert_eq(res->status, 0, "cmake --install failed:\n%s", res->out);
}

static char *path_in(const char *dir, const char *rel)
{
    char *p;
    cr_assert(asprintf(&p, "%s/%s", dir, rel) > 0);
    return p;
}

/* Run @argv in @cwd; the output is in res->out. Returns the exit status. */
static int run_in(const char *cwd, char *const argv[], const char *const env[], int timeout_s)
{
    cr_assert_eq(run_capture(argv, env, cwd, timeout_s * 1000, res), 0, "cannot run %s", argv[0]);
    cr_assert_neq(res->status, -1, "%s timed out; output:\n%s", argv[0], res->out);
    return res->status;
}

/* The installed plexus with up to four arguments, in the scratch folder. */
static int plexus(const char *a1, const char *a2, const char *a3, const char *a4)
{
    char *bin = path_in(prefix, "bin/plexus");
    char *argv[] = { bin, (char *)a1, (char *)a2, (char *)a3, (char *)a4, NULL };
    int st = run_in(tmp, argv, NULL, 120);
    free(bin);
    return st;
}

static void expect_lines(const char *out, const char *const *lines)
{
    for (; *lines; lines++)
        cr_expect_not_null(strstr(out, *lines), "missing '%s' in:\n%s", *lines, out);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot write %s", path);
    fputs(text, f);
    cr_assert_eq(fclose(f), 0);
}

/* Build flags for code that loads the SDK of this build (sanitized builds need the same runtime). */
static const char *const *build_env(void)
{
    static const char *const sanitized[] = { "CFLAGS=-O1 -g " SANITIZE_FLAGS, "CXXFLAGS=-O1 -g " SANITIZE_FLAGS,
                                             "LDFLAGS=-fsanitize=address,undefined", NULL };
    return PLEXUS_TEST_SANITIZE ? sanitized : NULL;
}

static const char *const hello_lines[] = { "hello: uart loopback ok", "hello: dma interrupt copy of 1000 bytes ok",
                                           "hello: all checks passed", NULL };

TestSuite(installed, .init = setup, .fini = teardown);

Test(installed, layout_version_and_help_name_the_installed_folders)
{
    install();
    static const char *const files[] = {
        "bin/plexus", "bin/plexus-device-runner", "bin/plexus-uart16550", "bin/plexus-dma",
        PLEXUS_INSTALL_LIBDIR "/plexus/devices/plexus-uart16550.so",
        PLEXUS_INSTALL_LIBDIR "/plexus/devices/plexus-dma.so",
        "include/plexus/sdk.h", "include/plexus/memory.h",
        "share/plexus/examples/hello/machine.yaml", "share/plexus/examples/hello/README.md",
        "share/plexus/examples/u-boot/machine.yaml", "share/plexus/examples/out-of-tree-device/counter.c",
        "share/doc/plexus/README.md", "share/doc/plexus/machine.md", "share/doc/plexus/sdk.md", NULL
    };
    for (const char *const *f = files; *f; f++) {
        char *p = path_in(prefix, *f);
        cr_expect_eq(access(p, R_OK), 0, "%s is not installed", p);
        free(p);
    }
    /* the scripts an example tells its user to run keep their execute bits */
    static const char *const scripts[] = { "share/plexus/examples/linux/fetch.sh",
                                           "share/plexus/examples/linux/mkrootfs.sh", NULL };
    for (const char *const *f = scripts; *f; f++) {
        char *p = path_in(prefix, *f);
        cr_expect_eq(access(p, X_OK), 0, "%s is not executable", p);
        free(p);
    }
    char pc[600];
    snprintf(pc, sizeof(pc), "%s/%s/pkgconfig/plexus-sdk.pc", prefix, PLEXUS_INSTALL_LIBDIR);
    cr_expect_eq(access(pc, R_OK), 0, "%s is not installed", pc);

    char want[128];
    cr_assert_eq(plexus("--version", NULL, NULL, NULL), 0);
    snprintf(want, sizeof(want), "plexus %s (device SDK libplexus-sdk.so.%s)\n", PLEXUS_VERSION, PLEXUS_SOVERSION);
    cr_expect_str_eq(res->out, want);

    cr_assert_eq(plexus("--help", NULL, NULL, NULL), 0);
    char *real = realpath(prefix, NULL), *ex = path_in(real, "share/plexus/examples"),
         *doc = path_in(real, "share/doc/plexus");
    cr_expect_not_null(strstr(res->out, ex), "--help does not name %s:\n%s", ex, res->out);
    cr_expect_not_null(strstr(res->out, doc), "--help does not name %s:\n%s", doc, res->out);
    cr_expect_not_null(strstr(res->out, "(hello, "), "the examples' list does not start with hello:\n%s", res->out);
    cr_expect_not_null(strstr(res->out, ", u-boot)"), "the examples' list does not end with u-boot:\n%s", res->out);

    cr_expect_eq(plexus("run", "helo", NULL, NULL), 1);
    cr_expect_not_null(strstr(res->out, "'helo' is neither a file nor an example; the examples in "), "%s", res->out);
    cr_expect_not_null(strstr(res->out, ex), "the error does not name %s:\n%s", ex, res->out);
    free(real);
    free(ex);
    free(doc);
}

Test(installed, hello_by_name)
{
#if !PLEXUS_TEST_FIRMWARE
    skip_test("this build has no RISC-V firmware (riscv64-unknown-elf-gcc and picolibc)");
#endif
    install();
    cr_assert_eq(plexus("run", "hello", NULL, NULL), 0, "output:\n%s", res->out);
    expect_lines(res->out, hello_lines);
}

Test(installed, source_tree_machine_finds_the_installed_firmware)
{
#if !PLEXUS_TEST_FIRMWARE
    skip_test("this build has no RISC-V firmware");
#endif
    install();
    char *yaml = path_in(source, "examples/hello/machine.yaml");
    cr_assert_eq(plexus("run", yaml, NULL, NULL), 0, "output:\n%s", res->out);
    expect_lines(res->out, hello_lines);
    free(yaml);
}

Test(installed, plugins_come_from_the_plugin_folder)
{
#if !PLEXUS_TEST_FIRMWARE
    skip_test("this build has no RISC-V firmware");
#endif
    install();
    /* The hello machine with both devices as plugins, by bare name, run by the installed device runner. */
    char *fw = path_in(prefix, "share/plexus/examples/hello/hello.elf"), *yaml = path_in(tmp, "plugins.yaml");
    char text[2048];
    snprintf(text, sizeof(text),
             "ram: [{name: ram, base: 0x80000000, size: 128M}]\n"
             "firmware: [{file: %s}]\n"
             "console: uart0\n"
             "devices:\n"
             "  - {name: uart0, plugin: plexus-uart16550.so, base: 0x10000000, irq: 10,\n"
             "     dt: {compatible: ns16550a, properties: {clock-frequency: 3686400}}}\n"
             "  - {name: dma0, plugin: plexus-dma.so, base: 0x10010000, irq: 12, ram: [ram],\n"
             "     dt: {compatible: \"plexus,dma\"}}\n", fw);
    write_text(yaml, text);
    cr_assert_eq(plexus("run", yaml, NULL, NULL), 0, "output:\n%s", res->out);
    expect_lines(res->out, hello_lines);

    /* A plugin that is nowhere: the error lists the installed plugin folder. */
    cr_assert_eq(plexus("check", yaml, "--set", "devices.uart0.plugin=nosuch.so"), 1);
    char *real = realpath(prefix, NULL);
    char *want = path_in(real, "bin/../" PLEXUS_INSTALL_LIBDIR "/plexus/devices/nosuch.so");
    cr_expect_not_null(strstr(res->out, "plugin 'nosuch.so' not found"), "%s", res->out);
    cr_expect_not_null(strstr(res->out, want), "the error does not name %s:\n%s", want, res->out);
    free(real);
    free(want);
    free(fw);
    free(yaml);
}

/* ---- U-Boot on a terminal ---- */

typedef struct term {
    pid_t pid;
    int fd;
    size_t len;
    char buf[1 << 16];
} term;

/* Read until @needle appears after @from, or @timeout_s passes; returns its offset or -1. */
static long term_expect(term *t, size_t from, const char *needle, int timeout_s)
{
    long long deadline = run_now_ms() + timeout_s * 1000LL;

    for (;;) {
        t->buf[t->len] = 0;
        char *hit = from <= t->len ? strstr(t->buf + from, needle) : NULL;
        if (hit)
            return hit - t->buf;
        long long left = deadline - run_now_ms();
        struct pollfd pfd = { .fd = t->fd, .events = POLLIN };
        if (left <= 0 || t->len + 1 >= sizeof(t->buf))
            return -1;
        if (poll(&pfd, 1, (int)left) <= 0)
            continue;
        ssize_t n = read(t->fd, t->buf + t->len, sizeof(t->buf) - 1 - t->len);
        if (n <= 0)
            return -1;
        t->len += (size_t)n;
    }
}

Test(installed, uboot_reaches_its_prompt)
{
    if (access("/usr/lib/u-boot/qemu-riscv64/u-boot.bin", R_OK) != 0)
        skip_test("Debian's U-Boot is not installed (package u-boot-qemu)");
    install();
    char *bin = path_in(prefix, "bin/plexus");
    term *t = calloc(1, sizeof(*t));
    cr_assert_not_null(t);
    t->pid = forkpty(&t->fd, NULL, NULL, NULL);
    cr_assert_geq(t->pid, 0);
    if (t->pid == 0) {
        if (chdir(tmp) < 0)
            _exit(126);
        execl(bin, bin, "run", "u-boot", (char *)NULL);
        _exit(127);
    }
    long at = term_expect(t, 0, "Hit any key to stop autoboot", 120);
    cr_assert_geq(at, 0, "no autoboot countdown; output:\n%s", t->buf);
    cr_assert_eq(write(t->fd, " ", 1), 1);
    at = term_expect(t, (size_t)at, "=>", 60);
    cr_assert_geq(at, 0, "no prompt; output:\n%s", t->buf);
    size_t mark = t->len;
    cr_assert_eq(write(t->fd, "version\r", 8), 8);
    cr_expect_geq(term_expect(t, mark, "\nU-Boot 20", 30), 0, "no version; output:\n%s", t->buf + mark);
    cr_assert_eq(write(t->fd, "\x01x", 2), 2);      /* Ctrl-A x: quit */
    int st;
    long long deadline = run_now_ms() + 30000;
    pid_t w;
    while ((w = waitpid(t->pid, &st, WNOHANG)) == 0 && run_now_ms() < deadline) {
        char sink[4096];
        if (read(t->fd, sink, sizeof(sink)) < 0)
            usleep(10000);
    }
    if (w != t->pid) {
        kill(t->pid, SIGKILL);
        waitpid(t->pid, &st, 0);
    }
    cr_expect(w == t->pid && WIFEXITED(st) && WEXITSTATUS(st) == 0, "Ctrl-A x did not end plexus with status 0");
    close(t->fd);
    free(t);
    free(bin);
}

/* ---- devices built outside the tree ---- */

/* As its README says: copy the installed out-of-tree example to <tmp>/counter and build it with the installed
 * pkg-config file. Returns the folder (malloc'd); @pcpath gets the PKG_CONFIG_PATH=... that found it. */
static char *build_counter_example(char *pcpath, size_t cap)
{
    char *example = path_in(prefix, "share/plexus/examples/out-of-tree-device"), *dir = path_in(tmp, "counter");
    char *cp[] = { "cp", "-r", example, dir, NULL };
    cr_assert_eq(run_in(tmp, cp, NULL, 30), 0, "%s", res->out);
    snprintf(pcpath, cap, "PKG_CONFIG_PATH=%s/%s/pkgconfig", prefix, PLEXUS_INSTALL_LIBDIR);
    char *make[] = { "make", "-C", dir, pcpath, NULL };
    cr_assert_eq(run_in(tmp, make, build_env(), 120), 0, "make failed:\n%s", res->out);
    cr_expect_not_null(strstr(res->out, prefix), "the build did not use the installed SDK:\n%s", res->out);
    free(example);
    return dir;
}

Test(installed, out_of_tree_example_builds_and_runs)
{
#if !PLEXUS_TEST_FIRMWARE
    skip_test("this build has no RISC-V firmware");
#endif
    install();
    char pcpath[700];
    char *dir = build_counter_example(pcpath, sizeof(pcpath));
    cr_assert_eq(plexus("run", "counter", NULL, NULL), 0, "output:\n%s", res->out);
    expect_lines(res->out, (const char *const[]){ "counter-test: counter0 (program): ID, SCRATCH, COUNT, CLEAR ok",
                                                  "counter-test: counter1 (plugin): ID, SCRATCH, COUNT, CLEAR ok",
                                                  "counter-test: all checks passed", NULL });
    free(dir);
}

#if PLEXUS_TEST_SYSTEMC
/* The counter of examples/out-of-tree-device as a SystemC TLM-2.0 model behind plexus::bridge. */
static const char sc_counter[] =
    "#include <cstring>\n"
    "#include <plexus/systemc.hpp>\n"
    "#include <tlm_utils/simple_target_socket.h>\n"
    "struct counter : sc_core::sc_module {\n"
    "    tlm_utils::simple_target_socket<counter> socket;\n"
    "    uint32_t scratch = 0, count = 0;\n"
    "    explicit counter(sc_core::sc_module_name n) : sc_module(n), socket(\"socket\")\n"
    "    {\n"
    "        socket.register_b_transport(this, &counter::b_transport);\n"
    "    }\n"
    "    void b_transport(tlm::tlm_generic_payload &t, sc_core::sc_time &)\n"
    "    {\n"
    "        uint32_t v = 0, a = (uint32_t)t.get_address();\n"
    "        if (t.is_write()) {\n"
    "            std::memcpy(&v, t.get_data_ptr(), 4);\n"
    "            if (a == 4) { scratch = v; count++; } else if (a == 0xc) count = 0;\n"
    "        } else {\n"
    "            v = a == 0 ? 0x434e5452 : a == 4 ? scratch : a == 8 ? count : 0;\n"
    "            std::memcpy(t.get_data_ptr(), &v, 4);\n"
    "        }\n"
    "        t.set_response_status(tlm::TLM_OK_RESPONSE);\n"
    "    }\n"
    "};\n"
    "int sc_main(int argc, char **argv)\n"
    "{\n"
    "    plexus::device_info info;\n"
    "    info.model = \"example,counter\";\n"
    "    plexus::region r;\n"
    "    r.name = \"regs\";\n"
    "    r.size = 0x10;\n"
    "    r.min_access = r.max_access = 4;\n"
    "    info.regions = {r};\n"
    "    plexus::bridge bridge(\"bridge\", info, argc, argv);\n"
    "    counter c(\"counter\");\n"
    "    bridge.mmio.bind(c.socket);\n"
    "    bridge.on_reset([&c] { c.scratch = c.count = 0; });\n"
    "    return bridge.run();\n"
    "}\n";
#endif

/* The SystemC example by name, and a SystemC model built with nothing but the installed pkg-config file. */
Test(installed, systemc_model_builds_against_the_installed_bridge_and_runs)
{
#if !PLEXUS_TEST_FIRMWARE
    skip_test("this build has no RISC-V firmware");
#endif
#if !PLEXUS_TEST_SYSTEMC
    skip_test("this build has no SystemC bridge (libsystemc-dev is not installed)");
#else
    install();
    cr_assert_eq(plexus("run", "systemc", NULL, NULL), 0, "output:\n%s", res->out);
    expect_lines(res->out, (const char *const[]){ "dma: all checks passed", NULL });

    /* The counter example's machine, its counter0 a SystemC model; counter1 stays the C plugin. */
    char pcpath[700];
    char *dir = build_counter_example(pcpath, sizeof(pcpath));
    char *src = path_in(dir, "sc_counter.cpp");
    write_text(src, sc_counter);
    const char *env[] = { pcpath, PLEXUS_TEST_SANITIZE ? "CXXFLAGS=-O1 -g " SANITIZE_FLAGS : "CXXFLAGS=-O1 -g",
                          PLEXUS_TEST_SANITIZE ? "LDFLAGS=-fsanitize=address,undefined" : "LDFLAGS=", NULL };
    char *cxx[] = { "sh", "-c",
                    "c++ -std=c++17 $CXXFLAGS sc_counter.cpp -o sc-counter $LDFLAGS "
                    "$(pkg-config --cflags --libs plexus-systemc) && pkg-config --libs plexus-systemc", NULL };
    cr_assert_eq(run_in(dir, cxx, env, 240), 0, "the SystemC model did not build:\n%s", res->out);
    cr_expect_not_null(strstr(res->out, prefix), "the build did not use the installed bridge:\n%s", res->out);
    char *yaml = path_in(dir, "machine.yaml");
    cr_assert_eq(plexus("run", yaml, "--set", "devices.counter0.program=./sc-counter"), 0, "output:\n%s", res->out);
    expect_lines(res->out, (const char *const[]){ "counter-test: counter0 (program): ID, SCRATCH, COUNT, CLEAR ok",
                                                  "counter-test: all checks passed", NULL });
    free(yaml);
    free(src);
    free(dir);
#endif
}

static const char *const new_device_lines[] = { "firmware: VALUE reads 0x12345678 after reset ok",
                                                "firmware: VALUE keeps 0xa5a55a5a ok",
                                                "firmware: all checks passed", NULL };

/* `plexus new-device NAME --lang LANG`, then `make run` in the project, as its README says. */
static void new_device_builds_and_boots(const char *plexus_bin, const char *name, const char *lang)
{
    char *argv[] = { (char *)plexus_bin, "new-device", (char *)name, "--lang", (char *)lang, NULL };
    cr_assert_eq(run_in(tmp, argv, NULL, 30), 0, "new-device failed:\n%s", res->out);
    cr_expect_not_null(strstr(res->out, "make run"), "%s", res->out);
    char *dir = path_in(tmp, name);
    char *make[] = { "make", "-C", dir, "run", NULL };
    int st = run_in(tmp, make, build_env(), 240);
    cr_assert_eq(st, 0, "make run failed (%d):\n%s", st, res->out);
    expect_lines(res->out, new_device_lines);
    free(dir);
}

Test(installed, new_device_in_c_builds_and_boots)
{
#if !PLEXUS_TEST_FIRMWARE
    skip_test("this build has no RISC-V firmware: the project would come without firmware.elf");
#endif
    install();
    char *bin = path_in(prefix, "bin/plexus");
    new_device_builds_and_boots(bin, "my-dev", "c");

    /* The register is the device's: with another reset value the firmware fails and says so. */
    char *src = path_in(tmp, "my-dev/my_dev.c"), *dir = path_in(tmp, "my-dev");
    char *sed[] = { "sed", "-i", "s/#define VALUE_RESET 0x12345678u/#define VALUE_RESET 0x1234567u/", src, NULL };
    cr_assert_eq(run_in(tmp, sed, NULL, 10), 0);
    char *make[] = { "make", "-C", dir, "run", NULL };
    cr_expect_eq(run_in(tmp, make, build_env(), 120), 2, "make run should fail:\n%s", res->out);
    cr_expect_not_null(strstr(res->out, "firmware: VALUE reads 0x12345678 after reset FAIL"), "%s", res->out);

    /* The shipped firmware.elf is firmware.S built: `make firmware` gives the same loadable bytes. */
    if (access("/usr/bin/riscv64-unknown-elf-gcc", X_OK) == 0) {
        char *shipped = path_in(tmp, "shipped.bin"), *rebuilt = path_in(tmp, "rebuilt.bin"),
             *elf = path_in(tmp, "my-dev/firmware.elf");
        char *copy1[] = { "riscv64-unknown-elf-objcopy", "-O", "binary", elf, shipped, NULL };
        cr_assert_eq(run_in(tmp, copy1, NULL, 30), 0, "%s", res->out);
        char *fw[] = { "make", "-C", dir, "firmware", NULL };
        cr_assert_eq(run_in(tmp, fw, NULL, 60), 0, "make firmware failed:\n%s", res->out);
        char *copy2[] = { "riscv64-unknown-elf-objcopy", "-O", "binary", elf, rebuilt, NULL };
        cr_assert_eq(run_in(tmp, copy2, NULL, 30), 0, "%s", res->out);
        char *cmp[] = { "cmp", shipped, rebuilt, NULL };
        cr_expect_eq(run_in(tmp, cmp, NULL, 10), 0, "firmware.elf is not firmware.S built:\n%s", res->out);
        free(shipped);
        free(rebuilt);
        free(elf);
    }
    free(src);
    free(dir);
    free(bin);
}

Test(installed, new_device_in_verilog_builds_and_boots)
{
#if !PLEXUS_TEST_FIRMWARE
    skip_test("this build has no RISC-V firmware");
#endif
    if (access("/usr/bin/verilator", X_OK) != 0)
        skip_test("verilator is not installed");
    /* The sanitized suite runs the RTL layer in tests/rtl already; a sanitized Verilator runtime only adds a minute. */
    if (PLEXUS_TEST_SANITIZE)
        skip_test("the Verilog project is built by the suite without sanitizers");
    install();
    char *bin = path_in(prefix, "bin/plexus");
    new_device_builds_and_boots(bin, "rtl-dev", "cpp-rtl");
    free(bin);
}

Test(installed, new_device_refuses_bad_input_and_touches_nothing)
{
    install();
    cr_expect_eq(plexus("new-device", "9lives", NULL, NULL), 2);
    cr_expect_not_null(strstr(res->out, "'9lives' is not a device name"), "%s", res->out);
    cr_expect_eq(plexus("new-device", "dev", "--lang", "vhdl"), 2);
    cr_expect_not_null(strstr(res->out, "unknown language 'vhdl': expected one of c, cpp-rtl"), "%s", res->out);
    char *dev = path_in(tmp, "dev");
    cr_expect_neq(access(dev, F_OK), 0, "a refused new-device left %s behind", dev);

    cr_assert_eq(mkdir(dev, 0755), 0);
    char *keep = path_in(dev, "mine.c");
    write_text(keep, "int mine;\n");
    cr_expect_eq(plexus("new-device", "dev", NULL, NULL), 1);
    cr_expect_not_null(strstr(res->out, "dev already exists"), "%s", res->out);
    struct stat st;
    cr_expect_eq(stat(keep, &st), 0);
    cr_expect_eq(st.st_size, 10, "new-device changed a file it does not own");
    free(keep);
    free(dev);
}

/* ---- the same from the build tree ---- */

TestSuite(build_tree, .init = setup, .fini = teardown);

Test(build_tree, example_names_and_new_device)
{
    if (existing_prefix())
        skip_test("testing an installation");
#if !PLEXUS_TEST_FIRMWARE
    skip_test("this build has no RISC-V firmware");
#endif
    char *bin = path_in(build, "bin/plexus");
    char *argv[] = { bin, "run", "hello", NULL };
    cr_assert_eq(run_in(tmp, argv, NULL, 120), 0, "output:\n%s", res->out);
    expect_lines(res->out, hello_lines);
    /* The project builds against this build tree's SDK (plexus-sdk-uninstalled.pc) and runs its plexus. */
    new_device_builds_and_boots(bin, "tree-dev", "c");
    char *mk = path_in(tmp, "tree-dev/Makefile");
    FILE *f = fopen(mk, "r");
    char text[4096] = "";
    cr_assert_not_null(f);
    text[fread(text, 1, sizeof(text) - 1, f)] = 0;
    fclose(f);
    char want[700];
    snprintf(want, sizeof(want), "PLEXUS_PKG_CONFIG_PATH ?= %s/lib/pkgconfig\n", build);
    cr_expect_not_null(strstr(text, want), "the Makefile does not name the build tree:\n%s", text);
    free(mk);
    free(bin);
}
