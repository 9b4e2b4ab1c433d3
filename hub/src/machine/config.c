/*
 * Loading machine.yaml: libyaml builds a tree with lines (ytree), --set overrides edit it, libcyaml loads the
 * result against the schema below, and the semantic checks turn it into a hub_mconfig.
 */
#define _GNU_SOURCE
#include "machine.h"

#include <ctype.h>
#include <cyaml/cyaml.h>
#include <errno.h>
#include <fcntl.h>
#include <libfdt.h>
#include <seccomp.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- defaults: QEMU's riscv virt machine ---- */
#define DEF_CLINT_BASE      0x2000000ULL
#define DEF_PLIC_BASE       0xc000000ULL
#define DEF_POWEROFF_BASE   0x100000ULL
#define DEF_PLIC_SOURCES    96u
#define DEF_TIMEBASE_HZ     10000000ULL
#define DEF_INSNS_PER_NS    0.1
#define CLINT_SIZE          0x10000ULL
#define PLIC_SIZE           0x4000000ULL
#define POWEROFF_SIZE       0x1000ULL

/* ---- the schema (raw shapes as libcyaml loads them) ---- */
typedef enum { RAW_FW_AUTO, RAW_FW_ELF, RAW_FW_RAW } raw_fw_format;
typedef enum { RAW_TIME_VIRTUAL, RAW_TIME_WALLCLOCK } raw_time;
typedef enum { RAW_IDLE_SLEEP, RAW_IDLE_JUMP } raw_idle;
typedef enum { RAW_RESTART_NEVER, RAW_RESTART_ON_FAILURE, RAW_RESTART_ALWAYS } raw_restart_policy;
typedef enum { RAW_TRANSPORT_AUTO, RAW_TRANSPORT_RING, RAW_TRANSPORT_ZEROMQ } raw_transport;
typedef enum { RAW_SYNC_ASYNC, RAW_SYNC_LOCKSTEP } raw_sync;
typedef enum { RAW_DMA_MAP, RAW_DMA_MESSAGE } raw_dma;

struct raw_ram { char *name; char *base; char *size; };
struct raw_fw { char *file; raw_fw_format *format; char *address; };
struct raw_cpu { char *isa; double *insns_per_ns; raw_time *time; raw_idle *idle; char *timebase_hz;
                 char *quantum_ns; };
struct raw_builtin { char *base; bool *enabled; unsigned *sources; };
struct raw_region { char *name; char *base; };
struct raw_dt { char *node; };
struct raw_sandbox { char *policy; char **allow; unsigned allow_count; bool *enabled; char **namespaces;
                     unsigned namespaces_count; };
struct raw_restart { raw_restart_policy *policy; unsigned *max_restarts; unsigned *backoff_ms; };
struct raw_ring { unsigned *slots; unsigned *spin_us; };
struct raw_dev {
    char *name;
    char *program;
    char *plugin;
    char **args;
    unsigned args_count;
    char *base;
    struct raw_region *regions;
    unsigned regions_count;
    unsigned *irq;
    unsigned *irqs;
    unsigned irqs_count;
    unsigned *timeout_ms;
    char *endpoint;
    bool *attach;
    unsigned *attach_timeout_ms;
    char **ram;
    unsigned ram_count;
    struct raw_dt *dt;
    struct raw_sandbox *sandbox;
    struct raw_restart *restart;
    raw_transport *transport;
    struct raw_ring *ring;
    raw_sync *sync;
    raw_dma *dma;
};
struct raw_machine {
    char *name;
    struct raw_ram *ram;
    unsigned ram_count;
    struct raw_fw *firmware;
    unsigned firmware_count;
    char *reset_pc;
    struct raw_cpu *cpu;
    struct raw_builtin *clint;
    struct raw_builtin *plic;
    struct raw_builtin *poweroff;
    char *console;
    char *bootargs;
    char *kernel;
    char *kernel_address;
    char *initrd;
    char *dtb;
    char *rng_seed;
    struct raw_dev *devices;
    unsigned devices_count;
};

#define OPT CYAML_FLAG_OPTIONAL
#define STR_PTR(key, flags, st, m) CYAML_FIELD_STRING_PTR(key, flags, st, m, 0, CYAML_UNLIMITED)

static const cyaml_schema_value_t string_entry = { CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 0, CYAML_UNLIMITED) };
static const cyaml_schema_value_t uint_entry = { CYAML_VALUE_UINT(CYAML_FLAG_DEFAULT, unsigned) };

static const cyaml_schema_field_t ram_fields[] = {
    STR_PTR("name", OPT, struct raw_ram, name),
    STR_PTR("base", CYAML_FLAG_POINTER, struct raw_ram, base),
    STR_PTR("size", CYAML_FLAG_POINTER, struct raw_ram, size),
    CYAML_FIELD_END
};
static const cyaml_schema_value_t ram_entry = { CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct raw_ram, ram_fields) };

static const cyaml_strval_t fw_format_strings[] = {
    { "auto", RAW_FW_AUTO }, { "elf", RAW_FW_ELF }, { "raw", RAW_FW_RAW },
};
static const cyaml_schema_field_t fw_fields[] = {
    STR_PTR("file", CYAML_FLAG_POINTER, struct raw_fw, file),
    CYAML_FIELD_ENUM_PTR("format", OPT, struct raw_fw, format, fw_format_strings, CYAML_ARRAY_LEN(fw_format_strings)),
    STR_PTR("address", OPT, struct raw_fw, address),
    CYAML_FIELD_END
};
static const cyaml_schema_value_t fw_entry = { CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct raw_fw, fw_fields) };

static const cyaml_strval_t time_strings[] = { { "virtual", RAW_TIME_VIRTUAL }, { "wallclock", RAW_TIME_WALLCLOCK } };
static const cyaml_strval_t idle_strings[] = { { "sleep", RAW_IDLE_SLEEP }, { "jump", RAW_IDLE_JUMP } };
static const cyaml_schema_field_t cpu_fields[] = {
    STR_PTR("isa", OPT, struct raw_cpu, isa),
    CYAML_FIELD_FLOAT_PTR("insns_per_ns", OPT, struct raw_cpu, insns_per_ns),
    CYAML_FIELD_ENUM_PTR("time", OPT, struct raw_cpu, time, time_strings, CYAML_ARRAY_LEN(time_strings)),
    CYAML_FIELD_ENUM_PTR("idle", OPT, struct raw_cpu, idle, idle_strings, CYAML_ARRAY_LEN(idle_strings)),
    STR_PTR("timebase_hz", OPT, struct raw_cpu, timebase_hz),
    STR_PTR("quantum_ns", OPT, struct raw_cpu, quantum_ns),
    CYAML_FIELD_END
};

static const cyaml_schema_field_t builtin_fields[] = {
    STR_PTR("base", OPT, struct raw_builtin, base),
    CYAML_FIELD_BOOL_PTR("enabled", OPT, struct raw_builtin, enabled),
    CYAML_FIELD_END
};
static const cyaml_schema_field_t plic_fields[] = {
    STR_PTR("base", OPT, struct raw_builtin, base),
    CYAML_FIELD_BOOL_PTR("enabled", OPT, struct raw_builtin, enabled),
    CYAML_FIELD_UINT_PTR("sources", OPT, struct raw_builtin, sources),
    CYAML_FIELD_END
};

static const cyaml_schema_field_t region_fields[] = {
    STR_PTR("name", CYAML_FLAG_POINTER, struct raw_region, name),
    STR_PTR("base", CYAML_FLAG_POINTER, struct raw_region, base),
    CYAML_FIELD_END
};
static const cyaml_schema_value_t region_entry = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct raw_region, region_fields)
};

static const cyaml_schema_field_t dt_fields[] = {
    CYAML_FIELD_IGNORE("compatible", CYAML_FLAG_DEFAULT),    /* a string or a list: read from the tree */
    STR_PTR("node", OPT, struct raw_dt, node),
    CYAML_FIELD_IGNORE("properties", OPT),                  /* free-form: read from the tree */
    CYAML_FIELD_END
};

static const cyaml_schema_field_t sandbox_fields[] = {
    CYAML_FIELD_BOOL_PTR("enabled", OPT, struct raw_sandbox, enabled),
    STR_PTR("policy", OPT, struct raw_sandbox, policy),
    CYAML_FIELD_SEQUENCE("allow", CYAML_FLAG_POINTER | OPT, struct raw_sandbox, allow, &string_entry, 0,
                         CYAML_UNLIMITED),
    CYAML_FIELD_SEQUENCE("namespaces", CYAML_FLAG_POINTER | OPT, struct raw_sandbox, namespaces, &string_entry, 0,
                         CYAML_UNLIMITED),
    CYAML_FIELD_END
};
static const cyaml_strval_t restart_strings[] = {
    { "never", RAW_RESTART_NEVER }, { "on-failure", RAW_RESTART_ON_FAILURE }, { "always", RAW_RESTART_ALWAYS },
};
static const cyaml_schema_field_t restart_fields[] = {
    CYAML_FIELD_ENUM_PTR("policy", OPT, struct raw_restart, policy, restart_strings,
                         CYAML_ARRAY_LEN(restart_strings)),
    CYAML_FIELD_UINT_PTR("max_restarts", OPT, struct raw_restart, max_restarts),
    CYAML_FIELD_UINT_PTR("backoff_ms", OPT, struct raw_restart, backoff_ms),
    CYAML_FIELD_END
};

