/*
 * The machine: a description loaded from YAML (machine.yaml), the firmware loaders, the device tree, and the
 * assembled machine that runs (RAM, CPU, CLINT, PLIC, poweroff, device processes, console).
 *
 * Errors: functions return 0 or a negative errno and set *@errp (memory.h's Error: error_get_pretty, error_free)
 * to a one-line message for the caller to print. Configuration errors read "FILE:LINE: key 'PATH': what was
 * expected".
 *
 * Lifetime: hub_mconfig_load() allocates a description; hub_mconfig_free() releases it (accepts NULL).
 */
#ifndef PLEXUS_HUB_MACHINE_H
#define PLEXUS_HUB_MACHINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dev/devmgr.h"
#include "ytree.h"

typedef enum { HUB_FW_AUTO, HUB_FW_ELF, HUB_FW_RAW } hub_fw_format;
typedef enum { HUB_TIME_VIRTUAL, HUB_TIME_WALLCLOCK } hub_time_mode;
typedef enum { HUB_IDLE_SLEEP, HUB_IDLE_JUMP } hub_idle_mode;   /* cpu.idle: virtual time while the hart waits */
/* /chosen/rng-seed: 32 fresh random bytes per run (QEMU's virt), none, or the bytes the description gives */
typedef enum { HUB_RNG_DEFAULT, HUB_RNG_RANDOM, HUB_RNG_NONE, HUB_RNG_FIXED } hub_rng_mode;
#define HUB_RNG_SEED_RANDOM_LEN 32
#define HUB_RNG_SEED_MAX 64

typedef struct hub_mc_ram {
    char *name;
    uint64_t base, size;
} hub_mc_ram;

typedef struct hub_mc_firmware {
    char *path;             /* resolved, readable */
    hub_fw_format format;   /* never AUTO after loading the description */
    bool has_address;
    uint64_t address;       /* raw images: load address */
} hub_mc_firmware;

/* A device-tree property: a string list, a list of 32-bit cells, or empty (a flag). */
typedef struct hub_dt_prop {
    char *name;
    enum { HUB_DT_EMPTY, HUB_DT_STRINGS, HUB_DT_CELLS } kind;
    char **strings;
    size_t n_strings;
    uint32_t *cells;
    size_t n_cells;
} hub_dt_prop;

/* What a RISC-V Linux Image's header says (all little endian in the file). */
typedef struct hub_image_info {
    uint64_t text_offset;   /* load offset from a 2 MiB aligned base */
    uint64_t image_size;    /* memory the kernel occupies from its load address, .bss included */
    uint64_t flags;         /* bit 0: big endian (refused) */
    uint32_t version;       /* major << 16 | minor */
    uint64_t file_size;
} hub_image_info;

/* Read and check @path's Image header: the magic, little endian, text_offset 4 KiB aligned, image_size at
 * least the file's size. Returns 0, or -ENOEXEC (or -errno) with *@errp saying what is wrong. */
int hub_image_probe(const char *path, hub_image_info *info, Error **errp);

/*
 * A device: what the device layer is given (its own hub_device_config: every string and array in it is owned
 * by the description; the console device has `console` set), and its device-tree node.
 */
typedef struct hub_mc_device {
    hub_device_config dev;
    char **dt_compatible;   /* `dt.compatible`; none: no node */
    size_t n_dt_compatible;
    char *dt_node;          /* `dt.node`; NULL: the node name the device declares, else its name */
    hub_dt_prop *dt_props;
    size_t n_dt_props;
    unsigned index;         /* position in `devices:` */
    int log_level;          /* `log.level`: its log records shown from this syslog level up; -1: the default */
    bool log_mmio;          /* `log.mmio`: every guest access to its registers in the -d log */
} hub_mc_device;

