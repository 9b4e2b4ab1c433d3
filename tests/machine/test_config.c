/* The machine description: values loaded, and every kind of bad input named by file, line and key. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdbool.h>
#include <errno.h>

#include "common.h"
#include "machine.h"

static char *dir;
static char *yaml_path;

static void setup(void)
{
    dir = tmpdir_new();
    /* what the descriptions below refer to */
    free(write_file(dir, "fw.bin", "\x13\x00\x00\x00", 4, 0644));
    free(write_file(dir, "plexus-fake-dev", "#!/bin/sh\nexit 0\n", 17, 0755));
}

static void teardown(void)
{
    free(yaml_path);
    yaml_path = NULL;
    tmpdir_remove(dir);
}

TestSuite(machine_config, .init = setup, .fini = teardown);

static const char base_yaml[] =
    "name: t\n"                                 /* 1 */
    "ram:\n"                                    /* 2 */
    "  - name: main\n"                          /* 3 */
    "    base: 0x80000000\n"                    /* 4 */
    "    size: 128M\n"                          /* 5 */
    "firmware:\n"                               /* 6 */
    "  - file: fw.bin\n"                        /* 7 */
    "console: uart0\n"                          /* 8 */
    "devices:\n"                                /* 9 */
    "  - name: uart0\n"                         /* 10 */
    "    program: plexus-fake-dev\n"            /* 11 */
    "    base: 0x10000000\n"                    /* 12 */
    "    irq: 10\n"                             /* 13 */
    "    props:\n"                              /* 14 */
    "      tx: stdout\n"                        /* 15 */
    "      speed: 115200\n"                     /* 16 */
    "    dt:\n"                                 /* 17 */
    "      compatible: ns16550a\n"              /* 18 */
    "      properties:\n"                       /* 19 */
    "        clock-frequency: 3686400\n"        /* 20 */
    "  - name: dma0\n"                          /* 21 */
    "    program: ./plexus-fake-dev\n"          /* 22 */
    "    regions:\n"                            /* 23 */
    "      - name: regs\n"                      /* 24 */
    "        base: 0x10010000\n"                /* 25 */
    "    irqs: [12]\n"                          /* 26 */
    "    ram: [main]\n";                        /* 27 */

/* Load @text (written as m.yaml in the test folder) with @sets; returns the error message or NULL. */
static char *load(const char *text, const char *const *sets, size_t n_sets, hub_mconfig **out)
{
    free(yaml_path);
    yaml_path = write_file(dir, "m.yaml", text, strlen(text), 0644);
    hub_mconfig_opts o = { .sets = sets, .n_sets = n_sets, .exe_dir = dir };
    hub_mconfig *c = NULL;
    Error *e = NULL;
    int r = hub_mconfig_load(yaml_path, &o, &c, &e);
    char *err = e ? strdup(error_get_pretty(e)) : NULL;
    error_free(e);
    if (r < 0) {
        cr_assert_not_null(err);
        cr_assert_eq(r, -EINVAL);
        return err;
    }
    cr_assert_null(err);
    if (out)
        *out = c;
    else
        hub_mconfig_free(c);
    return NULL;
}

/* Replace the first occurrence of @from in the base description. */
static char *edited(const char *from, const char *to)
{
    const char *at = strstr(base_yaml, from);
    cr_assert_not_null(at, "test bug: '%s' not in base_yaml", from);
    char *s;
    cr_assert(asprintf(&s, "%.*s%s%s", (int)(at - base_yaml), base_yaml, to, at + strlen(from)) > 0);
    return s;
}

static void expect_error(const char *text, const char *const *sets, size_t n, const char *want_suffix)
{
    char *err = load(text, sets, n, NULL);
    cr_assert_not_null(err, "expected an error ending with: %s", want_suffix);
    char *want;
    cr_assert(asprintf(&want, "%s%s", yaml_path, want_suffix) > 0);
    cr_expect_str_eq(err, want);
    free(want);
    free(err);
}

/*
 * An unknown key's error: file:line, the key's path and "unknown key" exactly (@want_prefix, up to "expected one
 * of: "), then a list of the keys allowed there that names at least @some of them. Only those are asserted, so
 * a new key in the description does not break the test.
 */