static const cyaml_strval_t transport_strings[] = {
    { "auto", RAW_TRANSPORT_AUTO }, { "ring", RAW_TRANSPORT_RING }, { "zeromq", RAW_TRANSPORT_ZEROMQ },
};
static const cyaml_strval_t sync_strings[] = { { "async", RAW_SYNC_ASYNC }, { "lockstep", RAW_SYNC_LOCKSTEP } };
static const cyaml_strval_t dma_strings[] = { { "map", RAW_DMA_MAP }, { "message", RAW_DMA_MESSAGE } };
static const cyaml_schema_field_t ring_fields[] = {
    CYAML_FIELD_UINT_PTR("slots", OPT, struct raw_ring, slots),
    CYAML_FIELD_UINT_PTR("spin_us", OPT, struct raw_ring, spin_us),
    CYAML_FIELD_END
};

static const cyaml_schema_field_t dev_fields[] = {
    STR_PTR("name", CYAML_FLAG_POINTER, struct raw_dev, name),
    STR_PTR("program", OPT, struct raw_dev, program),
    STR_PTR("plugin", OPT, struct raw_dev, plugin),
    CYAML_FIELD_SEQUENCE("args", CYAML_FLAG_POINTER | OPT, struct raw_dev, args, &string_entry, 0, CYAML_UNLIMITED),
    STR_PTR("base", OPT, struct raw_dev, base),
    CYAML_FIELD_SEQUENCE("regions", CYAML_FLAG_POINTER | OPT, struct raw_dev, regions, &region_entry, 0,
                         CYAML_UNLIMITED),
    CYAML_FIELD_UINT_PTR("irq", OPT, struct raw_dev, irq),
    CYAML_FIELD_SEQUENCE("irqs", CYAML_FLAG_POINTER | OPT, struct raw_dev, irqs, &uint_entry, 0, CYAML_UNLIMITED),
    CYAML_FIELD_IGNORE("props", OPT),                       /* free-form: read from the tree */
    CYAML_FIELD_UINT_PTR("timeout_ms", OPT, struct raw_dev, timeout_ms),
    STR_PTR("endpoint", OPT, struct raw_dev, endpoint),
    CYAML_FIELD_BOOL_PTR("attach", OPT, struct raw_dev, attach),
    CYAML_FIELD_UINT_PTR("attach_timeout_ms", OPT, struct raw_dev, attach_timeout_ms),
    CYAML_FIELD_SEQUENCE("ram", CYAML_FLAG_POINTER | OPT, struct raw_dev, ram, &string_entry, 0, CYAML_UNLIMITED),
    CYAML_FIELD_MAPPING_PTR("dt", OPT, struct raw_dev, dt, dt_fields),
    CYAML_FIELD_MAPPING_PTR("sandbox", OPT, struct raw_dev, sandbox, sandbox_fields),
    CYAML_FIELD_MAPPING_PTR("restart", OPT, struct raw_dev, restart, restart_fields),
    CYAML_FIELD_ENUM_PTR("transport", OPT, struct raw_dev, transport, transport_strings,
                         CYAML_ARRAY_LEN(transport_strings)),
    CYAML_FIELD_MAPPING_PTR("ring", OPT, struct raw_dev, ring, ring_fields),
    CYAML_FIELD_ENUM_PTR("sync", OPT, struct raw_dev, sync, sync_strings, CYAML_ARRAY_LEN(sync_strings)),
    CYAML_FIELD_ENUM_PTR("dma", OPT, struct raw_dev, dma, dma_strings, CYAML_ARRAY_LEN(dma_strings)),
    CYAML_FIELD_END
};
static const cyaml_schema_value_t dev_entry = { CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct raw_dev, dev_fields) };

static const cyaml_schema_field_t machine_fields[] = {
    STR_PTR("name", OPT, struct raw_machine, name),
    CYAML_FIELD_SEQUENCE("ram", CYAML_FLAG_POINTER, struct raw_machine, ram, &ram_entry, 1, CYAML_UNLIMITED),
    CYAML_FIELD_SEQUENCE("firmware", CYAML_FLAG_POINTER | OPT, struct raw_machine, firmware, &fw_entry, 0,
                         CYAML_UNLIMITED),
    STR_PTR("reset_pc", OPT, struct raw_machine, reset_pc),
    CYAML_FIELD_MAPPING_PTR("cpu", OPT, struct raw_machine, cpu, cpu_fields),
    CYAML_FIELD_MAPPING_PTR("clint", OPT, struct raw_machine, clint, builtin_fields),
    CYAML_FIELD_MAPPING_PTR("plic", OPT, struct raw_machine, plic, plic_fields),
    CYAML_FIELD_MAPPING_PTR("poweroff", OPT, struct raw_machine, poweroff, builtin_fields),
    STR_PTR("console", OPT, struct raw_machine, console),
    STR_PTR("bootargs", OPT, struct raw_machine, bootargs),
    STR_PTR("kernel", OPT, struct raw_machine, kernel),
    STR_PTR("kernel_address", OPT, struct raw_machine, kernel_address),
    STR_PTR("initrd", OPT, struct raw_machine, initrd),
    STR_PTR("dtb", OPT, struct raw_machine, dtb),
    CYAML_FIELD_IGNORE("chosen", OPT),                      /* free-form: read from the tree */
    STR_PTR("rng_seed", OPT, struct raw_machine, rng_seed),
    CYAML_FIELD_SEQUENCE("devices", CYAML_FLAG_POINTER | OPT, struct raw_machine, devices, &dev_entry, 0,
                         CYAML_UNLIMITED),
    CYAML_FIELD_END
};
static const cyaml_schema_value_t machine_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, struct raw_machine, machine_fields)
};

/* ---- key paths and locations ---- */
typedef struct kpath {
    struct { const char *key; long index; } c[16];     /* key NULL: a sequence index */
    size_t n;
} kpath;

static void kpath_push_key(kpath *p, const char *key)
{
    if (p->n < 16)
        p->c[p->n++].key = key, p->c[p->n - 1].index = -1;
}

static void kpath_push_index(kpath *p, long index)
{
    if (p->n < 16)
        p->c[p->n].key = NULL, p->c[p->n++].index = index;
}

static void kpath_format(const kpath *p, char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = 0;
    for (size_t i = 0; i < p->n && o < len; i++) {
        if (p->c[i].key)
            o += (size_t)snprintf(buf + o, len - o, "%s%s", o ? "." : "", p->c[i].key);
        else
            o += (size_t)snprintf(buf + o, len - o, "[%ld]", p->c[i].index);
    }
}

/* Walk @p through the tree; returns the line (and origin) of the deepest node reached. */
static unsigned kpath_line(const ynode *root, const kpath *p, const char **origin)
{
    const ynode *n = root;
    unsigned line = root ? root->line : 0;
    *origin = root ? root->origin : NULL;
    for (size_t i = 0; i < p->n && n; i++) {
        if (p->c[i].key) {
            const ypair *pr = ytree_map_pair(n, p->c[i].key);
            if (!pr)
                break;
            line = pr->key_line ? pr->key_line : pr->value->line;
            *origin = pr->value->origin;
            n = pr->value;
        } else {
            if (n->kind != YNODE_SEQ || p->c[i].index < 0 || (size_t)p->c[i].index >= n->n_items)
                break;
            n = n->items[p->c[i].index];
            line = n->line;
            *origin = n->origin;
        }
    }
    return line;
}

static char *where(const hub_mconfig *c, const ynode *tree, const kpath *p)
{
    char kp[512];
    const char *origin;
    kpath_format(p, kp, sizeof(kp));
    unsigned line = kpath_line(tree, p, &origin);
    char *s;
    int r;
    if (origin)
        r = asprintf(&s, "%s (%s): key '%s'", c->path, origin, kp);
    else
        r = asprintf(&s, "%s:%u: key '%s'", c->path, line, kp);
    if (r < 0)
        abort();
    return s;
}

static void kpath_parse(kpath *p, char *path)
{
    p->n = 0;
    char *save = NULL;
    for (char *t = strtok_r(path, ".", &save); t; t = strtok_r(NULL, ".", &save)) {
        char *end;
        long v = strtol(t, &end, 10);
        if (*t && !*end)
            kpath_push_index(p, v);
        else
            kpath_push_key(p, t);
    }
}

char *hub_mconfig_where(const hub_mconfig *c, const char *path)
{
    char *copy = strdup(path);
    kpath p;
    kpath_parse(&p, copy);
    char *s = where(c, c->tree, &p);
    free(copy);
    return s;
}

/* Set *err to "WHERE: message" and return -EINVAL. */
static int __attribute__((format(printf, 4, 5)))
cfg_err(const hub_mconfig *c, char **err, const char *path, const char *fmt, ...)
{
    char *w = hub_mconfig_where(c, path);
    char *msg;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        abort();
    va_end(ap);
    if (asprintf(err, "%s: %s", w, msg) < 0)
        abort();
    free(w);
    free(msg);
    return -EINVAL;
}

/* ---- libcyaml errors ---- */
typedef struct logbuf { char *text; size_t len; } logbuf;

