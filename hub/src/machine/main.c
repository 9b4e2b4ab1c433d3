/* plexus: the command line of the hub. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <plexus/memory.h>

#include "console.h"
#include "dlog.h"
#include "machine.h"
#include "newdev.h"
#include "plexus/chan.h"
#include "util.h"

#define EXIT_ERROR 1
#define EXIT_USAGE 2

static const char usage_main[] =
    "plexus - run a RISC-V 64 machine whose devices are separate processes\n"
    "\n"
    "Usage:\n"
    "  plexus run MACHINE [options]       boot the machine; exit status = the guest's poweroff code\n"
    "  plexus mtree MACHINE [options]     start the devices, print the memory map, stop\n"
    "  plexus dtb MACHINE -o OUT.dtb      start the devices, write the generated device tree, stop\n"
    "  plexus check MACHINE [options]     only validate the description (no device is started)\n"
    "  plexus new-device NAME [--lang L]  write a device project of your own, ready to build and run\n"
    "  plexus keygen NAME [--dir DIR]     make a CURVE key pair for a tcp:// device or the hub\n"
    "  plexus help [COMMAND]              help on a command\n"
    "  plexus --version\n"
    "\n"
    "MACHINE is a machine description (a YAML file), a folder holding a machine.yaml, or the name of an\n"
    "example.\n";

static const char usage_new_device[] =
    "Usage: plexus new-device NAME [--lang c|cpp-rtl] [--dir DIR]\n"
    "\n"
    "Write a ready out-of-tree device project into DIR (default: ./NAME, which must not exist): the device with\n"
    "one register, a Makefile that builds it against this plexus's SDK with pkg-config, a machine file, a\n"
    "tiny test firmware and a README. Then:  cd NAME && make run\n"
    "\n"
    "Options:\n"
    "  --lang c        the device in C on the device SDK, an ops table like QEMU's MemoryRegionOps (default)\n"
    "  --lang cpp-rtl  the device in Verilog, run by Verilator behind the C++ RTL layer (needs verilator)\n"
    "  --dir DIR       create DIR instead of ./NAME\n"
    "\n"
    "NAME: letters, digits, '-' and '_', starting with a letter.\n";

static const char usage_keygen[] =
    "Usage: plexus keygen NAME [--dir DIR]\n"
    "\n"
    "Make a CURVE key pair (ZeroMQ's encryption and authentication of tcp:// channels): DIR/NAME.key holds the\n"
    "secret key (readable by you only), DIR/NAME.pub the public key (DIR: the current folder). Both are one\n"
    "line of 40 characters (Z85). The public key is printed too.\n"
    "\n"
    "The hub's pair: the machine's `curve: {secret_key_file: hub.key}`; a device on another host starts with\n"
    "--plexus-curve-key=dev.key --plexus-hub-key=hub.pub, and its entry in the machine says\n"
    "`curve_key_file: dev.pub` (or `curve_key: KEY`). Only a device proving that key gets through.\n";

static const char usage_common[] =
    "  --set KEY=VALUE   override a key of the description, e.g. --set cpu.insns_per_ns=0.5,\n"
    "                    --set 'devices.uart0.jail.write=[/tmp/out.txt]', --set ram.0.size=256M.\n"
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
    "Usage: plexus run MACHINE [--firmware FILE] [--kernel FILE [--initrd FILE] [--append ARGS]]\n"
    "                  [--set KEY=VALUE]... [--stats] [-v] [--gdb SPEC [-S]] [--monitor unix:PATH]\n"
    "                  [-d ITEMS [-D FILE]] [--trace FILE]\n"
    "\n"
    "Boot the machine MACHINE describes (a YAML file, or the name of an example): RAM, firmware, the\n"
    "RISC-V CPU with its CLINT, PLIC and poweroff device, and one process per device. The console device\n"
    "(`console:` in the description) gets the terminal: what you type goes to it, what it prints comes\n"
    "out here.\n"
    "\n"
    "Options:\n"
    "%s"
    "  --stats           at exit, print instructions, device round trips, shadow reads, ... to stderr\n"
    "  --event-log FILE  write one line per device access, IRQ change, DMA by message and lockstep\n"
    "                    time grant, each with its virtual time (two runs of a lockstep machine give\n"
    "                    the same file)\n"
    "  --gdb SPEC        a GDB stub on tcp::PORT (127.0.0.1), tcp:HOST:PORT or unix:PATH; connect\n"
    "                    with gdb-multiarch: target remote :PORT\n"
    "  -S                stop before the first instruction until the debugger (or the monitor's\n"
    "                    cont) lets the guest run\n"
    "  --monitor unix:PATH  the monitor on a UNIX socket, one command per line (also Ctrl-A c)\n"
    "  -d ITEMS          log guest diagnostics: guest_errors, unimp, int, exec, mmio (comma-separated;\n"
    "                    -d help tells what each logs)\n"
    "  -D FILE           write the -d log to FILE instead of stderr\n"
    "  --trace FILE      write a timeline of the CPU and every device process (Chrome/Perfetto trace\n"
    "                    JSON: open it in ui.perfetto.dev)\n"
    "\n"
    "Console keys (Ctrl-A, then a key):\n"
    "  Ctrl-A x   quit (exit status 0)       Ctrl-A s   print statistics\n"
    "  Ctrl-A c   monitor prompt and back    Ctrl-A h   help\n"
    "  Ctrl-A Ctrl-A   send Ctrl-A to the guest\n"
    "Ctrl-C stops plexus (exit status 130).\n"
    "\n"
    "Exit status: the guest's poweroff code (sifive,test0: 0x5555 -> 0, 0x3333|code<<16 -> code);\n"
    "1 when plexus itself fails (bad description, a device that does not start, a CPU fault);\n"
    "2 for a bad command line; 128+N after signal N.\n"
    "\n"
    "Examples:\n"
    "  plexus run hello\n"
    "  plexus run u-boot --stats\n"
    "  plexus run linux --kernel Image --initrd initramfs.cpio.gz\n"
    "  plexus run hello --set devices.uart0.props.tx=file:/tmp/uart.txt \\\n"
    "                   --set 'devices.uart0.jail.write=[/tmp/uart.txt]'\n"
    "  plexus run my-machine.yaml --firmware build/fw.elf\n";

static const char usage_mtree[] =
    "Usage: plexus mtree MACHINE [--set KEY=VALUE]...\n"
    "\n"
    "Start the machine's devices (their region sizes are only known after they answer), print the memory\n"
    "region tree and the flat view the CPU sees, then shut everything down.\n"
    "\n"
    "Options:\n%s";

static const char usage_dtb[] =
    "Usage: plexus dtb MACHINE -o OUT.dtb [--set KEY=VALUE]...\n"
    "\n"
    "Start the machine's devices, write the device tree the firmware would get (in a1) to OUT.dtb\n"
    "('-' for stdout), then shut everything down. Read it with:  dtc -I dtb -O dts OUT.dtb\n"
    "\n"
    "Options:\n"
    "  -o, --output FILE the DTB file to write\n%s";

static const char usage_check[] =
    "Usage: plexus check MACHINE [--firmware FILE] [--set KEY=VALUE]...\n"
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

/*
 * Where this plexus is. Built, it runs from BUILD/bin/ and its examples and documents are those of the source
 * tree; installed, from PREFIX/bin/, with the rest of the installation at fixed places relative to it.
 */
