/* plexus: the command line of the hub. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <plexus/memory.h>

#include "console.h"
#include "machine.h"

#define EXIT_ERROR 1
#define EXIT_USAGE 2

static const char usage_main[] =
    "plexus - run a RISC-V 64 machine whose devices are separate processes\n"
    "\n"
    "Usage:\n"
    "  plexus run MACHINE.yaml [options]     boot the machine; exit status = the guest's poweroff code\n"
    "  plexus mtree MACHINE.yaml [options]   start the devices, print the memory map, stop\n"
    "  plexus dtb MACHINE.yaml -o OUT.dtb    start the devices, write the generated device tree, stop\n"
    "  plexus check MACHINE.yaml [options]   only validate the description (no device is started)\n"
    "  plexus help [COMMAND]                 help on a command\n"
    "  plexus --version\n"
    "\n"
    "Start with:  plexus run examples/hello/machine.yaml\n"
    "The machine description (YAML) is documented in docs/machine.md.\n";

static const char usage_common[] =
    "  --set KEY=VALUE   override a key of the description, e.g. --set cpu.insns_per_ns=0.5,\n"
    "                    --set devices.uart0.props.tx=file:/tmp/out.txt, --set ram.0.size=256M.\n"
    "                    KEY is dot-separated; in a list, use the entry's index or its name.\n"
    "                    VALUE is YAML: [10, 11] is a list. May be repeated; applied in order.\n"
    "  --firmware FILE   boot FILE instead of the description's firmware list (ELF, or raw\n"
    "                    at the first RAM block's base)\n"
    "  --kernel FILE     the next stage after the firmware, as QEMU's -kernel: a RISC-V Linux\n"
    "                    Image (at 0x80200000 behind OpenSBI on the virt map) or an ELF\n"
    "  --initrd FILE     an initial ramdisk for the kernel, described in /chosen\n"
    "  --append ARGS     the kernel command line (/chosen/bootargs)\n"
    "  --dtb FILE        this device tree instead of the generated one (/chosen still gets\n"
    "                    the command line and the initrd)\n"
    "  -v, --verbose     show every log record of the devices (default: warnings and errors)\n"
    "  --run-dir DIR     keep device endpoints and the attach socket (DIR/attach.sock) in DIR\n"
    "                    (default: a private temporary folder); devices with `attach: true` are\n"
    "                    started by you with --plexus-attach=DIR/attach.sock --plexus-name=NAME\n";

static const char usage_run[] =
    "Usage: plexus run MACHINE.yaml [--firmware FILE] [--kernel FILE [--initrd FILE] [--append ARGS]]\n"
    "                  [--set KEY=VALUE]... [--stats] [-v]\n"
    "\n"
    "Boot the machine MACHINE.yaml describes: RAM, firmware, the RISC-V CPU with its CLINT, PLIC and\n"
    "poweroff device, and one process per device. The console device (`console:` in the description)\n"
    "gets the terminal: what you type goes to it, what it prints comes out here.\n"
    "\n"
    "Options:\n"
    "%s"
    "  --stats           at exit, print instructions, device round trips, shadow reads, ... to stderr\n"
    "  --event-log FILE  write one line per device access, IRQ change, DMA by message and lockstep\n"
    "                    time grant, each with its virtual time (two runs of a lockstep machine give\n"
    "                    the same file)\n"
    "\n"
    "Console keys (Ctrl-A, then a key):\n"
    "  Ctrl-A x   quit (exit status 0)       Ctrl-A s   print statistics\n"
    "  Ctrl-A h   help                       Ctrl-A Ctrl-A   send Ctrl-A to the guest\n"
    "Ctrl-C stops plexus (exit status 130).\n"
    "\n"
    "Exit status: the guest's poweroff code (sifive,test0: 0x5555 -> 0, 0x3333|code<<16 -> code);\n"
    "1 when plexus itself fails (bad description, a device that does not start, a CPU fault);\n"
    "2 for a bad command line; 128+N after signal N.\n"
    "\n"
    "Examples:\n"
    "  plexus run examples/hello/machine.yaml\n"
    "  plexus run examples/u-boot/machine.yaml --stats\n"
    "  plexus run examples/linux/machine.yaml --kernel Image --initrd initramfs.cpio.gz\n"
    "  plexus run examples/hello/machine.yaml --set devices.uart0.props.tx=file:/tmp/uart.txt\n";

static const char usage_mtree[] =
    "Usage: plexus mtree MACHINE.yaml [--set KEY=VALUE]...\n"
    "\n"
    "Start the machine's devices (their region sizes are only known after they answer), print the memory\n"
    "region tree and the flat view the CPU sees, then shut everything down.\n"
    "\n"
    "Options:\n%s";

static const char usage_dtb[] =
    "Usage: plexus dtb MACHINE.yaml -o OUT.dtb [--set KEY=VALUE]...\n"
    "\n"
    "Start the machine's devices, write the device tree the firmware would get (in a1) to OUT.dtb\n"
    "('-' for stdout), then shut everything down. Read it with:  dtc -I dtb -O dts OUT.dtb\n"
    "\n"
    "Options:\n"
    "  -o, --output FILE the DTB file to write\n%s";

static const char usage_check[] =
    "Usage: plexus check MACHINE.yaml [--firmware FILE] [--set KEY=VALUE]...\n"
    "\n"
    "Load and validate the description: keys, types, sizes, overlaps of RAM and built-in devices, that\n"
    "every file and program exists. Starts nothing. Prints the errors, or 'ok'.\n"
    "\n"
    "Options:\n%s";

/*
 * Under LeakSanitizer: libunicorn keeps a few translation-cache allocations past uc_close(); they are not ours
 * to free. LSan calls this hook when it is linked in; otherwise nothing does.
 */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libunicorn.so\n";
}