typedef struct hub_mconfig {
    char *path;             /* the YAML file as given */
    char *dir;              /* its folder */
    char *name;
    hub_mc_ram *ram;
    size_t n_ram;
    hub_mc_firmware *firmware;
    size_t n_firmware;
    bool has_reset_pc;
    uint64_t reset_pc;
    double insns_per_ns;
    hub_time_mode time_mode;
    hub_idle_mode idle_mode;
    uint64_t timebase_hz;
    uint64_t quantum_ns;    /* lockstep devices get time in these quanta; 0 = the device layer's default */
    bool clint, plic, poweroff;         /* present */
    uint64_t clint_base, plic_base, poweroff_base;
    unsigned plic_sources;              /* riscv,ndev */
    int console;                        /* index into devices, or -1 */
    char *bootargs;                     /* /chosen/bootargs (`bootargs:`, --append); NULL or "": none */
    /* the next boot stage, as QEMU's -kernel/-initrd/-dtb give it */
    uint8_t curve_secret[32];           /* the hub's CURVE secret key (`curve.secret_key_file`), if has_ */
    bool has_curve_secret;
    char *kernel;                       /* resolved path, or NULL */
    bool kernel_elf;                    /* an ELF; else a RISC-V Linux Image described by kernel_image */
    hub_image_info kernel_image;
    bool has_kernel_address;
    uint64_t kernel_address;            /* `kernel_address:` (Image only) */
    char *initrd;                       /* resolved path, or NULL (only with a kernel) */
    uint64_t initrd_size;
    char *dtb_file;                     /* `dtb:`: this tree instead of the generated one, or NULL */
    void *dtb_blob;                     /* its contents, checked */
    size_t dtb_blob_size;
    hub_dt_prop *chosen;                /* `chosen:` extra /chosen properties */
    size_t n_chosen;
    hub_rng_mode rng_seed;              /* `rng_seed:` */
    uint8_t rng_seed_bytes[HUB_RNG_SEED_MAX];   /* HUB_RNG_FIXED */
    size_t rng_seed_len;
    hub_mc_device *devices;
    size_t n_devices;
    ynode *tree;                        /* the document after overrides, for locations */
} hub_mconfig;

typedef struct hub_mconfig_opts {
    const char *const *sets;        /* "key=value" overrides, applied in order */
    size_t n_sets;
    const char *firmware;           /* replaces `firmware:` with this one file (format by content) */
    const char *kernel;             /* --kernel, --initrd, --dtb: set `kernel:`, `initrd:`, `dtb:` to this file */
    const char *initrd;
    const char *dtb;
    const char *append;             /* --append: sets `bootargs:` */
    const char *exe_dir;            /* folder of the plexus binary: device programs are looked up there */
    const char *source_dir;         /* source tree and build tree: firmware next to an in-tree YAML file is */
    const char *build_dir;          /* also looked up in the same folder of the build tree */
} hub_mconfig_opts;

int hub_mconfig_load(const char *path, const hub_mconfig_opts *opts, hub_mconfig **out, Error **errp);
void hub_mconfig_free(hub_mconfig *c);

/*
 * "FILE:LINE: key 'PATH'" for a key path like "devices.1.irqs.0" (indexes as numbers), walking as far as the
 * document goes. Malloc'd.
 */
char *hub_mconfig_where(const hub_mconfig *c, const char *path);

/* Parse "128M", "0x8000000", "4096", "1G", "64KiB". Returns 0 or -EINVAL. */
int hub_parse_size(const char *s, uint64_t *out);

/* Firmware loading: @write copies bytes into guest memory (0 or -errno, e.g. not RAM). */
typedef int hub_load_write_fn(void *opaque, uint64_t addr, const void *buf, size_t len);
typedef struct hub_load_range { uint64_t start, end; } hub_load_range;     /* [start, end) */
typedef struct hub_load_result {
    uint64_t entry;
    bool has_entry;
    hub_load_range *ranges;     /* malloc'd; what was written */
    size_t n_ranges;
} hub_load_result;

int hub_load_elf(const char *path, hub_load_write_fn *write, void *opaque, hub_load_result *res, Error **errp);
int hub_load_raw(const char *path, uint64_t addr, hub_load_write_fn *write, void *opaque, hub_load_result *res,
                 Error **errp);
void hub_load_result_clear(hub_load_result *res);