static void expect_unknown_key(const char *text, const char *want_prefix, const char *const *some)
{
    char *err = load(text, NULL, 0, NULL);
    cr_assert_not_null(err, "expected an error starting with: %s", want_prefix);
    char *want;
    cr_assert(asprintf(&want, "%s%s", yaml_path, want_prefix) > 0);
    size_t wl = strlen(want);
    cr_assert(strncmp(err, want, wl) == 0, "error: %s\nexpected it to start with: %s", err, want);
    const char *list = err + wl;
    for (; *some; some++) {
        /* a whole item of the comma-separated list */
        bool found = false;
        size_t kl = strlen(*some);
        for (const char *p = list; !found && (p = strstr(p, *some)); p++)
            found = (p == list || p[-2] == ',') && (p[kl] == ',' || p[kl] == 0);
        cr_expect(found, "'%s' is not in the list of allowed keys: %s", *some, list);
    }
    free(want);
    free(err);
}

Test(machine_config, loads_values)
{
    hub_mconfig *c = NULL;
    cr_assert_null(load(base_yaml, NULL, 0, &c));
    cr_assert_eq(c->n_ram, 1);
    cr_expect_str_eq(c->ram[0].name, "main");
    cr_expect_eq(c->ram[0].base, 0x80000000ULL);
    cr_expect_eq(c->ram[0].size, 128ULL << 20);
    cr_assert_eq(c->n_firmware, 1);
    cr_expect_eq(c->firmware[0].format, HUB_FW_RAW);
    cr_expect_eq(c->firmware[0].address, 0x80000000ULL);
    cr_expect_eq(c->console, 0);
    cr_expect_eq(c->clint_base, 0x2000000ULL);
    cr_expect_eq(c->plic_base, 0xc000000ULL);
    cr_expect_eq(c->poweroff_base, 0x100000ULL);
    cr_expect_eq(c->plic_sources, 96);
    cr_expect_eq(c->timebase_hz, 10000000ULL);
    cr_expect_eq(c->time_mode, HUB_TIME_VIRTUAL);
    cr_assert_eq(c->n_devices, 2);
    const hub_mc_device *u = &c->devices[0];
    cr_expect_str_eq(u->dev.name, "uart0");
    cr_assert_not_null(u->dev.program);
    cr_expect(strstr(u->dev.program, "/plexus-fake-dev") != NULL);
    cr_assert_eq(u->dev.n_regions, 1);
    cr_expect_null(u->dev.regions[0].region);
    cr_expect_eq(u->dev.regions[0].base, 0x10000000ULL);
    cr_assert_eq(u->dev.n_irqs, 1);
    cr_expect_eq(u->dev.irqs[0].line, 0);
    cr_expect_eq(u->dev.irqs[0].irq, 10);
    cr_assert_eq(u->dev.n_props, 2);
    cr_expect_str_eq(u->dev.props[0].key, "tx");
    cr_expect_str_eq(u->dev.props[0].value, "stdout");
    cr_expect_str_eq(u->dev.props[1].value, "115200");
    cr_assert_eq(u->n_dt_compatible, 1);
    cr_expect_str_eq(u->dt_compatible[0], "ns16550a");
    cr_expect_null(u->dt_node, "no dt.node: the node is named when the device tree is built (test_dtb)");
    cr_assert_eq(u->n_dt_props, 1);
    cr_expect_eq(u->dt_props[0].kind, HUB_DT_CELLS);
    cr_expect_eq(u->dt_props[0].cells[0], 3686400);
    const hub_mc_device *d = &c->devices[1];
    cr_assert_eq(d->dev.n_regions, 1);
    cr_expect_str_eq(d->dev.regions[0].region, "regs");
    cr_expect_eq(d->dev.regions[0].base, 0x10010000ULL);
    cr_expect_eq(d->dev.irqs[0].irq, 12);
    cr_expect_not_null(d->dev.ram_grants, "`ram:` given: only the blocks named");
    cr_assert_eq(d->dev.n_ram_grants, 1);
    cr_expect_str_eq(d->dev.ram_grants[0], "main");
    cr_expect_eq(d->n_dt_compatible, 0);
    hub_mconfig_free(c);
}