static void cyaml_log_capture(cyaml_log_t level, void *ctx, const char *fmt, va_list args)
{
    logbuf *b = ctx;
    if (level < CYAML_LOG_ERROR)
        return;
    char *line;
    if (vasprintf(&line, fmt, args) < 0)
        return;
    size_t l = strlen(line);
    char *n = realloc(b->text, b->len + l + 1);
    if (n) {
        memcpy(n + b->len, line, l + 1);
        b->text = n;
        b->len += l;
    }
    free(line);
}

/* The schema value at @p (indexes step into sequence entries). */
static const cyaml_schema_value_t *schema_at(const kpath *p)
{
    const cyaml_schema_value_t *v = &machine_schema;
    for (size_t i = 0; i < p->n && v; i++) {
        if (p->c[i].key) {
            if (v->type != CYAML_MAPPING)
                return NULL;
            const cyaml_schema_field_t *f = v->mapping.fields;
            while (f->key && strcmp(f->key, p->c[i].key))
                f++;
            v = f->key ? &f->value : NULL;
        } else {
            if (v->type != CYAML_SEQUENCE && v->type != CYAML_SEQUENCE_FIXED)
                return NULL;
            v = v->sequence.entry;
        }
    }
    return v;
}

static char *schema_keys(const cyaml_schema_value_t *v)
{
    char *s = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&s, &len);
    if (v && v->type == CYAML_MAPPING)
        for (const cyaml_schema_field_t *fl = v->mapping.fields; fl->key; fl++)
            fprintf(f, "%s%s", fl == v->mapping.fields ? "" : ", ", fl->key);
    fclose(f);
    return s;
}

static char *schema_enum_values(const cyaml_schema_value_t *v)
{
    char *s = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&s, &len);
    if (v && v->type == CYAML_ENUM)
        for (uint32_t i = 0; i < v->enumeration.count; i++)
            fprintf(f, "%s%s", i ? ", " : "", v->enumeration.strings[i].str);
    fclose(f);
    return s;
}

static const char *kind_name(const char *cyaml_word)
{
    if (!strncmp(cyaml_word, "MAPPING", 7))
        return "a mapping (key: value lines)";
    if (!strncmp(cyaml_word, "SEQUENCE", 8))
        return "a list";
    if (!strncmp(cyaml_word, "SCALAR", 6))
        return "a plain value";
    if (!strncmp(cyaml_word, "INT", 3) || !strncmp(cyaml_word, "UINT", 4))
        return "a number";
    if (!strncmp(cyaml_word, "STRING", 6) || !strncmp(cyaml_word, "ENUM", 4) || !strncmp(cyaml_word, "FLOAT", 5) ||
        !strncmp(cyaml_word, "BOOL", 4))
        return "a plain value";
    return cyaml_word;
}

/* Turn what libcyaml logged into "FILE:LINE: key 'x': expected ...". */
static char *translate_cyaml_error(const hub_mconfig *c, const ynode *tree, const char *log, cyaml_err_t e)
{
    /* The message is the first "Load: " line; then a backtrace, innermost first. */
    char msg[512] = "";
    struct { int is_index; char key[128]; long index; int is_map; } bt[16];
    size_t nbt = 0;
    char *copy = strdup(log ? log : "");
    char *save = NULL;
    for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        while (*l == ' ')
            l++;
        if (!strncmp(l, "Load: Backtrace:", 16))
            continue;
        if (!strncmp(l, "Load: ", 6)) {
            if (!msg[0])
                snprintf(msg, sizeof(msg), "%s", l + 6);
            continue;
        }
        if (nbt >= 16)
            continue;
        if (sscanf(l, "in mapping field '%127[^']'", bt[nbt].key) == 1) {
            bt[nbt].is_index = 0, bt[nbt].is_map = 0;
            nbt++;
        } else if (sscanf(l, "in sequence entry '%ld'", &bt[nbt].index) == 1) {
            bt[nbt].is_index = 1, bt[nbt].is_map = 0;
            nbt++;
        } else if (!strncmp(l, "in mapping", 10)) {
            bt[nbt].is_index = 0, bt[nbt].is_map = 1;
            nbt++;
        }
    }
    free(copy);

    size_t first = 0;   /* innermost entry used */
    bool missing = !strncmp(msg, "Missing required mapping field: ", 32);
    if (missing && nbt && !bt[0].is_index && !bt[0].is_map)
        first = 1;      /* libcyaml names the last field it saw, not the mapping that misses one */
    kpath p = { .n = 0 };
    for (size_t i = nbt; i-- > first;) {
        if (bt[i].is_map)
            continue;
        if (bt[i].is_index)
            kpath_push_index(&p, bt[i].index - 1);  /* libcyaml counts entries from 1 */
        else
            kpath_push_key(&p, bt[i].key);
    }

    char what[1024];
    const char *unknown = NULL;
    const char *arg;
    if (missing) {
        arg = msg + 32;
        snprintf(what, sizeof(what), "missing required key '%s'", arg);
    } else if (!strncmp(msg, "Unexpected key: ", 16)) {
        arg = msg + 16;
        char *keys = schema_keys(schema_at(&p));
        unknown = arg;
        snprintf(what, sizeof(what), "unknown key '%s'; expected one of: %s", arg, keys);
        free(keys);
    } else if (strstr(msg, "Invalid ENUM value: ") ||
               (strstr(msg, "value: ") && schema_at(&p) && schema_at(&p)->type == CYAML_ENUM)) {
        arg = strstr(msg, ": ") + 2;
        if (*arg == '\'')
            arg++;
        char *q = strrchr(arg, '\'');
        if (q && q[1] == 0)
            *q = 0;
        char *vals = schema_enum_values(schema_at(&p));
        snprintf(what, sizeof(what), "expected one of: %s; got '%s'", vals, arg);
        free(vals);
    } else if (strstr(msg, "Invalid UINT value") || strstr(msg, "Invalid uint64_t value") ||
               strstr(msg, "Invalid INT value")) {
        arg = strstr(msg, ": ") + 2;
        snprintf(what, sizeof(what), "expected an unsigned integer, got %s", arg);
    } else if (strstr(msg, "Invalid FLOAT value")) {
        arg = strstr(msg, ": ") + 2;
        snprintf(what, sizeof(what), "expected a number, got '%s'", arg);
    } else if (strstr(msg, "Invalid BOOL value") || strstr(msg, "boolean")) {
        arg = strstr(msg, ": ") ? strstr(msg, ": ") + 2 : "";
        snprintf(what, sizeof(what), "expected true or false, got %s", arg);
    } else if (!strncmp(msg, "Expecting ", 10)) {
        char want[64] = "", got[64] = "";
        if (sscanf(msg, "Expecting %63s got event: %63s", want, got) == 2 ||
            sscanf(msg, "Expecting %63[^,], got event: %63s", want, got) == 2)
            snprintf(what, sizeof(what), "expected %s, got %s", kind_name(want), kind_name(got));
        else
            snprintf(what, sizeof(what), "%s", msg);
    } else if (msg[0]) {
        snprintf(what, sizeof(what), "%s", msg);
    } else {
        snprintf(what, sizeof(what), "%s", cyaml_strerror(e));
    }

    kpath lp = p;
    if (unknown)
        kpath_push_key(&lp, unknown);     /* point at the unknown key itself */
    else if (missing)
        kpath_push_key(&lp, msg + 32);
    char *w = where(c, tree, &lp);
    char *out;
    if (asprintf(&out, "%s: %s", w, what) < 0)
        abort();
    free(w);
    return out;
}

/* ---- values ---- */
int hub_parse_size(const char *s, uint64_t *out)
{
    if (!s || !*s)
        return -EINVAL;
    char *end;
    errno = 0;
    while (isspace((unsigned char)*s))
        s++;
    if (*s == '-' || *s == '+')
        return -EINVAL;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s)
        return -EINVAL;
    while (*end == ' ')
        end++;
    unsigned shift = 0;
    switch (toupper((unsigned char)*end)) {
    case 'K': shift = 10; end++; break;
    case 'M': shift = 20; end++; break;
    case 'G': shift = 30; end++; break;
    case 'T': shift = 40; end++; break;
    case 0: break;
    default: return -EINVAL;
    }
    if (shift) {
        if (!strcasecmp(end, "iB") || !strcasecmp(end, "B"))
            end += strlen(end);
        if (*end)
            return -EINVAL;
        if (v > (UINT64_MAX >> shift))
            return -ERANGE;
        v <<= shift;
    }
    if (*end)
        return -EINVAL;
    *out = v;
    return 0;
}

static int parse_addr(const hub_mconfig *c, char **err, const char *path, const char *s, uint64_t *out)
{
    int r = hub_parse_size(s, out);
    if (r == -ERANGE)
        return cfg_err(c, err, path, "'%s' does not fit in 64 bits", s);
    if (r < 0)
        return cfg_err(c, err, path, "expected an address or size such as 0x80000000, 4096 or 128M; got '%s'", s);
    return 0;
}

/* ---- file lookup ---- */
static bool is_file(const char *p, int mode)
{
    struct stat st;
    return p && stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, mode) == 0;
}

static char *join(const char *dir, const char *name)
{
    char *s;
    if (asprintf(&s, "%s/%s", dir, name) < 0)
        abort();
    return s;
}

static char *absolute(const char *p)
{
    char *r = realpath(p, NULL);
    return r ? r : strdup(p);
}