static void print_usage(FILE *f, const char *cmd)
{
    if (!cmd)
        fputs(usage_main, f);
    else if (!strcmp(cmd, "run"))
        fprintf(f, usage_run, usage_common);
    else if (!strcmp(cmd, "mtree"))
        fprintf(f, usage_mtree, usage_common);
    else if (!strcmp(cmd, "dtb"))
        fprintf(f, usage_dtb, usage_common);
    else if (!strcmp(cmd, "check"))
        fprintf(f, usage_check, usage_common);
    else
        fputs(usage_main, f);
}

static hub_machine *volatile g_machine;
static volatile sig_atomic_t g_signal;

/* First signal: stop in order (devices shut down); a second one: leave at once. */
static void on_signal(int sig)
{
    if (!g_signal) {
        g_signal = sig;
        if (g_machine)
            hub_machine_request_stop(g_machine, 128 + sig);
        return;
    }
    hub_console_restore_tty();
    _exit(128 + sig);
}

static int mprintf(FILE *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = vfprintf(f, fmt, ap);
    va_end(ap);
    return r;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_usage(stderr, NULL);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        print_usage(stdout, NULL);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("plexus 0.1.0\n");
        return 0;
    }
    if (!strcmp(cmd, "help")) {
        print_usage(stdout, argc > 2 ? argv[2] : NULL);
        return 0;
    }
    if (strcmp(cmd, "run") && strcmp(cmd, "mtree") && strcmp(cmd, "dtb") && strcmp(cmd, "check")) {
        fprintf(stderr, "plexus: unknown command '%s'\n\n", cmd);
        print_usage(stderr, NULL);
        return EXIT_USAGE;
    }

    static const struct option longopts[] = {
        { "set", required_argument, NULL, 's' },
        { "firmware", required_argument, NULL, 'f' },
        { "kernel", required_argument, NULL, 'K' },
        { "initrd", required_argument, NULL, 'I' },
        { "append", required_argument, NULL, 'A' },
        { "dtb", required_argument, NULL, 'D' },
        { "stats", no_argument, NULL, 'S' },
        { "output", required_argument, NULL, 'o' },
        { "verbose", no_argument, NULL, 'v' },
        { "run-dir", required_argument, NULL, 'r' },
        { "event-log", required_argument, NULL, 'E' },
        { "help", no_argument, NULL, 'h' },
        { 0 }
    };
    const char *sets[argc];
    size_t n_sets = 0;
    const char *kernel = NULL, *initrd = NULL, *append = NULL, *dtb_file = NULL;
    const char *firmware = NULL, *output = NULL, *file = NULL, *run_dir = NULL, *event_log = NULL;
    bool stats = false, verbose = false;
    optind = 2;
    int ch;
    while ((ch = getopt_long(argc, argv, "-o:vh", longopts, NULL)) != -1) {
        switch (ch) {
        case 1:
            if (file) {
                fprintf(stderr, "plexus %s: one machine description only ('%s' and '%s')\n", cmd, file, optarg);
                return EXIT_USAGE;
            }
            file = optarg;
            break;
        case 's': sets[n_sets++] = optarg; break;
        case 'f': firmware = optarg; break;
        case 'K': kernel = optarg; break;
        case 'I': initrd = optarg; break;
        case 'A': append = optarg; break;
        case 'D': dtb_file = optarg; break;
        case 'S': stats = true; break;
        case 'o': output = optarg; break;
        case 'v': verbose = true; break;
        case 'r': run_dir = optarg; break;
        case 'E': event_log = optarg; break;
        case 'h': print_usage(stdout, cmd); return 0;
        default:
            fprintf(stderr, "Try 'plexus help %s'.\n", cmd);
            return EXIT_USAGE;
        }
    }
    if (!file) {
        fprintf(stderr, "plexus %s: missing MACHINE.yaml\n\n", cmd);
        print_usage(stderr, cmd);
        return EXIT_USAGE;
    }
    if (!strcmp(cmd, "dtb") && !output) {
        fprintf(stderr, "plexus dtb: missing -o OUT.dtb\n");
        return EXIT_USAGE;
    }

    /* Where am I: device programs sit next to this binary; a build tree also has the example firmware. */
    char exe[PATH_MAX];
    ssize_t l = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    exe[l > 0 ? l : 0] = 0;
    char *exe_dir = strdup(dirname(exe));
    const char *build_dir = NULL;