Test(machine_config, sizes)
{
    uint64_t v;
    cr_expect_eq(hub_parse_size("128M", &v), 0);
    cr_expect_eq(v, 128ULL << 20);
    cr_expect_eq(hub_parse_size("0x8000000", &v), 0);
    cr_expect_eq(v, 0x8000000ULL);
    cr_expect_eq(hub_parse_size("64KiB", &v), 0);
    cr_expect_eq(v, 65536);
    cr_expect_eq(hub_parse_size("2G", &v), 0);
    cr_expect_eq(v, 2ULL << 30);
    cr_expect_eq(hub_parse_size("4096", &v), 0);
    cr_expect_eq(v, 4096);
    cr_expect_eq(hub_parse_size("12Q", &v), -EINVAL);
    cr_expect_eq(hub_parse_size("-1", &v), -EINVAL);
    cr_expect_eq(hub_parse_size("", &v), -EINVAL);
    cr_expect_eq(hub_parse_size("99999999999T", &v), -ERANGE);
}

Test(machine_config, set_overrides)
{
    const char *sets[] = { "cpu.insns_per_ns=0.5", "devices.uart0.props.tx=file:/tmp/x", "devices.1.irqs=[12, 13]",
                           "ram.main.size=256M", "cpu.time=wallclock", "devices.dma0.irqs.1=14" };
    hub_mconfig *c = NULL;
    cr_assert_null(load(base_yaml, sets, 6, &c));
    cr_expect_float_eq(c->insns_per_ns, 0.5, 1e-9);
    cr_expect_str_eq(c->devices[0].dev.props[0].value, "file:/tmp/x");
    cr_assert_eq(c->devices[1].dev.n_irqs, 2);
    cr_expect_eq(c->devices[1].dev.irqs[1].line, 1);
    cr_expect_eq(c->devices[1].dev.irqs[1].irq, 14);
    cr_expect_eq(c->ram[0].size, 256ULL << 20);
    cr_expect_eq(c->time_mode, HUB_TIME_WALLCLOCK);
    hub_mconfig_free(c);
}

Test(machine_config, set_errors_name_the_override)
{
    const char *s1[] = { "devices.uart0.irq=abc" };
    expect_error(base_yaml, s1, 1, " (devices.uart0.irq=abc): key 'devices[0].irq': expected an unsigned integer, "
                 "got 'abc'");
    const char *s2[] = { "devices.nosuch.irq=3" };
    char *err = load(base_yaml, s2, 1, NULL);
    cr_assert_not_null(err);
    cr_expect_str_eq(err, "--set devices.nosuch.irq=3: no list entry 'nosuch' (use an index or an entry's name) in "
                     "'devices.nosuch.irq'");
    free(err);
    const char *s3[] = { "novalue" };
    err = load(base_yaml, s3, 1, NULL);
    cr_expect_str_eq(err, "--set novalue: expected KEY=VALUE, e.g. --set cpu.insns_per_ns=0.5");
    free(err);
}

Test(machine_config, unknown_key)
{
    char *y = edited("    irq: 10\n", "    irq: 10\n    colour: blue\n");
    static const char *const device_keys[] = { "name", "program", "plugin", "base", "irq", "props", "sandbox",
                                               "restart", "transport", NULL };
    expect_unknown_key(y, ":14: key 'devices[0].colour': unknown key 'colour'; expected one of: ", device_keys);
    free(y);
    y = edited("name: t\n", "name: t\nmemory: 3\n");
    static const char *const top_keys[] = { "name", "ram", "firmware", "cpu", "kernel", "chosen", "devices", NULL };
    expect_unknown_key(y, ":2: key 'memory': unknown key 'memory'; expected one of: ", top_keys);
    free(y);
}