/* A YAML file inside the source tree also finds its relative files in the same folder of the build tree. */
static char *build_mirror_dir(const hub_mconfig *c, const hub_mconfig_opts *o)
{
    if (!o || !o->source_dir || !o->build_dir)
        return NULL;
    char *dir = realpath(c->dir, NULL);
    char *src = realpath(o->source_dir, NULL);
    char *res = NULL;
    if (dir && src) {
        size_t l = strlen(src);
        if (!strncmp(dir, src, l) && (dir[l] == '/' || dir[l] == 0)) {
            if (asprintf(&res, "%s%s", o->build_dir, dir + l) < 0)
                abort();
        }
    }
    free(dir);
    free(src);
    return res;
}

/* Relative firmware paths: the YAML folder, its mirror in the build tree, then each folder of $PLEXUS_PATH. */
static char *find_data_file(const hub_mconfig *c, const hub_mconfig_opts *o, const char *name, char **looked)
{
    if (name[0] == '/') {
        *looked = strdup(name);
        return is_file(name, R_OK) ? strdup(name) : NULL;
    }
    char *cands[16];
    size_t n = 0;
    cands[n++] = join(c->dir, name);
    char *m = build_mirror_dir(c, o);
    if (m) {
        cands[n++] = join(m, name);
        free(m);
    }
    const char *env = getenv("PLEXUS_PATH");
    if (env) {
        char *e = strdup(env), *save = NULL;
        for (char *t = strtok_r(e, ":", &save); t && n < 16; t = strtok_r(NULL, ":", &save))
            cands[n++] = join(t, name);
        free(e);
    }
    char *found = NULL;
    size_t len = 0;
    FILE *f = open_memstream(looked, &len);
    for (size_t i = 0; i < n; i++) {
        if (!found && is_file(cands[i], R_OK))
            found = absolute(cands[i]);
        fprintf(f, "%s%s", i ? ", " : "", cands[i]);
        free(cands[i]);
    }
    fclose(f);
    return found;
}

/* Device programs: a path with '/' is relative to the YAML folder; a bare name is looked up next to the plexus
 * binary, then in the YAML folder, then in $PATH. Plugins: next to the binary, in ../lib (a build tree), in the
 * installed plugin folder (lib/plexus/devices), the YAML folder. */
static char *find_program(const hub_mconfig *c, const hub_mconfig_opts *o, const char *name, bool plugin,
                          char **looked)
{
    char *cands[64];
    size_t n = 0;
    if (name[0] == '/') {
        cands[n++] = strdup(name);
    } else if (strchr(name, '/')) {
        cands[n++] = join(c->dir, name);
    } else {
        if (o && o->exe_dir) {
            cands[n++] = join(o->exe_dir, name);
            if (plugin) {
                char *lib = join(o->exe_dir, "../lib");
                cands[n++] = join(lib, name);
                free(lib);
#ifdef PLEXUS_BIN_TO_PLUGINS
                lib = join(o->exe_dir, PLEXUS_BIN_TO_PLUGINS);      /* the installed plugin folder */
                cands[n++] = join(lib, name);
                free(lib);
#endif
            }
        }
        cands[n++] = join(c->dir, name);
        const char *path = plugin ? NULL : getenv("PATH");
        if (path) {
            char *e = strdup(path), *save = NULL;
            for (char *t = strtok_r(e, ":", &save); t && n < 64; t = strtok_r(NULL, ":", &save))
                cands[n++] = join(t, name);
            free(e);
        }
    }
    char *found = NULL;
    size_t len = 0;
    FILE *f = open_memstream(looked, &len);
    for (size_t i = 0; i < n; i++) {
        if (!found && is_file(cands[i], plugin ? R_OK : X_OK))
            found = absolute(cands[i]);
        if (i < 4)
            fprintf(f, "%s%s", i ? ", " : "", cands[i]);
        else if (i == 4)
            fputs(", $PATH", f);
        free(cands[i]);
    }
    fclose(f);
    return found;
}

static hub_fw_format sniff_format(const char *path)
{
    unsigned char m[4] = { 0 };
    FILE *f = fopen(path, "rb");
    if (!f)
        return HUB_FW_RAW;
    size_t n = fread(m, 1, 4, f);
    fclose(f);
    return n == 4 && m[0] == 0x7f && m[1] == 'E' && m[2] == 'L' && m[3] == 'F' ? HUB_FW_ELF : HUB_FW_RAW;
}

/* ---- semantic checks ---- */
typedef struct named_range { char *what; char *path; uint64_t base, size; } named_range;

static bool valid_name(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-')
            return false;
    return true;
}

static int check_range_overlaps(const hub_mconfig *c, named_range *r, size_t n, char **err)
{
    for (size_t i = 0; i < n; i++) {
        if (r[i].size && r[i].base + r[i].size - 1 < r[i].base)
            return cfg_err(c, err, r[i].path, "%s [0x%" PRIx64 ", +0x%" PRIx64 ") wraps past the end of the "
                           "address space", r[i].what, r[i].base, r[i].size);
        for (size_t j = 0; j < i; j++) {
            if (!r[i].size || !r[j].size)
                continue;
            if (r[i].base < r[j].base + r[j].size && r[j].base < r[i].base + r[i].size)
                return cfg_err(c, err, r[i].path,
                               "%s [0x%" PRIx64 "-0x%" PRIx64 "] overlaps %s [0x%" PRIx64 "-0x%" PRIx64 "]",
                               r[i].what, r[i].base, r[i].base + r[i].size - 1, r[j].what, r[j].base,
                               r[j].base + r[j].size - 1);
        }
    }
    return 0;
}

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *s;
    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        abort();
    va_end(ap);
    return s;
}