typedef struct plexus_home {
    char *exe_dir;
    const char *build_dir;          /* the build tree this binary belongs to, or NULL when installed */
    char *examples, *docs;          /* example machines (one folder each), documents */
    char *pkgconfig;                /* plexus-sdk.pc (or a build tree's plexus-sdk-uninstalled.pc) */
} plexus_home;

static char *join_path(const char *dir, const char *rel)
{
    char *p, *real;

    if (asprintf(&p, "%s/%s", dir, rel) < 0)
        abort();
    real = realpath(p, NULL);
    if (!real)
        return p;                   /* missing: named as composed */
    free(p);
    return real;
}

static void home_init(plexus_home *h)
{
    char exe[PATH_MAX];
    ssize_t l = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

    exe[l > 0 ? l : 0] = 0;
    h->exe_dir = strdup(dirname(exe));
    h->build_dir = NULL;
#ifdef PLEXUS_BUILD_DIR
    char *bin = NULL;
    if (asprintf(&bin, "%s/bin", PLEXUS_BUILD_DIR) >= 0) {
        char *rb = realpath(bin, NULL);
        if (rb && !strcmp(rb, h->exe_dir))
            h->build_dir = PLEXUS_BUILD_DIR;
        free(rb);
        free(bin);
    }
    if (h->build_dir) {
        h->examples = join_path(PLEXUS_SOURCE_DIR, "examples");
        h->docs = join_path(PLEXUS_SOURCE_DIR, "docs");
        h->pkgconfig = join_path(PLEXUS_BUILD_DIR, "lib/pkgconfig");
        return;
    }
#endif
    h->examples = join_path(h->exe_dir, PLEXUS_BIN_TO_EXAMPLES);
    h->docs = join_path(h->exe_dir, PLEXUS_BIN_TO_DOCS);
    h->pkgconfig = join_path(h->exe_dir, PLEXUS_BIN_TO_PKGCONFIG);
}