Test(machine_config, wrong_type)
{
    char *y = edited("    irq: 10\n", "    irq: [10]\n");
    expect_error(y, NULL, 0, ":13: key 'devices[0].irq': expected a number, got a list");
    free(y);
    y = edited("    irq: 10\n", "    irq: ten\n");
    expect_error(y, NULL, 0, ":13: key 'devices[0].irq': expected an unsigned integer, got 'ten'");
    free(y);
    y = edited("console: uart0\n", "console: uart0\ncpu:\n  time: sometimes\n");
    expect_error(y, NULL, 0, ":10: key 'cpu.time': expected one of: virtual, wallclock; got 'sometimes'");
    free(y);
    y = edited("      speed: 115200\n", "      speed: [1, 2]\n");
    expect_error(y, NULL, 0, ":16: key 'devices[0].props.speed': expected a plain value (string or number), got a "
                 "list");
    free(y);
}

Test(machine_config, missing_required_key)
{
    char *y = edited("    base: 0x80000000\n", "");
    expect_error(y, NULL, 0, ":3: key 'ram[0].base': missing required key 'base'");
    free(y);
    expect_error("devices: []\n", NULL, 0, ":1: key 'ram': missing required key 'ram'");
}

Test(machine_config, bad_size)
{
    char *y = edited("    size: 128M\n", "    size: 128Q\n");
    expect_error(y, NULL, 0, ":5: key 'ram[0].size': expected an address or size such as 0x80000000, 4096 or 128M; "
                 "got '128Q'");
    free(y);
    y = edited("    size: 128M\n", "    size: 1000\n");
    expect_error(y, NULL, 0, ":5: key 'ram[0].size': expected a non-zero multiple of 4 KiB (e.g. 128M); got '1000'");
    free(y);
}

Test(machine_config, overlapping_regions)
{
    char *y = edited("console: uart0\n", "console: uart0\nclint:\n  base: 0x80100000\n");
    expect_error(y, NULL, 0, ":10: key 'clint.base': clint [0x80100000-0x8010ffff] overlaps RAM 'main' "
                 "[0x80000000-0x87ffffff]");
    free(y);
    y = edited("    size: 128M\n", "    size: 128M\n  - name: more\n    base: 0x87fff000\n    size: 8K\n");
    expect_error(y, NULL, 0, ":7: key 'ram[1].base': RAM 'more' [0x87fff000-0x88000fff] overlaps RAM 'main' "
                 "[0x80000000-0x87ffffff]");
    free(y);
}

Test(machine_config, missing_firmware_file)
{
    char *y = edited("  - file: fw.bin\n", "  - file: nothere.bin\n");
    char *err = load(y, NULL, 0, NULL);
    cr_assert_not_null(err);
    char *want;
    cr_assert(asprintf(&want, "%s:7: key 'firmware[0].file': firmware file 'nothere.bin' not found or not readable "
                       "(looked in %s/nothere.bin)", yaml_path, dir) > 0);
    cr_expect_str_eq(err, want);
    free(want);
    free(err);
    free(y);
}

Test(machine_config, missing_program)
{
    char *y = edited("    program: ./plexus-fake-dev\n", "    program: ./plexus-nothing\n");
    char *err = load(y, NULL, 0, NULL);
    cr_assert_not_null(err);
    cr_expect(strstr(err, ":22: key 'devices[1].program': program './plexus-nothing' not found (looked in ") != NULL,
              "%s", err);
    free(err);
    free(y);
}

Test(machine_config, duplicate_device_names)
{
    char *y = edited("  - name: dma0\n", "  - name: uart0\n");
    expect_error(y, NULL, 0, ":21: key 'devices[1].name': duplicate device name 'uart0' (also devices[0])");
    free(y);
}

Test(machine_config, bad_irq)
{
    char *y = edited("    irq: 10\n", "    irq: 0\n");
    expect_error(y, NULL, 0, ":13: key 'devices[0].irq': expected a PLIC source number 1..96 (0 is reserved); got 0");
    free(y);
    y = edited("    irq: 10\n", "    irq: 97\n");
    expect_error(y, NULL, 0, ":13: key 'devices[0].irq': expected a PLIC source number 1..96 (0 is reserved); got 97");
    free(y);
    y = edited("    irqs: [12]\n", "    irqs: [10]\n");
    expect_error(y, NULL, 0, ":26: key 'devices[1].irqs[0]': irq 10 is already used by device 'uart0'");
    free(y);
}