static int parse_dt_value(const hub_mconfig *c, char **err, const char *path, const ynode *v, hub_dt_prop *p)
{
    if (v->kind == YNODE_MAP)
        return cfg_err(c, err, path, "expected a number, a string, true, or a list of numbers or strings");
    const ynode *const *items = (const ynode *const *)&v;
    size_t n = 1;
    if (v->kind == YNODE_SEQ) {
        items = (const ynode *const *)v->items;
        n = v->n_items;
    } else if (!v->quoted && !strcmp(v->scalar, "true")) {
        p->kind = HUB_DT_EMPTY;
        return 0;
    }
    bool all_num = n > 0;
    for (size_t i = 0; i < n; i++) {
        if (items[i]->kind != YNODE_SCALAR)
            return cfg_err(c, err, path, "expected a list of plain values, got a nested list or mapping");
        uint64_t x;
        if (items[i]->quoted || hub_parse_size(items[i]->scalar, &x) < 0)
            all_num = false;
    }
    if (all_num) {
        p->kind = HUB_DT_CELLS;
        p->cells = calloc(2 * n, sizeof(uint32_t));
        for (size_t i = 0; i < n; i++) {
            uint64_t x;
            hub_parse_size(items[i]->scalar, &x);
            if (x > UINT32_MAX) {      /* a 64-bit number becomes two cells, high first */
                p->cells[p->n_cells++] = (uint32_t)(x >> 32);
            }
            p->cells[p->n_cells++] = (uint32_t)x;
        }
        return 0;
    }
    p->kind = HUB_DT_STRINGS;
    p->strings = calloc(n ? n : 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        p->strings[p->n_strings++] = strdup(items[i]->scalar);
    return 0;
}

#define RESTART_DEFAULT_MAX 3
#define RESTART_BACKOFF_MAX_MS 60000

/* `sandbox:` and `restart:` become the device layer's sandbox and supervision settings. */
static int convert_isolation(hub_mconfig *c, const struct raw_dev *rd, const ynode *dnode, size_t i,
                             hub_mc_device *d, char **err)
{
    char path[96];
#define Q(...) (snprintf(path, sizeof(path), __VA_ARGS__), path)
    if (rd->sandbox) {
        const struct raw_sandbox *sb = rd->sandbox;
        const ynode *en = ytree_map_get(ytree_map_get(dnode, "sandbox"), "enabled");
        if (en && (en->kind != YNODE_SCALAR || (strcmp(en->scalar, "true") && strcmp(en->scalar, "false"))))
            return cfg_err(c, err, Q("devices.%zu.sandbox.enabled", i), "expected true or false; got '%s'",
                           en->kind == YNODE_SCALAR ? en->scalar : "a list or mapping");
        d->sandbox = sb->enabled ? *sb->enabled : true;     /* the mapping alone turns it on */
        const char *pol = sb->policy ? sb->policy : "default";
        if (strcmp(pol, "default") && strcmp(pol, "log"))
            return cfg_err(c, err, Q("devices.%zu.sandbox.policy", i), "expected one of: default, log; got '%s'",
                           pol);
        d->sandbox_policy = strdup(pol);
        d->sandbox_allow = calloc(sb->allow_count + 1, sizeof(char *));
        for (unsigned j = 0; j < sb->allow_count; j++) {
            if (seccomp_syscall_resolve_name(sb->allow[j]) == __NR_SCMP_ERROR)
                return cfg_err(c, err, Q("devices.%zu.sandbox.allow.%u", i, j),
                               "expected a system call name of this architecture (e.g. openat); got '%s'",
                               sb->allow[j]);
            d->sandbox_allow[d->n_sandbox_allow++] = strdup(sb->allow[j]);
        }
        static const struct { const char *name; unsigned bit; } ns[] = {
            { "net", HUB_MC_NS_NET }, { "mount", HUB_MC_NS_MOUNT }, { "pid", HUB_MC_NS_PID },
        };
        for (unsigned j = 0; j < sb->namespaces_count; j++) {
            unsigned bit = 0;
            for (size_t k = 0; k < sizeof(ns) / sizeof(ns[0]); k++)
                if (!strcmp(sb->namespaces[j], ns[k].name))
                    bit = ns[k].bit;
            if (!bit)
                return cfg_err(c, err, Q("devices.%zu.sandbox.namespaces.%u", i, j),
                               "expected one of: net, mount, pid; got '%s'", sb->namespaces[j]);
            if (d->sandbox)
                d->namespaces |= bit;
        }
        if (d->namespaces && (rd->attach && *rd->attach))
            return cfg_err(c, err, Q("devices.%zu.sandbox.namespaces", i),
                           "namespaces apply to devices plexus starts, not to attached ones");
        if (d->namespaces && rd->endpoint && strcmp(rd->endpoint, "ipc"))
            return cfg_err(c, err, Q("devices.%zu.sandbox.namespaces", i),
                           "namespaces need the ipc channel (a tcp endpoint is not reachable from a new network "
                           "namespace)");
    }
    if (rd->restart) {
        const struct raw_restart *rs = rd->restart;
        raw_restart_policy pol = rs->policy ? *rs->policy : RAW_RESTART_ON_FAILURE;
        if (pol == RAW_RESTART_NEVER) {
            if (rs->max_restarts && *rs->max_restarts)
                return cfg_err(c, err, Q("devices.%zu.restart.max_restarts", i),
                               "policy 'never' restarts nothing; remove max_restarts or use policy on-failure");
            d->max_restarts = 0;
        } else {
            d->max_restarts = rs->max_restarts ? *rs->max_restarts : RESTART_DEFAULT_MAX;
            if (!d->max_restarts)
                return cfg_err(c, err, Q("devices.%zu.restart.max_restarts", i),
                               "expected at least 1 with policy %s (or policy: never)",
                               pol == RAW_RESTART_ALWAYS ? "always" : "on-failure");
        }
        if (rs->backoff_ms && *rs->backoff_ms > RESTART_BACKOFF_MAX_MS)
            return cfg_err(c, err, Q("devices.%zu.restart.backoff_ms", i), "expected 0..%u ms; got %u",
                           RESTART_BACKOFF_MAX_MS, *rs->backoff_ms);
        d->restart_backoff_ms = rs->backoff_ms ? *rs->backoff_ms : 0;
    }
#undef Q
    return 0;
}

static int convert_device(hub_mconfig *c, const hub_mconfig_opts *o, struct raw_dev *rd, const ynode *dnode,
                          size_t i, hub_mc_device *d, char **err)
{
    char path[64];
#define P(k) (snprintf(path, sizeof(path), "devices.%zu.%s", i, (k)), path)
    int r;
    d->index = (unsigned)i;
    d->name = strdup(rd->name);
    if (!valid_name(rd->name))
        return cfg_err(c, err, P("name"), "expected a name of letters, digits, '_' and '-'; got '%s'", rd->name);
    for (size_t j = 0; j < i; j++)
        if (!strcmp(c->devices[j].name, rd->name))
            return cfg_err(c, err, P("name"), "duplicate device name '%s' (also devices[%zu])", rd->name, j);
    bool attach = rd->attach && *rd->attach;
    d->attach = attach;
    if (rd->program && rd->plugin)
        return cfg_err(c, err, P("plugin"), "give either 'program' or 'plugin', not both");
    if (!rd->program && !rd->plugin && !attach)
        return cfg_err(c, err, P("name"), "device '%s' needs 'program' (an executable) or 'plugin' (a .so), "
                       "or 'attach: true'", rd->name);
    if (rd->program || rd->plugin) {
        const char *nm = rd->program ? rd->program : rd->plugin;
        char *looked = NULL;
        char *found = find_program(c, o, nm, rd->plugin != NULL, &looked);
        if (!found && !attach) {
            r = cfg_err(c, err, P(rd->program ? "program" : "plugin"), "%s '%s' not found (looked in %s)",
                        rd->program ? "program" : "plugin", nm, looked);
            free(looked);
            return r;
        }
        free(looked);
        if (!found)
            found = strdup(nm);
        if (rd->program)
            d->program = found;
        else
            d->plugin = found;
    }
    d->args = calloc(rd->args_count + 1, sizeof(char *));
    for (unsigned j = 0; j < rd->args_count; j++)
        d->args[j] = strdup(rd->args[j]);

    if (rd->base && rd->regions)
        return cfg_err(c, err, P("regions"), "give either 'base' (the device's only region) or 'regions', not both");
    if (rd->base) {
        d->regions = calloc(1, sizeof(*d->regions));
        d->n_regions = 1;
        if ((r = parse_addr(c, err, P("base"), rd->base, &d->regions[0].base)) < 0)
            return r;
    } else if (rd->regions_count) {
        d->regions = calloc(rd->regions_count, sizeof(*d->regions));
        for (unsigned j = 0; j < rd->regions_count; j++) {
            char rp[96];
            snprintf(rp, sizeof(rp), "devices.%zu.regions.%u.base", i, j);
            d->regions[j].region = strdup(rd->regions[j].name);
            d->n_regions++;
            if ((r = parse_addr(c, err, rp, rd->regions[j].base, &d->regions[j].base)) < 0)
                return r;
            for (unsigned k = 0; k < j; k++)
                if (!strcmp(rd->regions[k].name, rd->regions[j].name)) {
                    snprintf(rp, sizeof(rp), "devices.%zu.regions.%u.name", i, j);
                    return cfg_err(c, err, rp, "region '%s' is placed twice", rd->regions[j].name);
                }
        }
    }

    if (rd->irq && rd->irqs)
        return cfg_err(c, err, P("irqs"), "give either 'irq' (line 0) or 'irqs' (lines 0, 1, ...), not both");
    unsigned nirq = rd->irq ? 1 : rd->irqs_count;
    d->irqs = calloc(nirq ? nirq : 1, sizeof(*d->irqs));
    for (unsigned j = 0; j < nirq; j++) {
        unsigned v = rd->irq ? *rd->irq : rd->irqs[j];
        char ip[64];
        if (rd->irq)
            snprintf(ip, sizeof(ip), "devices.%zu.irq", i);
        else
            snprintf(ip, sizeof(ip), "devices.%zu.irqs.%u", i, j);
        if (!c->plic)
            return cfg_err(c, err, ip, "device interrupts need the PLIC, which is disabled");
        if (v < 1 || v > c->plic_sources)
            return cfg_err(c, err, ip, "expected a PLIC source number 1..%u (0 is reserved); got %u",
                           c->plic_sources, v);
        for (size_t k = 0; k < i; k++)
            for (size_t l = 0; l < c->devices[k].n_irqs; l++)
                if (c->devices[k].irqs[l].irq == v)
                    return cfg_err(c, err, ip, "irq %u is already used by device '%s'", v, c->devices[k].name);
        for (unsigned l = 0; l < j; l++)
            if (d->irqs[l].irq == v)
                return cfg_err(c, err, ip, "irq %u is given twice", v);
        d->irqs[j] = (hub_mc_irq){ .line = j, .irq = v };
        d->n_irqs++;
    }

    const ynode *props = ytree_map_get(dnode, "props");
    if (props) {
        if (props->kind != YNODE_MAP)
            return cfg_err(c, err, P("props"), "expected a mapping of names to plain values");
        d->props = calloc(props->n_pairs ? props->n_pairs : 1, sizeof(*d->props));
        for (size_t j = 0; j < props->n_pairs; j++) {
            const ynode *v = props->pairs[j].value;
            char pp[160];
            snprintf(pp, sizeof(pp), "devices.%zu.props.%s", i, props->pairs[j].key);
            if (v->kind != YNODE_SCALAR)
                return cfg_err(c, err, pp, "expected a plain value (string or number), got a %s",
                               v->kind == YNODE_SEQ ? "list" : "mapping");
            d->props[j].key = strdup(props->pairs[j].key);
            d->props[j].value = strdup(v->scalar);
            d->n_props++;
        }
    }

    d->timeout_ms = rd->timeout_ms ? *rd->timeout_ms : 0;
    d->attach_timeout_ms = rd->attach_timeout_ms ? *rd->attach_timeout_ms : 0;
    if (rd->endpoint && strcmp(rd->endpoint, "ipc")) {
        if (strncmp(rd->endpoint, "tcp://", 6) || !strchr(rd->endpoint + 6, ':'))
            return cfg_err(c, err, P("endpoint"), "expected 'ipc' or 'tcp://HOST:PORT'; got '%s'", rd->endpoint);
        d->endpoint = strdup(rd->endpoint);
    }
    d->lockstep = rd->sync && *rd->sync == RAW_SYNC_LOCKSTEP;
    d->dma_by_message = rd->dma && *rd->dma == RAW_DMA_MESSAGE;
    d->transport = rd->transport ? (int)*rd->transport : RAW_TRANSPORT_AUTO;
    if (d->transport == RAW_TRANSPORT_RING && d->endpoint)
        return cfg_err(c, err, P("transport"), "the ring is for devices on this host; endpoint '%s' is ZeroMQ "
                       "(leave transport out or say zeromq)", d->endpoint);
    if (rd->ring) {
        if (rd->ring->slots) {
            unsigned v = *rd->ring->slots;
            if (v < 64 || v > (1u << 20) || (v & (v - 1)))
                return cfg_err(c, err, P("ring.slots"), "expected a power of two from 64 to 1048576; got %u", v);
            d->ring_slots = v;
        }
        if (rd->ring->spin_us) {
            if (*rd->ring->spin_us > 1000000)
                return cfg_err(c, err, P("ring.spin_us"), "expected 0..1000000 us; got %u", *rd->ring->spin_us);
            d->ring_spin_us = *rd->ring->spin_us ? *rd->ring->spin_us : 1;
        }
    }

    if ((r = convert_isolation(c, rd, dnode, i, d, err)) < 0)
        return r;

    if (rd->ram) {
        d->grants_given = true;
        d->ram_grants = calloc(rd->ram_count + 1, sizeof(char *));
        for (unsigned j = 0; j < rd->ram_count; j++) {
            bool ok = false;
            for (size_t k = 0; k < c->n_ram; k++)
                ok |= !strcmp(c->ram[k].name, rd->ram[j]);
            if (!ok) {
                char gp[64];
                snprintf(gp, sizeof(gp), "devices.%zu.ram.%u", i, j);
                return cfg_err(c, err, gp, "no RAM block named '%s'", rd->ram[j]);
            }
            d->ram_grants[d->n_ram_grants++] = strdup(rd->ram[j]);
        }
    }

    if (rd->dt) {
        const ynode *dt = ytree_map_get(dnode, "dt");
        const ynode *comp = ytree_map_get(dt, "compatible");
        size_t n = comp && comp->kind == YNODE_SEQ ? comp->n_items : 1;
        if (!comp || comp->kind == YNODE_MAP || n == 0)
            return cfg_err(c, err, P("dt.compatible"), "expected a compatible string or a list of them");
        d->dt_compatible = calloc(n, sizeof(char *));
        for (size_t j = 0; j < n; j++) {
            const ynode *s = comp->kind == YNODE_SEQ ? comp->items[j] : comp;
            if (s->kind != YNODE_SCALAR || !*s->scalar)
                return cfg_err(c, err, P("dt.compatible"), "expected a compatible string or a list of them");
            d->dt_compatible[d->n_dt_compatible++] = strdup(s->scalar);
        }
        if (rd->dt->node) {
            for (const char *s = rd->dt->node; *s; s++)
                if (!isalnum((unsigned char)*s) && !strchr(",._+-", *s))
                    return cfg_err(c, err, P("dt.node"), "expected a node name of letters, digits and ,._+-; got "
                                   "'%s'", rd->dt->node);
            d->dt_node = strdup(rd->dt->node);
        } else {
            d->dt_node = strdup(strstr(d->dt_compatible[0], "16550") || strstr(d->dt_compatible[0], "uart")
                                ? "serial" : d->name);
        }
        const ynode *props = ytree_map_get(dt, "properties");
        if (props) {
            if (props->kind != YNODE_MAP)
                return cfg_err(c, err, P("dt.properties"), "expected a mapping of property names to values");
            d->dt_props = calloc(props->n_pairs ? props->n_pairs : 1, sizeof(*d->dt_props));
            for (size_t j = 0; j < props->n_pairs; j++) {
                const char *pn = props->pairs[j].key;
                char pp[160];
                snprintf(pp, sizeof(pp), "devices.%zu.dt.properties.%s", i, pn);
                static const char *const generated[] = { "reg", "interrupts", "interrupt-parent", "compatible",
                                                         "interrupts-extended" };
                for (size_t k = 0; k < sizeof(generated) / sizeof(generated[0]); k++)
                    if (!strcmp(pn, generated[k]))
                        return cfg_err(c, err, pp, "'%s' is generated from the description; remove it", pn);
                hub_dt_prop *p = &d->dt_props[d->n_dt_props++];
                p->name = strdup(pn);
                if ((r = parse_dt_value(c, err, pp, props->pairs[j].value, p)) < 0)
                    return r;
            }
        }
    }
#undef P
    return 0;
}

/* A kernel, initrd or device-tree file named by @key: found like firmware, else a located error. */
static int boot_file(hub_mconfig *c, const hub_mconfig_opts *o, const char *key, const char *what,
                     const char *name, char **found, char **err)
{
    char *looked = NULL;
    *found = find_data_file(c, o, name, &looked);
    int r = 0;
    if (!*found)
        r = cfg_err(c, err, key, "%s file '%s' not found or not readable (looked in %s)", what, name, looked);
    free(looked);
    return r;
}

static char *read_file(const char *path, size_t *len, char **err);

#define DTB_FILE_MAX (16u << 20)
#define DT_PROP_NAME_MAX 31

static bool valid_prop_name(const char *s)
{
    size_t n = strlen(s);
    if (!n || n > DT_PROP_NAME_MAX)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr(",._+?#-", *s))
            return false;
    return true;
}