static void home_free(plexus_home *h)
{
    free(h->exe_dir);
    free(h->examples);
    free(h->docs);
    free(h->pkgconfig);
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The examples in @dir (folders with a machine.yaml), as "hello, rtl, u-boot"; NULL if none. Malloc'd. */
static char *list_examples(const char *dir)
{
    DIR *d = opendir(dir);
    char *names[64], *list = NULL;
    size_t n = 0, len = 0;

    if (!d)
        return NULL;
    for (struct dirent *e; (e = readdir(d)) && n < 64;) {
        char *yaml;
        if (e->d_name[0] == '.' || asprintf(&yaml, "%s/%s/machine.yaml", dir, e->d_name) < 0)
            continue;
        if (access(yaml, R_OK) == 0)
            names[n++] = strdup(e->d_name);
        free(yaml);
    }
    closedir(d);
    qsort(names, n, sizeof(names[0]), compare_names);
    FILE *f = open_memstream(&list, &len);
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "%s%s", i ? ", " : "", names[i]);
        free(names[i]);
    }
    fclose(f);
    if (!n) {
        free(list);
        return NULL;
    }
    return list;
}

static void print_main_usage(FILE *f, const plexus_home *h)
{
    char *names = list_examples(h->examples);

    fputs(usage_main, f);
    if (names) {
        fprintf(f, "\nExamples:   %s (%s)\n", h->examples, names);
        fprintf(f, "Documents:  %s (machine.md: the machine description; sdk.md: writing a device)\n", h->docs);
        fprintf(f, "Start with: plexus run hello\n");
    } else {
        fprintf(f, "\nNo examples next to this plexus (looked in %s).\n", h->examples);
    }
    free(names);
}