Test(machine_config, yaml_syntax_error)
{
    char *y = edited("    irq: 10\n", "    irq: [10\n");
    char *err = load(y, NULL, 0, NULL);
    cr_assert_not_null(err);
    cr_expect(strncmp(err, yaml_path, strlen(yaml_path)) == 0);
    cr_expect(strstr(err, ": YAML syntax error: ") != NULL, "%s", err);
    free(err);
    free(y);
}

Test(machine_config, console_must_name_a_device)
{
    char *y = edited("console: uart0\n", "console: uart7\n");
    expect_error(y, NULL, 0, ":8: key 'console': no device named 'uart7' (expected a device name or 'none')");
    free(y);
}

Test(machine_config, reserved_keys_are_shape_checked)
{
    char *y = edited("    irq: 10\n", "    irq: 10\n    sandbox:\n      policy: default\n      allow: [clock_nanosleep]\n"
                     "    restart:\n      policy: on-failure\n      max_restarts: 3\n");
    cr_assert_null(load(y, NULL, 0, NULL));
    free(y);
    y = edited("    irq: 10\n", "    irq: 10\n    restart:\n      policy: sometimes\n");
    expect_error(y, NULL, 0, ":15: key 'devices[0].restart.policy': expected one of: never, on-failure, always; got "
                 "'sometimes'");
    free(y);
    y = edited("    irq: 10\n", "    irq: 10\n    sandbox: strict\n");
    expect_error(y, NULL, 0, ":14: key 'devices[0].sandbox': expected a mapping (key: value lines), got a plain "
                 "value");
    free(y);
}

Test(machine_config, firmware_override)
{
    char *fw = write_file(dir, "other.bin", "abcd", 4, 0644);
    hub_mconfig_opts o = { .firmware = fw, .exe_dir = dir };
    yaml_path = write_file(dir, "m.yaml", base_yaml, strlen(base_yaml), 0644);
    hub_mconfig *c = NULL;
    Error *err = NULL;
    cr_assert_eq(hub_mconfig_load(yaml_path, &o, &c, &err), 0, "%s", err ? error_get_pretty(err) : "");
    cr_assert_eq(c->n_firmware, 1);
    cr_expect(strstr(c->firmware[0].path, "/other.bin") != NULL);
    hub_mconfig_free(c);
    free(fw);
}

Test(machine_config, sandbox_and_restart_values)
{
    hub_mconfig *c;
    char *y = edited("    ram: [main]\n", "    ram: [main]\n    sandbox:\n      policy: log\n      allow: [openat, socket]\n"
                     "    restart:\n      policy: on-failure\n      backoff_ms: 20\n");
    cr_assert_null(load(y, NULL, 0, &c));
    free(y);
    const hub_mc_device *u = &c->devices[0], *d = &c->devices[1];
    cr_expect_not(u->dev.sandbox);
    cr_expect_eq(u->dev.max_restarts, 0);
    cr_expect(d->dev.sandbox, "the sandbox mapping alone turns it on");
    cr_expect_str_eq(d->dev.sandbox_policy, "log");
    cr_assert_eq(d->dev.n_sandbox_allow, 2);
    cr_expect_str_eq(d->dev.sandbox_allow[0], "openat");
    cr_expect_str_eq(d->dev.sandbox_allow[1], "socket");
    cr_expect_eq(d->dev.max_restarts, 3, "on-failure defaults to 3 restarts");
    cr_expect_eq(d->dev.restart_backoff_ms, 20);
    cr_expect_not(d->dev.strict);
    cr_expect_eq(d->dev.n_sandbox_read, 0);
    hub_mconfig_free(c);

    y = edited("    ram: [main]\n", "    ram: [main]\n    jail:\n      read: [/srv/a, /srv/b]\n      write: [/tmp/u.txt]\n"
               "      strict: true\n    limits:\n      region_bytes: 64M\n      log_bytes_per_s: 4096\n");
    cr_assert_null(load(y, NULL, 0, &c));
    free(y);
    d = &c->devices[1];
    cr_expect_not(d->dev.sandbox, "a jail alone does not add the SDK's filter");
    cr_assert_eq(d->dev.n_sandbox_read, 2);
    cr_expect_str_eq(d->dev.sandbox_read[1], "/srv/b");
    cr_assert_eq(d->dev.n_sandbox_write, 1);
    cr_expect_str_eq(d->dev.sandbox_write[0], "/tmp/u.txt");
    cr_expect(d->dev.strict);
    cr_expect_not(c->devices[0].dev.strict);
    cr_expect_eq(d->dev.limits.region_bytes, 64u << 20);
    cr_expect_eq(d->dev.limits.log_bytes_per_s, 4096);
    cr_expect_eq(d->dev.limits.shadow_bytes, 0, "not given: the default");
    hub_mconfig_free(c);

    y = edited("ram:\n", "sandbox: strict\nram:\n");
    cr_assert_null(load(y, NULL, 0, &c));
    free(y);
    cr_expect(c->devices[0].dev.strict && c->devices[1].dev.strict, "sandbox: strict holds every device to it");
    hub_mconfig_free(c);

    y = edited("    ram: [main]\n", "    ram: [main]\n    sandbox:\n      enabled: false\n    restart:\n      policy: never\n");
    cr_assert_null(load(y, NULL, 0, &c));
    free(y);
    cr_expect_not(c->devices[1].dev.sandbox);
    cr_expect_eq(c->devices[1].dev.max_restarts, 0);
    hub_mconfig_free(c);

    y = edited("    ram: [main]\n", "    ram: [main]\n    restart:\n      max_restarts: 5\n");
    cr_assert_null(load(y, NULL, 0, &c));
    free(y);
    cr_expect_eq(c->devices[1].dev.max_restarts, 5, "max_restarts alone means on-failure");
    hub_mconfig_free(c);
}