/* `chosen:`: extra /chosen properties, with the values `dt.properties` takes. */
static int convert_chosen(hub_mconfig *c, char **err)
{
    const ynode *ch = ytree_map_get(c->tree, "chosen");
    if (!ch)
        return 0;
    if (ch->kind != YNODE_MAP)
        return cfg_err(c, err, "chosen", "expected a mapping of /chosen property names to values");
    static const struct { const char *name, *instead; } owned[] = {
        { "bootargs", "bootargs: (or --append)" },
        { "linux,initrd-start", "initrd: (or --initrd)" },
        { "linux,initrd-end", "initrd: (or --initrd)" },
        { "rng-seed", "rng_seed:" },
    };
    c->chosen = calloc(ch->n_pairs ? ch->n_pairs : 1, sizeof(*c->chosen));
    for (size_t i = 0; i < ch->n_pairs; i++) {
        const char *pn = ch->pairs[i].key;
        char pp[160];
        snprintf(pp, sizeof(pp), "chosen.%s", pn);
        if (!valid_prop_name(pn))
            return cfg_err(c, err, pp, "expected a property name of at most %d letters, digits and ,._+?#-; "
                           "got '%s'", DT_PROP_NAME_MAX, pn);
        for (size_t k = 0; k < sizeof(owned) / sizeof(owned[0]); k++)
            if (!strcmp(pn, owned[k].name))
                return cfg_err(c, err, pp, "'%s' comes from %s; remove it here", pn, owned[k].instead);
        hub_dt_prop *p = &c->chosen[c->n_chosen++];
        p->name = strdup(pn);
        int r = parse_dt_value(c, err, pp, ch->pairs[i].value, p);
        if (r < 0)
            return r;
    }
    return 0;
}

static int convert_rng_seed(hub_mconfig *c, const char *v, char **err)
{
    c->rng_seed = HUB_RNG_DEFAULT;
    if (!v)
        return 0;
    if (!strcmp(v, "random")) {
        c->rng_seed = HUB_RNG_RANDOM;
        return 0;
    }
    if (!strcmp(v, "none")) {
        c->rng_seed = HUB_RNG_NONE;
        return 0;
    }
    const char *h = !strncasecmp(v, "0x", 2) ? v + 2 : v;
    size_t n = strlen(h);
    bool hex = n >= 2 && n % 2 == 0 && n <= 2 * HUB_RNG_SEED_MAX;
    for (size_t i = 0; hex && i < n; i++)
        hex = isxdigit((unsigned char)h[i]);
    if (!hex)
        return cfg_err(c, err, "rng_seed", "expected random, none, or 1 to %d bytes in hex (e.g. 0x0123abcd); "
                       "got '%s'", HUB_RNG_SEED_MAX, v);
    for (size_t i = 0; i < n / 2; i++) {
        char byte[3] = { h[2 * i], h[2 * i + 1], 0 };
        c->rng_seed_bytes[i] = (uint8_t)strtoul(byte, NULL, 16);
    }
    c->rng_seed_len = n / 2;
    c->rng_seed = HUB_RNG_FIXED;
    return 0;
}

#define KERNEL_ALIGN (2ULL << 20)   /* RV64 Linux runs from a 2 MiB aligned base (+ text_offset) */