/* The device tree: what the DTB generator needs beyond the description (known after the handshakes). */
typedef struct hub_dt_device_info {
    uint64_t base;          /* the first region's base and size (reg) */
    uint64_t size;
    const char *node;       /* the node name the device declared (hub_device_dt_node), or NULL */
} hub_dt_device_info;

/* The hart as the generated tree describes it (cpu@0): what the CPU implements and the largest satp mode. */
#define HUB_DT_RISCV_ISA "rv64imafdc_zicsr_zifencei"
#define HUB_DT_MMU_TYPE "riscv,sv57"

/* What /chosen gets for the next boot stage (known once the kernel and the initrd are placed). */
typedef struct hub_dt_boot {
    bool has_initrd;
    uint64_t initrd_start, initrd_end;      /* linux,initrd-start/end: [start, end) */
    const uint8_t *rng_seed;                /* rng-seed, or NULL */
    size_t rng_seed_len;
} hub_dt_boot;

/*
 * Build the DTB for @c: the generated tree (@devs[i] describes c->devices[i]), or the `dtb:` file, with
 * /chosen given bootargs, the initrd, rng-seed and the `chosen:` properties. @boot may be NULL (nothing to
 * add). The size depends on @c and on whether @boot has each item, not on addresses. *@dtb is malloc'd.
 */
int hub_dtb_build(const hub_mconfig *c, const hub_dt_device_info *devs, const hub_dt_boot *boot, void **dtb,
                  size_t *size, Error **errp);
/* QEMU's rule: the DTB sits at the end of the first RAM block (at most 3 GiB above its base), 2 MiB aligned
 * (4 KiB aligned in a block too small for that). */
uint64_t hub_dtb_address(const hub_mconfig *c, size_t dtb_size);

/* ---- the running machine (needs the memory, CPU and device parts) ---- */
#include <stdio.h>

typedef struct hub_machine hub_machine;

typedef struct hub_machine_opts {
    bool console;           /* forward the terminal's keyboard to the console device (over its channel) */
    bool verbose;           /* show every device log record, not only warnings and errors */
    const char *run_dir;    /* where device endpoints and the attach socket live; NULL: a private temporary dir */
    FILE *event_log;        /* --event-log: device accesses, IRQs, DMA and grants with their virtual time */
    const char *gdb;        /* --gdb: where the GDB stub listens (tcp::PORT, tcp:HOST:PORT, unix:PATH), or NULL */
    bool gdb_wait;          /* -S: stop before the first instruction (for the debugger or the monitor's cont) */
    const char *monitor;    /* --monitor unix:PATH, or NULL */
    unsigned dlog;          /* -d: HUB_DLOG_* items */
    FILE *dlog_out;         /* -D: where they go (NULL: stderr) */
    const char *trace;      /* --trace: the timeline file (Chrome/Perfetto JSON), or NULL */
} hub_machine_opts;

/*
 * Build the machine @c describes: RAM, firmware, CPU, CLINT, PLIC, poweroff, the device processes (started
 * and handshaken), the overlap checks that need device region sizes, and the DTB in RAM. @c must outlive the
 * machine. On failure nothing is left running.
 */
int hub_machine_new(const hub_mconfig *c, const hub_machine_opts *o, hub_machine **out, Error **errp);

/* Run the CPU until the guest powers off, the user quits (Ctrl-A x) or a signal arrives. *@status: the exit
 * status (the guest's poweroff code; 128+N after signal N). Returns 0, or -errno with *@err on a fatal error. */
int hub_machine_run(hub_machine *m, int *status, Error **errp);

/* Ask a running machine to stop with @status (async-signal-safe). */
void hub_machine_request_stop(hub_machine *m, int status);

/* The DTB as placed in RAM. */
void hub_machine_dtb(const hub_machine *m, const void **dtb, size_t *size, uint64_t *addr);
uint64_t hub_machine_reset_pc(const hub_machine *m);

/* Instructions, device round trips, shadow reads, ... as "name value" lines. */
void hub_machine_print_stats(const hub_machine *m, FILE *f);

/* Shut devices down, free everything. Accepts NULL. */
void hub_machine_free(hub_machine *m);

#endif