Test(machine_config, sandbox_and_restart_errors)
{
    char *y = edited("    ram: [main]\n", "    ram: [main]\n    sandbox:\n      policy: strict\n");
    expect_error(y, NULL, 0, ":29: key 'devices[1].sandbox.policy': expected one of: default, log; got 'strict'");
    free(y);
    y = edited("    ram: [main]\n", "    ram: [main]\n    sandbox:\n      allow:\n        - read\n        - no_such_call\n");
    expect_error(y, NULL, 0, ":31: key 'devices[1].sandbox.allow[1]': expected a system call name of this "
                 "architecture (e.g. openat); got 'no_such_call'");
    free(y);
    y = edited("    ram: [main]\n", "    ram: [main]\n    sandbox:\n      enabled: maybe\n");
    expect_error(y, NULL, 0, ":29: key 'devices[1].sandbox.enabled': expected true or false; got 'maybe'");
    free(y);
    y = edited("    ram: [main]\n", "    ram: [main]\n    restart:\n      policy: sometimes\n");
    expect_error(y, NULL, 0, ":29: key 'devices[1].restart.policy': expected one of: never, on-failure, always; "
                 "got 'sometimes'");
    free(y);
    y = edited("    ram: [main]\n", "    ram: [main]\n    restart:\n      policy: never\n      max_restarts: 2\n");
    expect_error(y, NULL, 0, ":30: key 'devices[1].restart.max_restarts': policy 'never' restarts nothing; remove "
                 "max_restarts or use policy on-failure");
    free(y);
    y = edited("    ram: [main]\n", "    ram: [main]\n    restart:\n      max_restarts: 0\n");
    expect_error(y, NULL, 0, ":29: key 'devices[1].restart.max_restarts': expected at least 1 with policy "
                 "on-failure (or policy: never)");
    free(y);
    y = edited("    ram: [main]\n", "    ram: [main]\n    sandbox:\n      namespaces: [net, pid]\n");
    expect_error(y, NULL, 0, ":29: key 'devices[1].sandbox.namespaces': namespaces are not chosen per device any "
                 "more: every device plexus starts runs in pid, mount, ipc and uts namespaces of its own (and a "
                 "network namespace unless its endpoint is tcp); remove the key");
    free(y);
    y = edited("    ram: [main]\n", "    ram: [main]\n    jail:\n      read: [relative/path]\n");
    expect_error(y, NULL, 0, ":29: key 'devices[1].jail.read[0]': expected an absolute path; got 'relative/path'");
    free(y);
    y = edited("    ram: [main]\n", "    ram: [main]\n    limits:\n      log_bytes_per_s: 0\n");
    expect_error(y, NULL, 0, ":29: key 'devices[1].limits.log_bytes_per_s': expected 1..4G; got '0'");
    free(y);
    y = edited("ram:\n", "sandbox: paranoid\nram:\n");
    expect_error(y, NULL, 0, ":2: key 'sandbox': expected one of: normal, strict; got 'paranoid'");
    free(y);
    y = edited("    ram: [main]\n", "    ram: [main]\n    restart:\n      backoff_ms: 999999\n");
    expect_error(y, NULL, 0, ":29: key 'devices[1].restart.backoff_ms': expected 0..60000 ms; got 999999");
    free(y);
}