/* `kernel:`, `kernel_address:`, `initrd:`, `dtb:`, `chosen:`, `rng_seed:`: what the next boot stage gets. */
static int convert_boot(hub_mconfig *c, const hub_mconfig_opts *o, const struct raw_machine *m, char **err)
{
    int r;
    if (m->kernel) {
        if ((r = boot_file(c, o, "kernel", "kernel", m->kernel, &c->kernel, err)) < 0)
            return r;
        c->kernel_elf = sniff_format(c->kernel) == HUB_FW_ELF;
        char *ierr = NULL;
        if (!c->kernel_elf && hub_image_probe(c->kernel, &c->kernel_image, &ierr) < 0) {
            r = cfg_err(c, err, "kernel", "%s", ierr);
            free(ierr);
            return r;
        }
    }
    if (m->kernel_address) {
        if (!c->kernel)
            return cfg_err(c, err, "kernel_address", "only means something with a kernel (kernel: or --kernel)");
        if (c->kernel_elf)
            return cfg_err(c, err, "kernel_address", "an ELF kernel loads at its own addresses; kernel_address is "
                           "for a RISC-V Linux Image");
        if ((r = parse_addr(c, err, "kernel_address", m->kernel_address, &c->kernel_address)) < 0)
            return r;
        uint64_t off = c->kernel_image.text_offset;
        if (c->kernel_address < off || (c->kernel_address - off) % KERNEL_ALIGN)
            return cfg_err(c, err, "kernel_address", "expected a 2 MiB aligned address plus the Image's "
                           "text_offset 0x%" PRIx64 " (e.g. 0x%" PRIx64 "); got 0x%" PRIx64, off,
                           c->ram[0].base + off, c->kernel_address);
        c->has_kernel_address = true;
    }
    if (m->initrd) {
        if (!c->kernel)
            return cfg_err(c, err, "initrd", "an initrd needs a kernel to read it (kernel: or --kernel)");
        if ((r = boot_file(c, o, "initrd", "initrd", m->initrd, &c->initrd, err)) < 0)
            return r;
        struct stat st;
        if (stat(c->initrd, &st) < 0 || st.st_size == 0)
            return cfg_err(c, err, "initrd", "'%s' is empty", c->initrd);
        c->initrd_size = (uint64_t)st.st_size;
    }
    if (m->dtb) {
        if ((r = boot_file(c, o, "dtb", "device tree", m->dtb, &c->dtb_file, err)) < 0)
            return r;
        size_t len = 0;
        char *rerr = NULL;
        c->dtb_blob = read_file(c->dtb_file, &len, &rerr);
        if (!c->dtb_blob) {
            r = cfg_err(c, err, "dtb", "%s", rerr);
            free(rerr);
            return r;
        }
        c->dtb_blob_size = len;
        int fr = len >= 4 && fdt_magic(c->dtb_blob) != FDT_MAGIC ? -FDT_ERR_BADMAGIC
                 : len < sizeof(struct fdt_header) ? -FDT_ERR_TRUNCATED : fdt_check_full(c->dtb_blob, len);
        if (fr < 0)
            return cfg_err(c, err, "dtb", "'%s' is not a valid flattened device tree (.dtb; compile a .dts with "
                           "dtc): %s", c->dtb_file, fdt_strerror(fr));
        if (len > DTB_FILE_MAX)
            return cfg_err(c, err, "dtb", "'%s' is %zu bytes; at most %u expected", c->dtb_file, len,
                           DTB_FILE_MAX);
    }
    if ((r = convert_chosen(c, err)) < 0)
        return r;
    return convert_rng_seed(c, m->rng_seed, err);
}

static int convert(hub_mconfig *c, const hub_mconfig_opts *o, struct raw_machine *m, char **err)
{
    int r;
    char path[64];
    c->name = strdup(m->name ? m->name : "machine");

    c->ram = calloc(m->ram_count, sizeof(*c->ram));
    for (unsigned i = 0; i < m->ram_count; i++) {
        hub_mc_ram *b = &c->ram[i];
        b->name = m->ram[i].name ? strdup(m->ram[i].name) : (i ? xasprintf("ram%u", i) : strdup("ram"));
        c->n_ram++;
        snprintf(path, sizeof(path), "ram.%u.name", i);
        if (!valid_name(b->name))
            return cfg_err(c, err, path, "expected a name of letters, digits, '_' and '-'; got '%s'", b->name);
        for (unsigned j = 0; j < i; j++)
            if (!strcmp(c->ram[j].name, b->name))
                return cfg_err(c, err, path, "duplicate RAM block name '%s'", b->name);
        snprintf(path, sizeof(path), "ram.%u.base", i);
        if ((r = parse_addr(c, err, path, m->ram[i].base, &b->base)) < 0)
            return r;
        if (b->base & 0xfff)
            return cfg_err(c, err, path, "RAM base 0x%" PRIx64 " is not 4 KiB aligned", b->base);
        snprintf(path, sizeof(path), "ram.%u.size", i);
        if ((r = parse_addr(c, err, path, m->ram[i].size, &b->size)) < 0)
            return r;
        if (!b->size || (b->size & 0xfff))
            return cfg_err(c, err, path, "expected a non-zero multiple of 4 KiB (e.g. 128M); got '%s'",
                           m->ram[i].size);
    }

    c->insns_per_ns = DEF_INSNS_PER_NS;
    c->timebase_hz = DEF_TIMEBASE_HZ;
    if (m->cpu) {
        if (m->cpu->isa && strcmp(m->cpu->isa, "riscv64") && strcmp(m->cpu->isa, "rv64"))
            return cfg_err(c, err, "cpu.isa", "expected riscv64 (the only CPU plexus has); got '%s'", m->cpu->isa);
        if (m->cpu->insns_per_ns) {
            c->insns_per_ns = *m->cpu->insns_per_ns;
            if (!(c->insns_per_ns > 0) || !isfinite(c->insns_per_ns) || c->insns_per_ns > 1000)
                return cfg_err(c, err, "cpu.insns_per_ns", "expected a number of instructions per virtual "
                               "nanosecond in (0, 1000]; got %g", c->insns_per_ns);
        }
        if (m->cpu->time)
            c->time_mode = *m->cpu->time == RAW_TIME_WALLCLOCK ? HUB_TIME_WALLCLOCK : HUB_TIME_VIRTUAL;
        if (m->cpu->idle)
            c->idle_mode = *m->cpu->idle == RAW_IDLE_JUMP ? HUB_IDLE_JUMP : HUB_IDLE_SLEEP;
        if (m->cpu->quantum_ns) {
            if ((r = parse_addr(c, err, "cpu.quantum_ns", m->cpu->quantum_ns, &c->quantum_ns)) < 0)
                return r;
            if (c->quantum_ns < 10 || c->quantum_ns > 1000000000ULL)
                return cfg_err(c, err, "cpu.quantum_ns", "expected 10..1000000000 ns of virtual time; got %" PRIu64,
                               c->quantum_ns);
        }
        if (m->cpu->timebase_hz) {
            if ((r = parse_addr(c, err, "cpu.timebase_hz", m->cpu->timebase_hz, &c->timebase_hz)) < 0)
                return r;
            if (!c->timebase_hz || c->timebase_hz > 1000000000ULL || c->timebase_hz > UINT32_MAX)
                return cfg_err(c, err, "cpu.timebase_hz", "expected 1..1000000000 Hz; got %" PRIu64,
                               c->timebase_hz);
        }
    }

    struct { struct raw_builtin *raw; const char *key; bool *on; uint64_t *base; uint64_t def; } bi[] = {
        { m->clint, "clint", &c->clint, &c->clint_base, DEF_CLINT_BASE },
        { m->plic, "plic", &c->plic, &c->plic_base, DEF_PLIC_BASE },
        { m->poweroff, "poweroff", &c->poweroff, &c->poweroff_base, DEF_POWEROFF_BASE },
    };
    c->plic_sources = DEF_PLIC_SOURCES;
    for (size_t i = 0; i < 3; i++) {
        *bi[i].on = true;
        *bi[i].base = bi[i].def;
        if (!bi[i].raw)
            continue;
        if (bi[i].raw->enabled)
            *bi[i].on = *bi[i].raw->enabled;
        snprintf(path, sizeof(path), "%s.base", bi[i].key);
        if (bi[i].raw->base && (r = parse_addr(c, err, path, bi[i].raw->base, bi[i].base)) < 0)
            return r;
        if (*bi[i].base & 0xfff)
            return cfg_err(c, err, path, "base 0x%" PRIx64 " is not 4 KiB aligned", *bi[i].base);
        if (bi[i].raw->sources) {
            c->plic_sources = *bi[i].raw->sources;
            if (c->plic_sources < 1 || c->plic_sources > 1023)
                return cfg_err(c, err, "plic.sources", "expected 1..1023 interrupt sources; got %u",
                               c->plic_sources);
        }
    }
    if (!c->clint)
        return cfg_err(c, err, "clint.enabled", "the CPU needs its timer: the CLINT cannot be disabled");

    c->firmware = calloc(m->firmware_count ? m->firmware_count : 1, sizeof(*c->firmware));
    for (unsigned i = 0; i < m->firmware_count; i++) {
        hub_mc_firmware *f = &c->firmware[i];
        snprintf(path, sizeof(path), "firmware.%u.file", i);
        char *looked = NULL;
        f->path = find_data_file(c, o, m->firmware[i].file, &looked);
        if (!f->path) {
            r = cfg_err(c, err, path, "firmware file '%s' not found or not readable (looked in %s)",
                        m->firmware[i].file, looked);
            free(looked);
            return r;
        }
        free(looked);
        c->n_firmware++;
        raw_fw_format fmt = m->firmware[i].format ? *m->firmware[i].format : RAW_FW_AUTO;
        f->format = fmt == RAW_FW_ELF ? HUB_FW_ELF : fmt == RAW_FW_RAW ? HUB_FW_RAW : sniff_format(f->path);
        snprintf(path, sizeof(path), "firmware.%u.address", i);
        if (m->firmware[i].address) {
            if (f->format == HUB_FW_ELF)
                return cfg_err(c, err, path, "an ELF image loads at its own addresses; 'address' is for raw "
                               "images (format: raw)");
            if ((r = parse_addr(c, err, path, m->firmware[i].address, &f->address)) < 0)
                return r;
            f->has_address = true;
        } else if (f->format == HUB_FW_RAW) {
            f->address = c->ram[0].base;
            f->has_address = true;
        }
    }
    if (m->reset_pc) {
        if ((r = parse_addr(c, err, "reset_pc", m->reset_pc, &c->reset_pc)) < 0)
            return r;
        if (c->reset_pc & 1)
            return cfg_err(c, err, "reset_pc", "0x%" PRIx64 " is not 2-byte aligned", c->reset_pc);
        c->has_reset_pc = true;
    }
    c->bootargs = m->bootargs ? strdup(m->bootargs) : NULL;
    if ((r = convert_boot(c, o, m, err)) < 0)
        return r;

    c->devices = calloc(m->devices_count ? m->devices_count : 1, sizeof(*c->devices));
    const ynode *devs = ytree_map_get(c->tree, "devices");
    for (unsigned i = 0; i < m->devices_count; i++) {
        c->n_devices++;
        if ((r = convert_device(c, o, &m->devices[i], devs->items[i], i, &c->devices[i], err)) < 0)
            return r;
    }

    c->console = -1;
    if (m->console && strcmp(m->console, "none")) {
        for (size_t i = 0; i < c->n_devices; i++)
            if (!strcmp(c->devices[i].name, m->console))
                c->console = (int)i;
        if (c->console < 0)
            return cfg_err(c, err, "console", "no device named '%s' (expected a device name or 'none')",
                           m->console);
    }

    /* What is known before the devices start: RAM and the built-in devices must not overlap. */
    named_range rs[64];
    size_t n = 0;
    for (size_t i = 0; i < c->n_ram && n < 60; i++) {
        rs[n++] = (named_range){ xasprintf("RAM '%s'", c->ram[i].name), xasprintf("ram.%zu.base", i),
                                 c->ram[i].base, c->ram[i].size };
    }
    if (c->clint)
        rs[n++] = (named_range){ strdup("clint"), strdup("clint.base"), c->clint_base, CLINT_SIZE };
    if (c->plic)
        rs[n++] = (named_range){ strdup("plic"), strdup("plic.base"), c->plic_base, PLIC_SIZE };
    if (c->poweroff)
        rs[n++] = (named_range){ strdup("poweroff"), strdup("poweroff.base"), c->poweroff_base, POWEROFF_SIZE };
    r = check_range_overlaps(c, rs, n, err);
    for (size_t i = 0; i < n; i++) {
        free(rs[i].what);
        free(rs[i].path);
    }
    return r;
}