static void print_usage(FILE *f, const char *cmd, const plexus_home *h)
{
    if (!cmd)
        print_main_usage(f, h);
    else if (!strcmp(cmd, "run"))
        fprintf(f, usage_run, usage_common);
    else if (!strcmp(cmd, "mtree"))
        fprintf(f, usage_mtree, usage_common);
    else if (!strcmp(cmd, "dtb"))
        fprintf(f, usage_dtb, usage_common);
    else if (!strcmp(cmd, "check"))
        fprintf(f, usage_check, usage_common);
    else if (!strcmp(cmd, "new-device"))
        fputs(usage_new_device, f);
    else if (!strcmp(cmd, "keygen"))
        fputs(usage_keygen, f);
    else
        print_main_usage(f, h);
}

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* MACHINE: a file, a folder with a machine.yaml (an example's, a project of new-device), or a bare name that is
 * neither here: the example of that name. Malloc'd, or NULL after saying why. */
static char *resolve_machine(const char *cmd, const char *arg, const plexus_home *h)
{
    struct stat st;
    char *yaml;

    if (stat(arg, &st) == 0 && S_ISDIR(st.st_mode)) {
        if (asprintf(&yaml, "%s/machine.yaml", arg) < 0)
            abort();
        if (access(yaml, F_OK) == 0)
            return yaml;
        fprintf(stderr, "plexus %s: %s is a folder without a machine.yaml\n", cmd, arg);
        free(yaml);
        return NULL;
    }
    if (strchr(arg, '/') || has_suffix(arg, ".yaml") || has_suffix(arg, ".yml") || access(arg, F_OK) == 0)
        return strdup(arg);
    if (asprintf(&yaml, "%s/%s/machine.yaml", h->examples, arg) < 0)
        abort();
    if (access(yaml, R_OK) == 0)
        return yaml;
    free(yaml);
    char *names = list_examples(h->examples);
    fprintf(stderr, "plexus %s: '%s' is neither a file nor an example; the examples in %s: %s\n", cmd, arg,
            h->examples, names ? names : "none");
    free(names);
    return NULL;
}

/* Write @text to @path with @mode, which must not exist yet. */
static int write_new(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0) {
        fprintf(stderr, "plexus keygen: %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t n = strlen(text);
    bool ok = write(fd, text, n) == (ssize_t)n;
    if (close(fd) < 0 || !ok) {
        fprintf(stderr, "plexus keygen: %s: cannot write\n", path);
        return -1;
    }
    return 0;
}

/* The one NAME a command takes (getopt's non-option argument @arg); -1, said, if it has one already. */
static int take_name(const char *cmd, const char **name, const char *arg)
{
    if (*name) {
        fprintf(stderr, "plexus %s: one NAME only ('%s' and '%s')\n", cmd, *name, arg);
        return -1;
    }
    *name = arg;
    return 0;
}

static int keygen(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "dir", required_argument, NULL, 'd' }, { "help", no_argument, NULL, 'h' }, { 0 },
    };
    const char *name = NULL, *dir = ".";
    int ch;
    optind = 2;
    while ((ch = getopt_long(argc, argv, "-h", longopts, NULL)) != -1) {
        switch (ch) {
        case 1:
            if (take_name("keygen", &name, optarg) < 0)
                return EXIT_USAGE;
            break;
        case 'd': dir = optarg; break;
        case 'h': fputs(usage_keygen, stdout); return 0;
        default:
            fprintf(stderr, "Try 'plexus help keygen'.\n");
            return EXIT_USAGE;
        }
    }
    if (!name || !name[0] || strchr(name, '/')) {
        fprintf(stderr, "plexus keygen: %s\n\n%s", name ? "NAME must not contain '/'" : "missing NAME", usage_keygen);
        return EXIT_USAGE;
    }
    uint8_t pub[PLX_CURVE_KEY], sec[PLX_CURVE_KEY];
    char zp[PLX_CURVE_Z85 + 1], zs[PLX_CURVE_Z85 + 1];
    if (plx_curve_keypair(pub, sec) < 0) {
        fprintf(stderr, "plexus keygen: cannot make a key pair: %s\n", strerror(errno));
        return EXIT_ERROR;
    }
    plx_curve_encode(pub, zp);
    plx_curve_encode(sec, zs);
    strcat(zp, "\n");
    strcat(zs, "\n");
    char *key = hub_xasprintf("%s/%s.key", dir, name), *pubf = hub_xasprintf("%s/%s.pub", dir, name);
    int r = write_new(key, zs, 0600) == 0 && write_new(pubf, zp, 0644) == 0 ? 0 : EXIT_ERROR;
    if (r == 0)
        printf("plexus: wrote %s (secret) and %s; public key %s", key, pubf, zp);
    explicit_bzero(zs, sizeof(zs));
    explicit_bzero(sec, sizeof(sec));
    free(key);
    free(pubf);
    return r;
}