Test(machine_config, files_are_found_like_firmware_and_checked)
{
    free(write_file(dir, "disk.img", "0123456789abcdef", 16, 0644));
    hub_mconfig *c;
    char *y = edited("    ram: [main]\n", "    ram: [main]\n    files:\n      - name: disk\n        path: disk.img\n"
                     "      - name: ro-copy\n        path: disk.img\n        readonly: true\n");
    cr_assert_null(load(y, NULL, 0, &c));
    free(y);
    const hub_device_config *d = &c->devices[1].dev;
    cr_assert_eq(d->n_files, 2);
    cr_expect_str_eq(d->files[0].name, "disk");
    char *want;
    cr_assert(asprintf(&want, "%s/disk.img", dir) > 0);
    cr_expect_str_eq(d->files[0].path, want, "found next to the description, made absolute");
    cr_expect_not(d->files[0].readonly);
    cr_expect_str_eq(d->files[1].name, "ro-copy");
    cr_expect(d->files[1].readonly);
    free(want);
    cr_expect_eq(c->devices[0].dev.n_files, 0);
    hub_mconfig_free(c);

    const char *set[] = { "devices.dma0.files.disk.path=/nonexistent.img" };
    y = edited("    ram: [main]\n", "    ram: [main]\n    files:\n      - name: disk\n        path: disk.img\n");
    char *err = load(y, set, 1, NULL);
    cr_assert_not_null(err);
    cr_expect(strstr(err, "(devices.dma0.files.disk.path=/nonexistent.img): key 'devices[1].files[0].path': "
                     "file '/nonexistent.img' not found or not readable"), "%s", err);
    free(err);
    free(y);
    y = edited("    ram: [main]\n", "    ram: [main]\n    files:\n      - name: disk\n        path: disk.img\n"
               "      - name: disk\n        path: disk.img\n");
    expect_error(y, NULL, 0, ":31: key 'devices[1].files[1].name': duplicate file name 'disk' (also files[0])");
    free(y);
    y = edited("    ram: [main]\n", "    ram: [main]\n    files:\n      - name: a disk\n        path: disk.img\n");
    expect_error(y, NULL, 0, ":29: key 'devices[1].files[0].name': expected a name of letters, digits, '_' and "
                 "'-'; got 'a disk'");
    free(y);
    y = edited("    ram: [main]\n", "    ram: [main]\n    files:\n      - name: disk\n");
    expect_error(y, NULL, 0, ":29: key 'devices[1].files[0].path': missing required key 'path'");
    free(y);
}