/* ---- load ---- */
static char *read_file(const char *path, size_t *len, char **err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        *err = xasprintf("%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *nb = realloc(buf, cap);
            if (!nb)
                abort();
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        *err = xasprintf("%s: read error", path);
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

/* @text as a YAML double-quoted scalar, so that it stays one literal string whatever it holds. */
static char *yaml_quote(const char *text)
{
    char *q = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&q, &len);
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(f, "\\x%02x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
    fclose(f);
    return q;
}

/* The command line's files and boot arguments replace the description's keys; @origin names the option in
 * errors (a string literal: the tree keeps pointing at it). A file is relative to the current directory. */
static int set_option(hub_mconfig *c, const char *key, const char *value, bool is_file, bool as_list,
                      const char *option, char **err)
{
    char *text = is_file ? absolute(value) : strdup(value);
    char *q = yaml_quote(text);
    char *v = as_list ? xasprintf("[{file: %s}]", q) : strdup(q);
    char *serr = NULL;
    int r = ytree_set(c->tree, key, v, option, &serr);
    if (r < 0) {
        *err = xasprintf("%s: %s", option, serr);
        free(serr);
    }
    free(text);
    free(q);
    free(v);
    return r < 0 ? -EINVAL : 0;
}

static int apply_options(hub_mconfig *c, const hub_mconfig_opts *o, char **err)
{
    int r = 0;
    if (o->firmware)
        r = set_option(c, "firmware", o->firmware, true, true, "--firmware", err);
    if (!r && o->kernel)
        r = set_option(c, "kernel", o->kernel, true, false, "--kernel", err);
    if (!r && o->initrd)
        r = set_option(c, "initrd", o->initrd, true, false, "--initrd", err);
    if (!r && o->dtb)
        r = set_option(c, "dtb", o->dtb, true, false, "--dtb", err);
    if (!r && o->append)
        r = set_option(c, "bootargs", o->append, false, false, "--append", err);
    return r;
}

int hub_mconfig_load(const char *path, const hub_mconfig_opts *o, hub_mconfig **out, char **err)
{
    *err = NULL;
    hub_mconfig *c = calloc(1, sizeof(*c));
    c->path = strdup(path);
    char *slash = strrchr(c->path, '/');
    c->dir = slash ? strndup(c->path, (size_t)(slash - c->path) + (slash == c->path)) : strdup(".");
    c->console = -1;
    int r = -EINVAL;
    struct raw_machine *m = NULL;
    logbuf log = { 0 };
    cyaml_config_t ccfg = {
        .log_fn = cyaml_log_capture, .log_ctx = &log, .mem_fn = cyaml_mem,
        .log_level = CYAML_LOG_ERROR, .flags = CYAML_CFG_NO_ALIAS,
    };
    size_t len;
    char *text = read_file(path, &len, err);
    if (!text)
        goto fail;
    unsigned line = 0;
    char *perr = NULL;
    c->tree = ytree_parse(text, len, NULL, &line, &perr);
    free(text);
    if (!c->tree) {
        *err = xasprintf("%s:%u: %s", path, line, perr);
        free(perr);
        goto fail;
    }
    if (c->tree->kind != YNODE_MAP) {
        *err = xasprintf("%s:%u: expected a mapping at the top (keys such as ram:, firmware:, devices:)", path,
                         c->tree->line);
        goto fail;
    }
    for (size_t i = 0; o && i < o->n_sets; i++) {
        const char *eq = strchr(o->sets[i], '=');
        if (!eq || eq == o->sets[i]) {
            *err = xasprintf("--set %s: expected KEY=VALUE, e.g. --set cpu.insns_per_ns=0.5", o->sets[i]);
            goto fail;
        }
        char *key = strndup(o->sets[i], (size_t)(eq - o->sets[i]));
        char *serr = NULL;
        r = ytree_set(c->tree, key, eq + 1, o->sets[i], &serr);
        free(key);
        if (r < 0) {
            *err = xasprintf("--set %s: %s", o->sets[i], serr);
            free(serr);
            r = -EINVAL;
            goto fail;
        }
    }
    if (o && (r = apply_options(c, o, err)) < 0)
        goto fail;
    r = -EINVAL;

    char *doc = NULL;
    size_t doclen = 0;
    FILE *mf = open_memstream(&doc, &doclen);
    ytree_emit(c->tree, mf);
    fclose(mf);
    cyaml_err_t ce = cyaml_load_data((const uint8_t *)doc, doclen, &ccfg, &machine_schema, (void **)&m, NULL);
    free(doc);
    if (ce != CYAML_OK) {
        *err = translate_cyaml_error(c, c->tree, log.text, ce);
        m = NULL;
        goto fail;
    }
    if ((r = convert(c, o, m, err)) < 0)
        goto fail;
    cyaml_free(&ccfg, &machine_schema, m, 0);
    free(log.text);
    *out = c;
    return 0;
fail:
    if (m)
        cyaml_free(&ccfg, &machine_schema, m, 0);
    free(log.text);
    hub_mconfig_free(c);
    return r < 0 ? r : -EINVAL;
}

static void free_dt_props(hub_dt_prop *props, size_t n)
{
    for (size_t j = 0; j < n; j++) {
        hub_dt_prop *p = &props[j];
        free(p->name);
        for (size_t k = 0; k < p->n_strings; k++)
            free(p->strings[k]);
        free(p->strings);
        free(p->cells);
    }
    free(props);
}

void hub_mconfig_free(hub_mconfig *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_ram; i++)
        free(c->ram[i].name);
    free(c->ram);
    for (size_t i = 0; i < c->n_firmware; i++)
        free(c->firmware[i].path);
    free(c->firmware);
    for (size_t i = 0; i < c->n_devices; i++) {
        hub_mc_device *d = &c->devices[i];
        free(d->name);
        free(d->program);
        free(d->plugin);
        for (char **a = d->args; a && *a; a++)
            free(*a);
        free(d->args);
        for (size_t j = 0; j < d->n_props; j++) {
            free(d->props[j].key);
            free(d->props[j].value);
        }
        free(d->props);
        for (size_t j = 0; j < d->n_regions; j++)
            free(d->regions[j].region);
        free(d->regions);
        free(d->irqs);
        for (size_t j = 0; j < d->n_ram_grants; j++)
            free(d->ram_grants[j]);
        free(d->ram_grants);
        free(d->endpoint);
        free(d->sandbox_policy);
        for (size_t j = 0; j < d->n_sandbox_allow; j++)
            free(d->sandbox_allow[j]);
        free(d->sandbox_allow);
        for (size_t j = 0; j < d->n_dt_compatible; j++)
            free(d->dt_compatible[j]);
        free(d->dt_compatible);
        free(d->dt_node);
        free_dt_props(d->dt_props, d->n_dt_props);
    }
    free(c->devices);
    free(c->name);
    free(c->bootargs);
    free(c->kernel);
    free(c->initrd);
    free(c->dtb_file);
    free(c->dtb_blob);
    free_dt_props(c->chosen, c->n_chosen);
    free(c->path);
    free(c->dir);
    ytree_free(c->tree);
    free(c);
}