static int new_device(int argc, char **argv, const plexus_home *h)
{
    static const struct option longopts[] = {
        { "lang", required_argument, NULL, 'l' },
        { "dir", required_argument, NULL, 'd' },
        { "help", no_argument, NULL, 'h' },
        { 0 }
    };
    const char *name = NULL, *lang = "c", *dir = NULL;
    int ch;

    optind = 2;
    while ((ch = getopt_long(argc, argv, "-h", longopts, NULL)) != -1) {
        switch (ch) {
        case 1:
            if (take_name("new-device", &name, optarg) < 0)
                return EXIT_USAGE;
            break;
        case 'l': lang = optarg; break;
        case 'd': dir = optarg; break;
        case 'h': fputs(usage_new_device, stdout); return 0;
        default:
            fprintf(stderr, "Try 'plexus help new-device'.\n");
            return EXIT_USAGE;
        }
    }
    if (!name) {
        fprintf(stderr, "plexus new-device: missing NAME\n\n%s", usage_new_device);
        return EXIT_USAGE;
    }
    newdev_opts o = { .name = name, .lang = lang, .dir = dir ? dir : name, .pkg_config_path = h->pkgconfig,
                      .doc_dir = h->docs, .version = PLEXUS_VERSION };
    char *files = NULL;
    Error *err = NULL;
    int r = newdev_write(&o, &files, &err);
    if (r < 0) {
        fprintf(stderr, "plexus new-device: %s\n", err ? error_get_pretty(err) : strerror(-r));
        error_free(err);
        return r == -EINVAL ? EXIT_USAGE : EXIT_ERROR;
    }
    printf("plexus: wrote %s, a device with one register (%s):\n", o.dir,
           !strcmp(lang, "c") ? "C" : "Verilog under Verilator");
    for (char *line = files, *nl; (nl = strchr(line, '\n')); line = nl + 1)
        printf("  %s/%.*s\n", o.dir, (int)(nl - line), line);
    free(files);
    printf("Next:  cd %s && make run       (README.md tells the rest)\n", o.dir);
    if (!newdev_has_firmware())
        printf("note: this plexus was built without the RISC-V toolchain, so firmware.elf is missing: `make "
               "firmware` builds it (Debian package gcc-riscv64-unknown-elf)\n");
    char *pc, *pcu;
    if (asprintf(&pc, "%s/plexus-sdk.pc", h->pkgconfig) < 0 ||
        asprintf(&pcu, "%s/plexus-sdk-uninstalled.pc", h->pkgconfig) < 0)
        abort();
    if (access(pc, R_OK) != 0 && access(pcu, R_OK) != 0)
        printf("warning: %s holds no plexus-sdk.pc: set PLEXUS_PKG_CONFIG_PATH in %s/Makefile to the "
               "pkg-config folder of an installed plexus\n", h->pkgconfig, o.dir);
    free(pc);
    free(pcu);
    return 0;
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

static int plexus_main(int argc, char **argv, const plexus_home *h)
{
    if (argc < 2) {
        print_usage(stderr, NULL, h);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        print_usage(stdout, NULL, h);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("plexus %s (device SDK %s)\n", PLEXUS_VERSION, PLEXUS_SDK_SONAME);
        return 0;
    }
    if (!strcmp(cmd, "help")) {
        print_usage(stdout, argc > 2 ? argv[2] : NULL, h);
        return 0;
    }
    if (!strcmp(cmd, "new-device"))
        return new_device(argc, argv, h);
    if (!strcmp(cmd, "keygen"))
        return keygen(argc, argv);
    if (strcmp(cmd, "run") && strcmp(cmd, "mtree") && strcmp(cmd, "dtb") && strcmp(cmd, "check")) {
        fprintf(stderr, "plexus: unknown command '%s'\n\n", cmd);
        print_usage(stderr, NULL, h);
        return EXIT_USAGE;
    }

    enum { OPT_SET = 256, OPT_FIRMWARE, OPT_KERNEL, OPT_INITRD, OPT_APPEND, OPT_DTB, OPT_STATS, OPT_RUN_DIR,
           OPT_EVENT_LOG, OPT_GDB, OPT_MONITOR, OPT_TRACE };
    static const struct option longopts[] = {
        { "set", required_argument, NULL, OPT_SET },
        { "firmware", required_argument, NULL, OPT_FIRMWARE },
        { "kernel", required_argument, NULL, OPT_KERNEL },
        { "initrd", required_argument, NULL, OPT_INITRD },
        { "append", required_argument, NULL, OPT_APPEND },
        { "dtb", required_argument, NULL, OPT_DTB },
        { "stats", no_argument, NULL, OPT_STATS },
        { "output", required_argument, NULL, 'o' },
        { "verbose", no_argument, NULL, 'v' },
        { "run-dir", required_argument, NULL, OPT_RUN_DIR },
        { "event-log", required_argument, NULL, OPT_EVENT_LOG },
        { "gdb", required_argument, NULL, OPT_GDB },
        { "monitor", required_argument, NULL, OPT_MONITOR },
        { "trace", required_argument, NULL, OPT_TRACE },
        { "help", no_argument, NULL, 'h' },
        { 0 }
    };
    const char *sets[argc];
    size_t n_sets = 0;
    const char *kernel = NULL, *initrd = NULL, *append = NULL, *dtb_file = NULL;
    const char *firmware = NULL, *output = NULL, *file = NULL, *run_dir = NULL, *event_log = NULL;
    const char *gdb = NULL, *monitor = NULL, *dlog_file = NULL, *trace = NULL;
    bool stats = false, verbose = false, gdb_wait = false;
    unsigned dlog = 0;
    optind = 2;
    int ch;
    while ((ch = getopt_long(argc, argv, "-o:vhSd:D:", longopts, NULL)) != -1) {
        switch (ch) {
        case 1:
            if (file) {
                fprintf(stderr, "plexus %s: one machine description only ('%s' and '%s')\n", cmd, file, optarg);
                return EXIT_USAGE;
            }
            file = optarg;
            break;
        case OPT_SET: sets[n_sets++] = optarg; break;
        case OPT_FIRMWARE: firmware = optarg; break;
        case OPT_KERNEL: kernel = optarg; break;
        case OPT_INITRD: initrd = optarg; break;
        case OPT_APPEND: append = optarg; break;
        case OPT_DTB: dtb_file = optarg; break;
        case OPT_STATS: stats = true; break;
        case 'o': output = optarg; break;
        case 'v': verbose = true; break;
        case OPT_RUN_DIR: run_dir = optarg; break;
        case OPT_EVENT_LOG: event_log = optarg; break;
        case OPT_GDB: gdb = optarg; break;
        case OPT_MONITOR: monitor = optarg; break;
        case OPT_TRACE: trace = optarg; break;
        case 'S': gdb_wait = true; break;
        case 'D': dlog_file = optarg; break;
        case 'd': {
            Error *derr = NULL;
            if (!strcmp(optarg, "help")) {
                fputs(hub_dlog_help, stdout);
                return 0;
            }
            if (hub_dlog_parse(optarg, &dlog, &derr) < 0) {
                fprintf(stderr, "plexus %s: %s\n", cmd, error_get_pretty(derr));
                error_free(derr);
                return EXIT_USAGE;
            }
            break;
        }
        case 'h': print_usage(stdout, cmd, h); return 0;
        default:
            fprintf(stderr, "Try 'plexus help %s'.\n", cmd);
            return EXIT_USAGE;
        }
    }
    if (!file) {
        fprintf(stderr, "plexus %s: missing MACHINE\n\n", cmd);
        print_usage(stderr, cmd, h);
        return EXIT_USAGE;
    }
    if (!strcmp(cmd, "dtb") && !output) {
        fprintf(stderr, "plexus dtb: missing -o OUT.dtb\n");
        return EXIT_USAGE;
    }
    if (strcmp(cmd, "run") && (gdb || gdb_wait || monitor || dlog || dlog_file || trace)) {
        fprintf(stderr, "plexus %s: --gdb, -S, --monitor, -d, -D and --trace are options of plexus run\n", cmd);
        return EXIT_USAGE;
    }
    if (gdb_wait && !gdb && !monitor) {
        fprintf(stderr, "plexus run: -S waits for a debugger or a monitor: add --gdb SPEC or --monitor unix:PATH\n");
        return EXIT_USAGE;
    }
    if (dlog_file && !dlog) {
        fprintf(stderr, "plexus run: -D FILE is where the -d log goes: add -d ITEMS\n");
        return EXIT_USAGE;
    }
    char *machine = resolve_machine(cmd, file, h);
    if (!machine)
        return EXIT_ERROR;
    file = machine;

    /*
     * Device programs sit next to this binary. A relative firmware file of a machine in the source tree's
     * examples is also looked up in the same folder of the build tree (where the build puts the images) or,
     * installed, of the installed examples.
     */
    hub_mconfig_opts mo = {
        .sets = sets, .n_sets = n_sets, .firmware = firmware, .exe_dir = h->exe_dir,
        .kernel = kernel, .initrd = initrd, .append = append, .dtb = dtb_file,
#ifdef PLEXUS_SOURCE_DIR
        .source_dir = h->build_dir ? PLEXUS_SOURCE_DIR : PLEXUS_SOURCE_DIR "/examples",
        .build_dir = h->build_dir ? h->build_dir : h->examples,
#endif
    };
    hub_mconfig *cfg = NULL;
    Error *err = NULL;
    FILE *elog = NULL, *dlog_out = NULL;
    int status = EXIT_ERROR;
    if (hub_mconfig_load(file, &mo, &cfg, &err) < 0) {
        fprintf(stderr, "plexus: %s\n", error_get_pretty(err));
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
    if (dlog_file && !(dlog_out = fopen(dlog_file, "w"))) {
        fprintf(stderr, "plexus: cannot write the -D log %s: %s\n", dlog_file, strerror(errno));
        goto out;
    }
    hub_machine_opts ho = { .console = !strcmp(cmd, "run"), .verbose = verbose, .run_dir = run_dir,
                            .event_log = elog, .gdb = gdb, .gdb_wait = gdb_wait, .monitor = monitor,
                            .dlog = dlog, .dlog_out = dlog_out, .trace = trace };
    hub_machine *m = NULL;
    if (hub_machine_new(cfg, &ho, &m, &err) < 0) {
        fprintf(stderr, "plexus: %s\n", error_get_pretty(err));
        goto out;
    }
    g_machine = m;
    if (g_signal) {             /* arrived while the devices were starting */
        status = 128 + g_signal;
    } else if (!strcmp(cmd, "run")) {
        int gs = 0;
        if (hub_machine_run(m, &gs, &err) < 0) {
            fprintf(stderr, "plexus: %s\n", error_get_pretty(err));
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
    if (dlog_out && fclose(dlog_out) != 0) {
        fprintf(stderr, "plexus: cannot write the -D log %s: %s\n", dlog_file, strerror(errno));
        status = EXIT_ERROR;
    }
    if (elog && fclose(elog) != 0) {
        fprintf(stderr, "plexus: cannot write the event log %s: %s\n", event_log, strerror(errno));
        status = EXIT_ERROR;
    }
    error_free(err);
    hub_mconfig_free(cfg);
    free(machine);
    return status & 0xff;
}

int main(int argc, char **argv)
{
    plexus_home h;

    home_init(&h);
    int status = plexus_main(argc, argv, &h);
    home_free(&h);
    return status;
}