#ifdef PLEXUS_BUILD_DIR
    char *bin = NULL;
    if (asprintf(&bin, "%s/bin", PLEXUS_BUILD_DIR) >= 0) {
        char *rb = realpath(bin, NULL);
        if (rb && !strcmp(rb, exe_dir))
            build_dir = PLEXUS_BUILD_DIR;
        free(rb);
        free(bin);
    }
#endif
    hub_mconfig_opts mo = {
        .sets = sets, .n_sets = n_sets, .firmware = firmware, .exe_dir = exe_dir,
        .kernel = kernel, .initrd = initrd, .append = append, .dtb = dtb_file,
#ifdef PLEXUS_SOURCE_DIR
        .source_dir = PLEXUS_SOURCE_DIR,
#endif
        .build_dir = build_dir,
    };
    hub_mconfig *cfg = NULL;
    char *err = NULL;
    FILE *elog = NULL;
    int status = EXIT_ERROR;
    if (hub_mconfig_load(file, &mo, &cfg, &err) < 0) {
        fprintf(stderr, "plexus: %s\n", err);
        goto out;
    }
    if (!strcmp(cmd, "check")) {
        printf("ok: %s: %zu RAM block(s), %zu firmware image(s), %zu device(s)\n", file, cfg->n_ram,
               cfg->n_firmware, cfg->n_devices);
        status = 0;
        goto out;
    }
    if (!strcmp(cmd, "run") && !cfg->n_firmware) {
        fprintf(stderr, "plexus: %s: no firmware to boot: add a `firmware:` list or pass --firmware FILE\n", file);
        goto out;
    }

    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = { .sa_handler = on_signal };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);

    if (event_log && !(elog = fopen(event_log, "w"))) {
        fprintf(stderr, "plexus: cannot write the event log %s: %s\n", event_log, strerror(errno));
        goto out;
    }
    hub_machine_opts ho = { .console = !strcmp(cmd, "run"), .verbose = verbose, .run_dir = run_dir,
                            .event_log = elog };
    hub_machine *m = NULL;
    if (hub_machine_new(cfg, &ho, &m, &err) < 0) {
        fprintf(stderr, "plexus: %s\n", err);
        goto out;
    }
    g_machine = m;
    if (g_signal) {             /* arrived while the devices were starting */
        status = 128 + g_signal;
    } else if (!strcmp(cmd, "run")) {
        int gs = 0;
        if (hub_machine_run(m, &gs, &err) < 0) {
            fprintf(stderr, "plexus: %s\n", err);
            status = EXIT_ERROR;
        } else {
            status = gs;
        }
        if (stats)
            hub_machine_print_stats(m, stderr);
    } else if (!strcmp(cmd, "mtree")) {
        mtree_info(mprintf, stdout, true, false);
        fflush(stdout);
        status = 0;
    } else {
        const void *dtb;
        size_t size;
        uint64_t addr;
        hub_machine_dtb(m, &dtb, &size, &addr);
        FILE *f = strcmp(output, "-") ? fopen(output, "wb") : stdout;
        if (!f || fwrite(dtb, 1, size, f) != size || (f != stdout && fclose(f) != 0)) {
            fprintf(stderr, "plexus dtb: cannot write %s: %s\n", output, strerror(errno));
        } else {
            fflush(stdout);
            fprintf(stderr, "plexus: wrote %zu bytes (placed at 0x%" PRIx64 " in guest RAM)\n", size, addr);
            status = 0;
        }
    }
    g_machine = NULL;
    hub_machine_free(m);
out:
    if (elog && fclose(elog) != 0) {
        fprintf(stderr, "plexus: cannot write the event log %s: %s\n", event_log, strerror(errno));
        status = EXIT_ERROR;
    }
    free(err);
    hub_mconfig_free(cfg);
    free(exe_dir);
    return status & 0xff;
}