Test(machine_config, transport_and_ring)
{
    hub_mconfig *c = NULL;
    char *y = edited("    irq: 10\n", "    irq: 10\n    transport: zeromq\n");
    cr_assert_null(load(y, NULL, 0, &c));
    cr_expect_eq(c->devices[0].dev.transport, HUB_TRANSPORT_ZMQ);
    cr_expect_eq(c->devices[1].dev.transport, HUB_TRANSPORT_AUTO, "auto by default");
    hub_mconfig_free(c);
    free(y);

    y = edited("    irq: 10\n", "    irq: 10\n    transport: ring\n    ring:\n      slots: 256\n      spin_us: 7\n");
    cr_assert_null(load(y, NULL, 0, &c));
    cr_expect_eq(c->devices[0].dev.transport, HUB_TRANSPORT_RING);
    cr_expect_eq(c->devices[0].dev.ring_slots, 256);
    cr_expect_eq(c->devices[0].dev.ring_spin_us, 7);
    hub_mconfig_free(c);
    free(y);

    y = edited("    irq: 10\n", "    irq: 10\n    transport: pigeon\n");
    expect_error(y, NULL, 0, ":14: key 'devices[0].transport': expected one of: auto, ring, zeromq; got 'pigeon'");
    free(y);
    y = edited("    irq: 10\n", "    irq: 10\n    ring:\n      slots: 100\n");
    expect_error(y, NULL, 0, ":15: key 'devices[0].ring.slots': expected a power of two from 64 to 1048576; got 100");
    free(y);
    y = edited("    irq: 10\n", "    irq: 10\n    endpoint: tcp://127.0.0.1:0\n    transport: ring\n");
    expect_error(y, NULL, 0, ":15: key 'devices[0].transport': the ring is for devices on this host; endpoint "
                 "'tcp://127.0.0.1:0' is ZeroMQ (leave transport out or say zeromq)");
    free(y);
    const char *set[] = { "devices.dma0.transport=zeromq", "devices.dma0.ring.spin_us=3" };
    cr_assert_null(load(base_yaml, set, 2, &c));
    cr_expect_eq(c->devices[1].dev.transport, HUB_TRANSPORT_ZMQ);
    cr_expect_eq(c->devices[1].dev.ring_spin_us, 3);
    hub_mconfig_free(c);
}

Test(machine_config, lockstep_dma_and_quantum)
{
    hub_mconfig *c = NULL;
    char *y = edited("    irq: 10\n", "    irq: 10\n    sync: lockstep\n    dma: message\n");
    cr_assert_null(load(y, NULL, 0, &c));
    cr_expect(c->devices[0].dev.lockstep);
    cr_expect(c->devices[0].dev.ram_by_message);
    cr_expect_not(c->devices[1].dev.lockstep, "async by default");
    cr_expect_not(c->devices[1].dev.ram_by_message, "mapped RAM by default");
    cr_expect_eq(c->quantum_ns, 0, "the device layer's default quantum");
    hub_mconfig_free(c);
    free(y);

    y = edited("    irq: 10\n", "    irq: 10\n    sync: sometimes\n");
    expect_error(y, NULL, 0, ":14: key 'devices[0].sync': expected one of: async, lockstep; got 'sometimes'");
    free(y);
    y = edited("    irq: 10\n", "    irq: 10\n    dma: carrier-pigeon\n");
    expect_error(y, NULL, 0, ":14: key 'devices[0].dma': expected one of: map, message; got 'carrier-pigeon'");
    free(y);

    const char *ok[] = { "cpu.quantum_ns=2500", "devices.dma0.sync=lockstep" };
    cr_assert_null(load(base_yaml, ok, 2, &c));
    cr_expect_eq(c->quantum_ns, 2500);
    cr_expect(c->devices[1].dev.lockstep);
    hub_mconfig_free(c);
    const char *bad[] = { "cpu.quantum_ns=5" };
    char *err = load(base_yaml, bad, 1, NULL);
    cr_assert_not_null(err);
    cr_expect(strstr(err, "key 'cpu.quantum_ns': expected 10..1000000000 ns of virtual time; got 5"), "%s", err);
    free(err);
}

Test(machine_config, cpu_idle_sleeps_by_default_and_jumps_on_request)
{
    hub_mconfig *c = NULL;
    cr_assert_null(load(base_yaml, NULL, 0, &c));
    cr_expect_eq(c->idle_mode, HUB_IDLE_SLEEP);
    hub_mconfig_free(c);
    char *y = edited("console: uart0\n", "console: uart0\ncpu:\n  idle: jump\n");
    cr_assert_null(load(y, NULL, 0, &c));
    cr_expect_eq(c->idle_mode, HUB_IDLE_JUMP);
    hub_mconfig_free(c);
    const char *sets[] = { "cpu.idle=jump" };
    cr_assert_null(load(base_yaml, sets, 1, &c));
    cr_expect_eq(c->idle_mode, HUB_IDLE_JUMP);
    hub_mconfig_free(c);
    free(y);
    y = edited("console: uart0\n", "console: uart0\ncpu:\n  idle: nap\n");
    expect_error(y, NULL, 0, ":10: key 'cpu.idle': expected one of: sleep, jump; got 'nap'");
    free(y);
}
