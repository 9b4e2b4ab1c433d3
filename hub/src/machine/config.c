/*
 * Loading machine.yaml, in one parse: libyaml builds a tree with lines (ytree), --set overrides edit it, the tree
 * is checked against the schema below (every key known, every value of its kind), and the semantic checks turn it
 * into a hub_mconfig, whose devices are the device layer's own hub_device_config.
 */
#define _GNU_SOURCE
#include "machine.h"

#include <ctype.h>
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

#include "plexus/chan.h"
#include "plexus/protocol.h"
#include "util.h"

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

/* ---- the schema: which keys each mapping has, and what kind of value each takes ---- */
typedef enum { T_STR, T_UINT, T_BOOL, T_FLOAT, T_ENUM, T_MAP, T_SEQ, T_ANY } stype;
typedef struct senum { const char *name; int value; } senum;
typedef struct sval sval;
typedef struct skey { const char *key; const sval *val; bool required; } skey;
struct sval {
    stype type;
    const skey *keys;       /* T_MAP: up to a NULL key */
    const sval *item;       /* T_SEQ: each entry */
    unsigned min_items;     /* T_SEQ */
    const senum *names;     /* T_ENUM: up to a NULL name */
};
#define KEY(k, v) { .key = (k), .val = (v) }
#define REQUIRED(k, v) { .key = (k), .val = (v), .required = true }
#define NAME(n, v) { .name = (n), .value = (v) }
#define MAP(k) { .type = T_MAP, .keys = (k) }
#define SEQ(i) { .type = T_SEQ, .item = (i) }
#define ENUM(n) { .type = T_ENUM, .names = (n) }

static const sval v_str = { .type = T_STR }, v_uint = { .type = T_UINT }, v_bool = { .type = T_BOOL },
                  v_float = { .type = T_FLOAT }, v_any = { .type = T_ANY };
static const sval v_strs = SEQ(&v_str), v_uints = SEQ(&v_uint);

typedef enum { RESTART_NEVER, RESTART_ON_FAILURE, RESTART_ALWAYS } restart_policy;
static const senum fw_formats[] = { NAME("auto", HUB_FW_AUTO), NAME("elf", HUB_FW_ELF), NAME("raw", HUB_FW_RAW),
                                    { 0 } };
static const senum idle_modes[] = { NAME("sleep", HUB_IDLE_SLEEP), NAME("jump", HUB_IDLE_JUMP), { 0 } };
static const senum time_modes[] = { NAME("virtual", HUB_TIME_VIRTUAL), NAME("wallclock", HUB_TIME_WALLCLOCK),
                                    { 0 } };
static const senum restart_policies[] = { NAME("never", RESTART_NEVER), NAME("on-failure", RESTART_ON_FAILURE),
                                          NAME("always", RESTART_ALWAYS), { 0 } };
static const senum transports[] = { NAME("auto", HUB_TRANSPORT_AUTO), NAME("ring", HUB_TRANSPORT_RING),
                                    NAME("zeromq", HUB_TRANSPORT_ZMQ), { 0 } };
static const senum syncs[] = { NAME("async", 0), NAME("lockstep", 1), { 0 } };
static const senum dmas[] = { NAME("map", 0), NAME("message", 1), { 0 } };
static const senum log_levels[] = { NAME("error", PLX_LOG_ERR), NAME("warning", PLX_LOG_WARNING),
                                    NAME("notice", PLX_LOG_NOTICE), NAME("info", PLX_LOG_INFO),
                                    NAME("debug", PLX_LOG_DEBUG), { 0 } };
static const senum sandbox_levels[] = { NAME("normal", 0), NAME("strict", 1), { 0 } };

static const sval v_fw_format = ENUM(fw_formats), v_time = ENUM(time_modes), v_idle = ENUM(idle_modes),
                  v_restart_policy = ENUM(restart_policies), v_transport = ENUM(transports), v_sync = ENUM(syncs),
                  v_dma = ENUM(dmas), v_log_level = ENUM(log_levels), v_sandbox_level = ENUM(sandbox_levels);

static const skey ram_keys[] = { KEY("name", &v_str), REQUIRED("base", &v_str), REQUIRED("size", &v_str), { 0 } };
static const skey fw_keys[] = { REQUIRED("file", &v_str), KEY("format", &v_fw_format), KEY("address", &v_str),
                                { 0 } };
static const skey cpu_keys[] = {
    KEY("isa", &v_str), KEY("insns_per_ns", &v_float), KEY("time", &v_time), KEY("idle", &v_idle),
    KEY("timebase_hz", &v_str), KEY("quantum_ns", &v_str), { 0 },
};
static const skey builtin_keys[] = { KEY("base", &v_str), KEY("enabled", &v_bool), { 0 } };
static const skey plic_keys[] = { KEY("base", &v_str), KEY("enabled", &v_bool), KEY("sources", &v_uint), { 0 } };
static const skey region_keys[] = { REQUIRED("name", &v_str), REQUIRED("base", &v_str), { 0 } };
static const skey dt_keys[] = { KEY("compatible", &v_any), KEY("node", &v_str), KEY("properties", &v_any), { 0 } };
static const skey sandbox_keys[] = {
    KEY("enabled", &v_bool), KEY("policy", &v_str), KEY("allow", &v_strs), KEY("namespaces", &v_any), { 0 },
};
static const skey curve_keys[] = { REQUIRED("secret_key_file", &v_str), { 0 } };
static const skey jail_keys[] = { KEY("read", &v_strs), KEY("write", &v_strs), KEY("strict", &v_bool), { 0 } };
static const skey limits_keys[] = {
    KEY("region_bytes", &v_str), KEY("shadow_bytes", &v_str), KEY("log_bytes_per_s", &v_str), { 0 },
};
static const skey restart_keys[] = {
    KEY("policy", &v_restart_policy), KEY("max_restarts", &v_uint), KEY("backoff_ms", &v_uint), { 0 },
};
static const skey ring_keys[] = { KEY("slots", &v_uint), KEY("spin_us", &v_uint), { 0 } };
static const skey file_keys[] = { REQUIRED("name", &v_str), REQUIRED("path", &v_str), KEY("readonly", &v_bool),
                                  { 0 } };
static const skey log_keys[] = { KEY("level", &v_log_level), KEY("mmio", &v_bool), { 0 } };
static const sval v_ram_entry = MAP(ram_keys), v_fw_entry = MAP(fw_keys), v_cpu = MAP(cpu_keys),
                  v_builtin = MAP(builtin_keys), v_plic = MAP(plic_keys), v_region_entry = MAP(region_keys),
                  v_dt = MAP(dt_keys), v_sandbox = MAP(sandbox_keys), v_restart = MAP(restart_keys),
                  v_ring = MAP(ring_keys), v_jail = MAP(jail_keys), v_limits = MAP(limits_keys),
                  v_file_entry = MAP(file_keys), v_log = MAP(log_keys), v_curve = MAP(curve_keys);
static const sval v_regions = SEQ(&v_region_entry), v_files = SEQ(&v_file_entry);
static const skey dev_keys[] = {
    REQUIRED("name", &v_str), KEY("program", &v_str), KEY("plugin", &v_str), KEY("args", &v_strs),
    KEY("base", &v_str), KEY("regions", &v_regions), KEY("irq", &v_uint), KEY("irqs", &v_uints),
    KEY("props", &v_any), KEY("timeout_ms", &v_uint), KEY("endpoint", &v_str), KEY("attach", &v_bool),
    KEY("attach_timeout_ms", &v_uint), KEY("ram", &v_strs), KEY("dt", &v_dt), KEY("sandbox", &v_sandbox),
    KEY("restart", &v_restart), KEY("transport", &v_transport), KEY("ring", &v_ring), KEY("sync", &v_sync),
    KEY("dma", &v_dma), KEY("jail", &v_jail), KEY("limits", &v_limits), KEY("files", &v_files),
    KEY("log", &v_log), KEY("curve_key", &v_str), KEY("curve_key_file", &v_str), { 0 },
};
static const sval v_dev_entry = MAP(dev_keys);
static const sval v_rams = { .type = T_SEQ, .item = &v_ram_entry, .min_items = 1 }, v_fws = SEQ(&v_fw_entry),
                  v_devs = SEQ(&v_dev_entry);
static const skey machine_keys[] = {
    KEY("name", &v_str), REQUIRED("ram", &v_rams), KEY("firmware", &v_fws), KEY("reset_pc", &v_str),
    KEY("cpu", &v_cpu), KEY("clint", &v_builtin), KEY("plic", &v_plic), KEY("poweroff", &v_builtin),
    KEY("console", &v_str), KEY("bootargs", &v_str), KEY("kernel", &v_str), KEY("kernel_address", &v_str),
    KEY("initrd", &v_str), KEY("dtb", &v_str), KEY("chosen", &v_any), KEY("rng_seed", &v_str),
    KEY("sandbox", &v_sandbox_level), KEY("curve", &v_curve), KEY("devices", &v_devs), { 0 },
};
static const sval v_machine = MAP(machine_keys);

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

/* Set *@errp to "WHERE: message" for the key at @p and return -EINVAL. */
static int err_at(const hub_mconfig *c, Error **errp, const kpath *p, const char *fmt, va_list ap)
{
    char *w = where(c, c->tree, p);
    char *msg;
    if (vasprintf(&msg, fmt, ap) < 0)
        abort();
    error_setg(errp, "%s: %s", w, msg);
    free(w);
    free(msg);
    return -EINVAL;
}

/* The same for a key path such as "devices.1.irqs.0". */
static int __attribute__((format(printf, 4, 5)))
cfg_err(const hub_mconfig *c, Error **errp, const char *path, const char *fmt, ...)
{
    char *copy = strdup(path);
    kpath p;
    kpath_parse(&p, copy);
    va_list ap;
    va_start(ap, fmt);
    int r = err_at(c, errp, &p, fmt, ap);
    va_end(ap);
    free(copy);
    return r;
}

/* ---- checking the tree against the schema ---- */

static const char *kind_words(const ynode *n)
{
    return n->kind == YNODE_MAP ? "a mapping (key: value lines)" : n->kind == YNODE_SEQ ? "a list" : "a plain value";
}

/* A YAML unsigned integer: decimal, 0x hex or 0 octal, that fits in 32 bits. */
static bool parse_uint(const char *s, unsigned *out)
{
    while (isspace((unsigned char)*s))
        s++;
    if (*s == '+')
        s++;
    if (!isdigit((unsigned char)*s))
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    while (isspace((unsigned char)*end))
        end++;
    if (errno || *end || v > UINT_MAX)
        return false;
    *out = (unsigned)v;
    return true;
}

static bool parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    while (isspace((unsigned char)*end))
        end++;
    if (end == s || *end || errno)
        return false;
    *out = v;
    return true;
}

/* YAML 1.1's words for booleans, as machine files have written them. */
static bool parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = { "true", "yes", "on", "1", "enable" }, *const no[] = { "false", "no", "off",
                                                                                          "0", "disable" };
    for (size_t i = 0; i < 5; i++) {
        if (!strcasecmp(s, yes[i]) || !strcasecmp(s, no[i])) {
            *out = !strcasecmp(s, yes[i]);
            return true;
        }
    }
    return false;
}

static bool parse_enum(const senum *names, const char *s, int *out)
{
    for (const senum *e = names; e->name; e++)
        if (!strcmp(e->name, s)) {
            *out = e->value;
            return true;
        }
    return false;
}

static char *enum_words(const senum *names)
{
    char *s = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&s, &len);
    for (const senum *e = names; e->name; e++)
        fprintf(f, "%s%s", e == names ? "" : ", ", e->name);
    fclose(f);
    return s;
}

static int __attribute__((format(printf, 4, 5)))
kpath_err(const hub_mconfig *c, Error **errp, const kpath *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = err_at(c, errp, p, fmt, ap);
    va_end(ap);
    return r;
}

/* Every key known, every value of its kind: the errors a description's shape can have, before its meaning. */
static int check(const hub_mconfig *c, const ynode *n, const sval *v, kpath *p, Error **errp)
{
    int r = 0;
    switch (v->type) {
    case T_ANY:
        return 0;
    case T_MAP:
        if (n->kind != YNODE_MAP)
            return kpath_err(c, errp, p, "expected a mapping (key: value lines), got %s", kind_words(n));
        for (size_t i = 0; i < n->n_pairs && !r; i++) {
            const skey *k = v->keys;
            while (k->key && strcmp(k->key, n->pairs[i].key))
                k++;
            kpath_push_key(p, n->pairs[i].key);
            if (!k->key) {
                char *keys = NULL;
                size_t len = 0;
                FILE *f = open_memstream(&keys, &len);
                for (const skey *kk = v->keys; kk->key; kk++)
                    fprintf(f, "%s%s", kk == v->keys ? "" : ", ", kk->key);
                fclose(f);
                r = kpath_err(c, errp, p, "unknown key '%s'; expected one of: %s", n->pairs[i].key, keys);
                free(keys);
            } else {
                r = check(c, n->pairs[i].value, k->val, p, errp);
            }
            p->n--;
        }
        for (const skey *k = v->keys; k->key && !r; k++) {
            if (k->required && !ytree_map_pair(n, k->key)) {
                kpath_push_key(p, k->key);
                r = kpath_err(c, errp, p, "missing required key '%s'", k->key);
                p->n--;
            }
        }
        return r;
    case T_SEQ:
        if (n->kind != YNODE_SEQ)
            return kpath_err(c, errp, p, "expected a list, got %s", kind_words(n));
        if (n->n_items < v->min_items)
            return kpath_err(c, errp, p, "expected a list of at least %u entr%s; got an empty list", v->min_items,
                             v->min_items == 1 ? "y" : "ies");
        for (size_t i = 0; i < n->n_items && !r; i++) {
            kpath_push_index(p, (long)i);
            r = check(c, n->items[i], v->item, p, errp);
            p->n--;
        }
        return r;
    default:
        break;
    }
    if (n->kind != YNODE_SCALAR)
        return kpath_err(c, errp, p, "expected %s, got %s", v->type == T_UINT ? "a number" : "a plain value",
                         kind_words(n));
    const char *s = n->scalar;
    unsigned u;
    double d;
    bool b;
    int e;
    switch (v->type) {
    case T_UINT:
        return parse_uint(s, &u) ? 0 : kpath_err(c, errp, p, "expected an unsigned integer, got '%s'", s);
    case T_FLOAT:
        return parse_double(s, &d) ? 0 : kpath_err(c, errp, p, "expected a number, got '%s'", s);
    case T_BOOL:
        return parse_bool(s, &b) ? 0 : kpath_err(c, errp, p, "expected true or false; got '%s'", s);
    case T_ENUM:
        if (!parse_enum(v->names, s, &e)) {
            char *words = enum_words(v->names);
            r = kpath_err(c, errp, p, "expected one of: %s; got '%s'", words, s);
            free(words);
        }
        return r;
    default:
        return 0;
    }
}

/* ---- reading values the schema checked ---- */

static const char *ystr(const ynode *map, const char *key)
{
    const ynode *v = ytree_map_get(map, key);
    return v && v->kind == YNODE_SCALAR ? v->scalar : NULL;
}

static unsigned yuint(const ynode *map, const char *key, unsigned def)
{
    const char *s = ystr(map, key);
    unsigned v;
    return s && parse_uint(s, &v) ? v : def;
}

static bool ybool(const ynode *map, const char *key, bool def)
{
    const char *s = ystr(map, key);
    bool v;
    return s && parse_bool(s, &v) ? v : def;
}

static int yenum(const ynode *map, const char *key, const senum *names, int def)
{
    const char *s = ystr(map, key);
    int v;
    return s && parse_enum(names, s, &v) ? v : def;
}

/* A list of strings (checked), copied; NULL when absent. *@n its length. */
static char **ystrs(const ynode *map, const char *key, size_t *n)
{
    const ynode *v = ytree_map_get(map, key);
    *n = 0;
    if (!v || v->kind != YNODE_SEQ)
        return NULL;
    char **out = calloc(v->n_items + 1, sizeof(char *));
    for (size_t i = 0; i < v->n_items; i++)
        out[(*n)++] = strdup(v->items[i]->scalar);
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

static int parse_addr(const hub_mconfig *c, Error **errp, const char *path, const char *s, uint64_t *out)
{
    int r = hub_parse_size(s, out);
    if (r == -ERANGE)
        return cfg_err(c, errp, path, "'%s' does not fit in 64 bits", s);
    if (r < 0)
        return cfg_err(c, errp, path, "expected an address or size such as 0x80000000, 4096 or 128M; got '%s'", s);
    return 0;
}

/* ---- file lookup (util.h) ---- */

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
        if (!strncmp(dir, src, l) && (dir[l] == '/' || dir[l] == 0))
            res = hub_xasprintf("%s%s", o->build_dir, dir + l);
    }
    free(dir);
    free(src);
    return res;
}

/* Relative firmware paths: the YAML folder, its mirror in the build tree, then each folder of $PLEXUS_PATH. */
static char *find_data_file(const hub_mconfig *c, const hub_mconfig_opts *o, const char *name, char **looked)
{
    hub_search s = { .n = 0 };
    hub_search_add(&s, c->dir);
    char *m = build_mirror_dir(c, o);
    hub_search_add(&s, m);
    free(m);
    hub_search_add_env(&s, "PLEXUS_PATH");
    char *found = hub_find_file(&s, NULL, name, R_OK, looked, SIZE_MAX, NULL);
    hub_search_clear(&s);
    return found;
}

/* Device programs: a path with '/' is relative to the YAML folder; a bare name is looked up next to the plexus
 * binary, then in the YAML folder, then in $PATH. Plugins: next to the binary, in ../lib (a build tree), in the
 * installed plugin folder (lib/plexus/devices), the YAML folder. */
static char *find_program(const hub_mconfig *c, const hub_mconfig_opts *o, const char *name, bool plugin,
                          char **looked)
{
    hub_search s = { .n = 0 };
    if (o && o->exe_dir) {
        hub_search_add(&s, o->exe_dir);
        if (plugin) {
            char *lib = hub_xasprintf("%s/../lib", o->exe_dir);
            hub_search_add(&s, lib);
            free(lib);
#ifdef PLEXUS_BIN_TO_PLUGINS
            lib = hub_xasprintf("%s/%s", o->exe_dir, PLEXUS_BIN_TO_PLUGINS);    /* the installed plugin folder */
            hub_search_add(&s, lib);
            free(lib);
#endif
        }
    }
    hub_search_add(&s, c->dir);
    if (!plugin)
        hub_search_add_env(&s, "PATH");
    char *found = hub_find_file(&s, c->dir, name, plugin ? R_OK : X_OK, looked, 4, "$PATH");
    hub_search_clear(&s);
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

static int check_range_overlaps(const hub_mconfig *c, named_range *r, size_t n, Error **errp)
{
    for (size_t i = 0; i < n; i++) {
        if (r[i].size && r[i].base + r[i].size - 1 < r[i].base)
            return cfg_err(c, errp, r[i].path, "%s [0x%" PRIx64 ", +0x%" PRIx64 ") wraps past the end of the "
                           "address space", r[i].what, r[i].base, r[i].size);
        for (size_t j = 0; j < i; j++) {
            if (!r[i].size || !r[j].size)
                continue;
            if (r[i].base < r[j].base + r[j].size && r[j].base < r[i].base + r[i].size)
                return cfg_err(c, errp, r[i].path,
                               "%s [0x%" PRIx64 "-0x%" PRIx64 "] overlaps %s [0x%" PRIx64 "-0x%" PRIx64 "]",
                               r[i].what, r[i].base, r[i].base + r[i].size - 1, r[j].what, r[j].base,
                               r[j].base + r[j].size - 1);
        }
    }
    return 0;
}

static int parse_dt_value(const hub_mconfig *c, Error **errp, const char *path, const ynode *v, hub_dt_prop *p)
{
    if (v->kind == YNODE_MAP)
        return cfg_err(c, errp, path, "expected a number, a string, true, or a list of numbers or strings");
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
            return cfg_err(c, errp, path, "expected a list of plain values, got a nested list or mapping");
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
static int convert_isolation(hub_mconfig *c, const ynode *dnode, size_t i, hub_device_config *d, Error **errp)
{
    char path[96];
#define Q(...) (snprintf(path, sizeof(path), __VA_ARGS__), path)
    const ynode *sb = ytree_map_get(dnode, "sandbox");
    if (sb) {
        d->sandbox = ybool(sb, "enabled", true);        /* the mapping alone turns it on */
        const char *pol = ystr(sb, "policy") ? ystr(sb, "policy") : PLX_SANDBOX_POLICY_DEFAULT;
        if (strcmp(pol, PLX_SANDBOX_POLICY_DEFAULT) && strcmp(pol, PLX_SANDBOX_POLICY_LOG))
            return cfg_err(c, errp, Q("devices.%zu.sandbox.policy", i),
                           "expected one of: " PLX_SANDBOX_POLICY_NAMES "; got '%s'", pol);
        d->sandbox_policy = strdup(pol);
        size_t n;
        char **allow = ystrs(sb, "allow", &n);
        d->sandbox_allow = (const char *const *)(allow ? allow : calloc(1, sizeof(char *)));
        d->n_sandbox_allow = n;
        for (size_t j = 0; j < n; j++)
            if (seccomp_syscall_resolve_name(allow[j]) == __NR_SCMP_ERROR)
                return cfg_err(c, errp, Q("devices.%zu.sandbox.allow.%zu", i, j),
                               "expected a system call name of this architecture (e.g. openat); got '%s'",
                               allow[j]);
        if (ytree_map_get(sb, "namespaces"))
            return cfg_err(c, errp, Q("devices.%zu.sandbox.namespaces", i),
                           "namespaces are not chosen per device any more: every device plexus starts runs in "
                           "pid, mount, ipc and uts namespaces of its own (and a network namespace unless its "
                           "endpoint is tcp); remove the key");
    }
    const ynode *jl = ytree_map_get(dnode, "jail");
    if (jl) {
        size_t n;
        char **v = ystrs(jl, "read", &n);
        d->sandbox_read = (const char *const *)v;
        d->n_sandbox_read = n;
        v = ystrs(jl, "write", &n);
        d->sandbox_write = (const char *const *)v;
        d->n_sandbox_write = n;
        d->strict = ybool(jl, "strict", false);
        if (d->attach && (d->n_sandbox_read || d->n_sandbox_write))
            return cfg_err(c, errp, Q("devices.%zu.jail", i), "a jail is for devices plexus starts, not for "
                           "attached ones");
        const char *kinds[2] = { "read", "write" };
        const char *const *lists[2] = { d->sandbox_read, d->sandbox_write };
        size_t ns[2] = { d->n_sandbox_read, d->n_sandbox_write };
        for (int k = 0; k < 2; k++)
            for (size_t j = 0; j < ns[k]; j++)
                if (lists[k][j][0] != '/')
                    return cfg_err(c, errp, Q("devices.%zu.jail.%s.%zu", i, kinds[k], j),
                                   "expected an absolute path; got '%s'", lists[k][j]);
    }
    const ynode *lm = ytree_map_get(dnode, "limits");
    if (lm) {
        static const char *const keys[] = { "region_bytes", "shadow_bytes", "log_bytes_per_s" };
        uint64_t v[3] = { 0 };
        for (int k = 0; k < 3; k++) {
            const char *s = ystr(lm, keys[k]);
            int r;
            if (s && (r = parse_addr(c, errp, Q("devices.%zu.limits.%s", i, keys[k]), s, &v[k])) < 0)
                return r;
            if (s && (v[k] == 0 || (k == 2 && v[k] > UINT32_MAX)))
                return cfg_err(c, errp, Q("devices.%zu.limits.%s", i, keys[k]), "expected 1..%s; got '%s'",
                               k == 2 ? "4G" : "2^64-1", s);
        }
        d->limits = (hub_device_limits){ .region_bytes = v[0], .shadow_bytes = v[1],
                                         .log_bytes_per_s = (uint32_t)v[2] };
    }
    const ynode *rs = ytree_map_get(dnode, "restart");
    if (rs) {
        restart_policy pol = (restart_policy)yenum(rs, "policy", restart_policies, RESTART_ON_FAILURE);
        bool given = ytree_map_get(rs, "max_restarts") != NULL;
        unsigned max = yuint(rs, "max_restarts", 0);
        if (pol == RESTART_NEVER) {
            if (max)
                return cfg_err(c, errp, Q("devices.%zu.restart.max_restarts", i),
                               "policy 'never' restarts nothing; remove max_restarts or use policy on-failure");
            d->max_restarts = 0;
        } else {
            d->max_restarts = given ? max : RESTART_DEFAULT_MAX;
            if (!d->max_restarts)
                return cfg_err(c, errp, Q("devices.%zu.restart.max_restarts", i),
                               "expected at least 1 with policy %s (or policy: never)",
                               pol == RESTART_ALWAYS ? "always" : "on-failure");
        }
        unsigned backoff = yuint(rs, "backoff_ms", 0);
        if (backoff > RESTART_BACKOFF_MAX_MS)
            return cfg_err(c, errp, Q("devices.%zu.restart.backoff_ms", i), "expected 0..%u ms; got %u",
                           RESTART_BACKOFF_MAX_MS, backoff);
        d->restart_backoff_ms = backoff;
    }
#undef Q
    return 0;
}

static int convert_dt(hub_mconfig *c, const ynode *dnode, size_t i, hub_mc_device *d, Error **errp)
{
    char path[64];
#define P(k) (snprintf(path, sizeof(path), "devices.%zu.%s", i, (k)), path)
    const ynode *dt = ytree_map_get(dnode, "dt");
    if (!dt)
        return 0;
    const ynode *comp = ytree_map_get(dt, "compatible");
    size_t n = comp && comp->kind == YNODE_SEQ ? comp->n_items : 1;
    if (!comp || comp->kind == YNODE_MAP || n == 0)
        return cfg_err(c, errp, P("dt.compatible"), "expected a compatible string or a list of them");
    d->dt_compatible = calloc(n, sizeof(char *));
    for (size_t j = 0; j < n; j++) {
        const ynode *s = comp->kind == YNODE_SEQ ? comp->items[j] : comp;
        if (s->kind != YNODE_SCALAR || !*s->scalar)
            return cfg_err(c, errp, P("dt.compatible"), "expected a compatible string or a list of them");
        d->dt_compatible[d->n_dt_compatible++] = strdup(s->scalar);
    }
    const char *node = ystr(dt, "node");
    if (node) {
        for (const char *s = node; *s; s++)
            if (!isalnum((unsigned char)*s) && !strchr(",._+-", *s))
                return cfg_err(c, errp, P("dt.node"), "expected a node name of letters, digits and ,._+-; got "
                               "'%s'", node);
        d->dt_node = strdup(node);
    }
    const ynode *props = ytree_map_get(dt, "properties");
    if (props) {
        if (props->kind != YNODE_MAP)
            return cfg_err(c, errp, P("dt.properties"), "expected a mapping of property names to values");
        d->dt_props = calloc(props->n_pairs ? props->n_pairs : 1, sizeof(*d->dt_props));
        for (size_t j = 0; j < props->n_pairs; j++) {
            const char *pn = props->pairs[j].key;
            char pp[160];
            snprintf(pp, sizeof(pp), "devices.%zu.dt.properties.%s", i, pn);
            static const char *const generated[] = { "reg", "interrupts", "interrupt-parent", "compatible",
                                                     "interrupts-extended" };
            for (size_t k = 0; k < sizeof(generated) / sizeof(generated[0]); k++)
                if (!strcmp(pn, generated[k]))
                    return cfg_err(c, errp, pp, "'%s' is generated from the description; remove it", pn);
            hub_dt_prop *p = &d->dt_props[d->n_dt_props++];
            p->name = strdup(pn);
            int r = parse_dt_value(c, errp, pp, props->pairs[j].value, p);
            if (r < 0)
                return r;
        }
    }
#undef P
    return 0;
}

/* A CURVE key (40 characters of Z85) from the first line of the file @name, found like firmware; its Z85 in
 * @z85. The file is checked to hold only what it should (a secret key readable by others is refused). */
static int read_key_file(hub_mconfig *c, const hub_mconfig_opts *o, const char *path, const char *name, bool secret,
                         char z85[PLX_CURVE_Z85], Error **errp)
{
    char *looked = NULL, *found = find_data_file(c, o, name, &looked);
    if (!found) {
        int r = cfg_err(c, errp, path, "key file '%s' not found or not readable (looked in %s)", name, looked);
        free(looked);
        return r;
    }
    free(looked);
    struct stat st;
    FILE *f = fopen(found, "re");
    char line[PLX_CURVE_Z85 + 2] = "";
    if (f && (!fgets(line, sizeof(line), f) || fstat(fileno(f), &st) < 0))
        line[0] = 0;
    if (f)
        fclose(f);
    line[strcspn(line, "\r\n")] = 0;
    uint8_t key[PLX_CURVE_KEY];
    int r = 0;
    if (plx_curve_decode(line, key) < 0)
        r = cfg_err(c, errp, path, "%s holds no CURVE key (40 characters of Z85, as `plexus keygen` writes)", found);
    else if (secret && (st.st_mode & 077))
        r = cfg_err(c, errp, path, "%s is readable by others (mode %03o): a secret key must be 0600", found,
                    (unsigned)(st.st_mode & 0777));
    else
        memcpy(z85, line, PLX_CURVE_Z85);
    explicit_bzero(line, sizeof(line));
    free(found);
    return r;
}

/* `curve_key` / `curve_key_file`: the public key a tcp:// device must prove. */
static int convert_curve(hub_mconfig *c, const hub_mconfig_opts *o, const ynode *dnode, size_t i,
                         hub_device_config *d, Error **errp)
{
    char path[96], z85[PLX_CURVE_Z85];
    const char *key = ystr(dnode, "curve_key"), *file = ystr(dnode, "curve_key_file");
    uint8_t raw[PLX_CURVE_KEY];
    if (key && file)
        return cfg_err(c, errp, (snprintf(path, sizeof(path), "devices.%zu.curve_key_file", i), path),
                       "give either 'curve_key' or 'curve_key_file', not both");
    if (key && plx_curve_decode(key, raw) < 0)
        return cfg_err(c, errp, (snprintf(path, sizeof(path), "devices.%zu.curve_key", i), path),
                       "expected a CURVE public key (40 characters of Z85); got '%.48s'", key);
    if (file) {
        int r = read_key_file(c, o, (snprintf(path, sizeof(path), "devices.%zu.curve_key_file", i), path), file,
                              false, z85, errp);
        if (r < 0)
            return r;
        key = z85;
    }
    const char *ep = ystr(dnode, "endpoint");
    if (key && (!ep || strncmp(ep, "tcp://", 6)))
        return cfg_err(c, errp, (snprintf(path, sizeof(path), "devices.%zu.%s", i, file ? "curve_key_file" :
                                          "curve_key"), path), "a CURVE key is for a tcp:// endpoint");
    d->curve_key = key ? strdup(key) : NULL;
    return 0;
}

/* `files:` become the device layer's files: each found like firmware, and writable unless read-only. */
static int convert_files(hub_mconfig *c, const hub_mconfig_opts *o, const ynode *dnode, size_t i,
                         hub_device_config *d, Error **errp)
{
    const ynode *files = ytree_map_get(dnode, "files");
    if (!files || !files->n_items)
        return 0;
    char fp[96];
    if (files->n_items > PLX_MAX_FILES)
        return cfg_err(c, errp, (snprintf(fp, sizeof(fp), "devices.%zu.files", i), fp), "at most %u files; got %zu",
                       PLX_MAX_FILES, files->n_items);
    hub_file *f = calloc(files->n_items, sizeof(*f));
    d->files = f;
    for (size_t j = 0; j < files->n_items; j++) {
        const ynode *e = files->items[j];
        const char *nm = ystr(e, "name"), *path = ystr(e, "path");
        f[j].name = strdup(nm);
        f[j].readonly = ybool(e, "readonly", false);
        d->n_files++;
        snprintf(fp, sizeof(fp), "devices.%zu.files.%zu.name", i, j);
        if (!valid_name(nm))
            return cfg_err(c, errp, fp, "expected a name of letters, digits, '_' and '-'; got '%s'", nm);
        for (size_t k = 0; k < j; k++)
            if (!strcmp(f[k].name, nm))
                return cfg_err(c, errp, fp, "duplicate file name '%s' (also files[%zu])", nm, k);
        snprintf(fp, sizeof(fp), "devices.%zu.files.%zu.path", i, j);
        char *looked = NULL;
        char *found = find_data_file(c, o, path, &looked);
        if (!found) {
            int r = cfg_err(c, errp, fp, "file '%s' not found or not readable (looked in %s)", path, looked);
            free(looked);
            return r;
        }
        free(looked);
        f[j].path = found;
        if (!f[j].readonly && access(found, W_OK) < 0)
            return cfg_err(c, errp, fp, "%s is not writable (%s); say readonly: true to give it read-only", found,
                           strerror(errno));
    }
    return 0;
}

static int convert_device(hub_mconfig *c, const hub_mconfig_opts *o, const ynode *dnode, size_t i, hub_mc_device *md,
                          Error **errp)
{
    char path[64];
#define P(k) (snprintf(path, sizeof(path), "devices.%zu.%s", i, (k)), path)
    int r;
    hub_device_config *d = &md->dev;
    md->index = (unsigned)i;
    const char *name = ystr(dnode, "name");
    d->name = strdup(name);
    if (!valid_name(name))
        return cfg_err(c, errp, P("name"), "expected a name of letters, digits, '_' and '-'; got '%s'", name);
    if (strlen(name) > PLX_MAX_NAME)
        return cfg_err(c, errp, P("name"), "a device name has at most %d bytes; got %zu", PLX_MAX_NAME,
                       strlen(name));
    for (size_t j = 0; j < i; j++)
        if (!strcmp(c->devices[j].dev.name, name))
            return cfg_err(c, errp, P("name"), "duplicate device name '%s' (also devices[%zu])", name, j);
    d->attach = ybool(dnode, "attach", false);
    const char *program = ystr(dnode, "program"), *plugin = ystr(dnode, "plugin");
    if (program && plugin)
        return cfg_err(c, errp, P("plugin"), "give either 'program' or 'plugin', not both");
    if (!program && !plugin && !d->attach)
        return cfg_err(c, errp, P("name"), "device '%s' needs 'program' (an executable) or 'plugin' (a .so), "
                       "or 'attach: true'", name);
    if (program || plugin) {
        const char *nm = program ? program : plugin;
        char *looked = NULL;
        char *found = find_program(c, o, nm, plugin != NULL, &looked);
        if (!found && !d->attach) {
            r = cfg_err(c, errp, P(program ? "program" : "plugin"), "%s '%s' not found (looked in %s)",
                        program ? "program" : "plugin", nm, looked);
            free(looked);
            return r;
        }
        free(looked);
        if (!found)
            found = strdup(nm);
        if (program)
            d->program = found;
        else
            d->plugin = found;
    }
    size_t n_args;
    char **args = ystrs(dnode, "args", &n_args);
    d->argv = (const char *const *)(args ? args : calloc(1, sizeof(char *)));

    const char *base = ystr(dnode, "base");
    const ynode *regions = ytree_map_get(dnode, "regions");
    if (base && regions)
        return cfg_err(c, errp, P("regions"), "give either 'base' (the device's only region) or 'regions', not both");
    if (base) {
        hub_region_map *rm = calloc(1, sizeof(*rm));
        d->regions = rm;
        d->n_regions = 1;
        if ((r = parse_addr(c, errp, P("base"), base, &rm->base)) < 0)
            return r;
    } else if (regions && regions->n_items) {
        hub_region_map *rm = calloc(regions->n_items, sizeof(*rm));
        d->regions = rm;
        for (size_t j = 0; j < regions->n_items; j++) {
            char rp[96];
            const ynode *e = regions->items[j];
            snprintf(rp, sizeof(rp), "devices.%zu.regions.%zu.base", i, j);
            rm[j].region = strdup(ystr(e, "name"));
            d->n_regions++;
            if ((r = parse_addr(c, errp, rp, ystr(e, "base"), &rm[j].base)) < 0)
                return r;
            for (size_t k = 0; k < j; k++)
                if (!strcmp(rm[k].region, rm[j].region)) {
                    snprintf(rp, sizeof(rp), "devices.%zu.regions.%zu.name", i, j);
                    return cfg_err(c, errp, rp, "region '%s' is placed twice", rm[j].region);
                }
        }
    }

    const ynode *irq = ytree_map_get(dnode, "irq"), *irqs = ytree_map_get(dnode, "irqs");
    if (irq && irqs)
        return cfg_err(c, errp, P("irqs"), "give either 'irq' (line 0) or 'irqs' (lines 0, 1, ...), not both");
    size_t nirq = irq ? 1 : irqs ? irqs->n_items : 0;
    hub_irq_map *im = calloc(nirq ? nirq : 1, sizeof(*im));
    d->irqs = im;
    for (size_t j = 0; j < nirq; j++) {
        unsigned v;
        parse_uint(irq ? irq->scalar : irqs->items[j]->scalar, &v);
        char ip[64];
        if (irq)
            snprintf(ip, sizeof(ip), "devices.%zu.irq", i);
        else
            snprintf(ip, sizeof(ip), "devices.%zu.irqs.%zu", i, j);
        if (!c->plic)
            return cfg_err(c, errp, ip, "device interrupts need the PLIC, which is disabled");
        if (v < 1 || v > c->plic_sources)
            return cfg_err(c, errp, ip, "expected a PLIC source number 1..%u (0 is reserved); got %u",
                           c->plic_sources, v);
        for (size_t k = 0; k < i; k++)
            for (size_t l = 0; l < c->devices[k].dev.n_irqs; l++)
                if (c->devices[k].dev.irqs[l].irq == v)
                    return cfg_err(c, errp, ip, "irq %u is already used by device '%s'", v, c->devices[k].dev.name);
        for (size_t l = 0; l < j; l++)
            if (im[l].irq == v)
                return cfg_err(c, errp, ip, "irq %u is given twice", v);
        im[j] = (hub_irq_map){ .line = (unsigned)j, .irq = v };
        d->n_irqs++;
    }

    const ynode *props = ytree_map_get(dnode, "props");
    if (props) {
        if (props->kind != YNODE_MAP)
            return cfg_err(c, errp, P("props"), "expected a mapping of names to plain values");
        hub_prop *pr = calloc(props->n_pairs ? props->n_pairs : 1, sizeof(*pr));
        d->props = pr;
        for (size_t j = 0; j < props->n_pairs; j++) {
            const ynode *v = props->pairs[j].value;
            char pp[160];
            snprintf(pp, sizeof(pp), "devices.%zu.props.%s", i, props->pairs[j].key);
            if (v->kind != YNODE_SCALAR)
                return cfg_err(c, errp, pp, "expected a plain value (string or number), got a %s",
                               v->kind == YNODE_SEQ ? "list" : "mapping");
            pr[j].key = strdup(props->pairs[j].key);
            pr[j].value = strdup(v->scalar);
            d->n_props++;
        }
    }

    d->timeout_ms = yuint(dnode, "timeout_ms", 0);
    d->attach_timeout_ms = yuint(dnode, "attach_timeout_ms", 0);
    const char *ep = ystr(dnode, "endpoint");
    if (ep && strcmp(ep, "ipc")) {
        if (strncmp(ep, "tcp://", 6) || !strchr(ep + 6, ':'))
            return cfg_err(c, errp, P("endpoint"), "expected 'ipc' or 'tcp://HOST:PORT'; got '%s'", ep);
        d->endpoint = strdup(ep);
    }
    d->lockstep = yenum(dnode, "sync", syncs, 0) == 1;
    const ynode *log = ytree_map_get(dnode, "log");
    md->log_level = log && ytree_map_get(log, "level") ? yenum(log, "level", log_levels, -1) : -1;
    md->log_mmio = log && ybool(log, "mmio", false);
    d->ram_by_message = yenum(dnode, "dma", dmas, 0) == 1;
    d->transport = (hub_transport)yenum(dnode, "transport", transports, HUB_TRANSPORT_AUTO);
    if (d->transport == HUB_TRANSPORT_RING && d->endpoint)
        return cfg_err(c, errp, P("transport"), "the ring is for devices on this host; endpoint '%s' is ZeroMQ "
                       "(leave transport out or say zeromq)", d->endpoint);
    const ynode *ring = ytree_map_get(dnode, "ring");
    if (ring) {
        if (ytree_map_get(ring, "slots")) {
            unsigned v = yuint(ring, "slots", 0);
            if (v < 64 || v > (1u << 20) || (v & (v - 1)))
                return cfg_err(c, errp, P("ring.slots"), "expected a power of two from 64 to 1048576; got %u", v);
            d->ring_slots = v;
        }
        if (ytree_map_get(ring, "spin_us")) {
            unsigned v = yuint(ring, "spin_us", 0);
            if (v > 1000000)
                return cfg_err(c, errp, P("ring.spin_us"), "expected 0..1000000 us; got %u", v);
            d->ring_spin_us = v ? v : 1;
        }
    }

    if ((r = convert_isolation(c, dnode, i, d, errp)) < 0)
        return r;
    if ((r = convert_curve(c, o, dnode, i, d, errp)) < 0)
        return r;
    if ((r = convert_files(c, o, dnode, i, d, errp)) < 0)
        return r;

    /* `ram:` absent: every block; present (even empty): those named */
    size_t n_grants;
    char **grants = ystrs(dnode, "ram", &n_grants);
    if (grants) {
        d->ram_grants = (const char *const *)grants;
        d->n_ram_grants = n_grants;
        for (size_t j = 0; j < n_grants; j++) {
            bool ok = false;
            for (size_t k = 0; k < c->n_ram; k++)
                ok |= !strcmp(c->ram[k].name, grants[j]);
            if (!ok) {
                char gp[64];
                snprintf(gp, sizeof(gp), "devices.%zu.ram.%zu", i, j);
                return cfg_err(c, errp, gp, "no RAM block named '%s'", grants[j]);
            }
        }
    }
#undef P
    return convert_dt(c, dnode, i, md, errp);
}

/* A kernel, initrd or device-tree file named by @key: found like firmware, else a located error. */
static int boot_file(hub_mconfig *c, const hub_mconfig_opts *o, const char *key, const char *what,
                     const char *name, char **found, Error **errp)
{
    char *looked = NULL;
    *found = find_data_file(c, o, name, &looked);
    int r = 0;
    if (!*found)
        r = cfg_err(c, errp, key, "%s file '%s' not found or not readable (looked in %s)", what, name, looked);
    free(looked);
    return r;
}

static char *read_file(const char *path, size_t *len, Error **errp);

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
static int convert_chosen(hub_mconfig *c, Error **errp)
{
    const ynode *ch = ytree_map_get(c->tree, "chosen");
    if (!ch)
        return 0;
    if (ch->kind != YNODE_MAP)
        return cfg_err(c, errp, "chosen", "expected a mapping of /chosen property names to values");
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
            return cfg_err(c, errp, pp, "expected a property name of at most %d letters, digits and ,._+?#-; "
                           "got '%s'", DT_PROP_NAME_MAX, pn);
        for (size_t k = 0; k < sizeof(owned) / sizeof(owned[0]); k++)
            if (!strcmp(pn, owned[k].name))
                return cfg_err(c, errp, pp, "'%s' comes from %s; remove it here", pn, owned[k].instead);
        hub_dt_prop *p = &c->chosen[c->n_chosen++];
        p->name = strdup(pn);
        int r = parse_dt_value(c, errp, pp, ch->pairs[i].value, p);
        if (r < 0)
            return r;
    }
    return 0;
}

static int convert_rng_seed(hub_mconfig *c, const char *v, Error **errp)
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
        return cfg_err(c, errp, "rng_seed", "expected random, none, or 1 to %d bytes in hex (e.g. 0x0123abcd); "
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
static int convert_boot(hub_mconfig *c, const hub_mconfig_opts *o, Error **errp)
{
    int r;
    const ynode *m = c->tree;
    const char *kernel = ystr(m, "kernel"), *kernel_address = ystr(m, "kernel_address");
    const char *initrd = ystr(m, "initrd"), *dtb = ystr(m, "dtb");
    if (kernel) {
        if ((r = boot_file(c, o, "kernel", "kernel", kernel, &c->kernel, errp)) < 0)
            return r;
        c->kernel_elf = sniff_format(c->kernel) == HUB_FW_ELF;
        Error *ierr = NULL;
        if (!c->kernel_elf && hub_image_probe(c->kernel, &c->kernel_image, &ierr) < 0) {
            r = cfg_err(c, errp, "kernel", "%s", error_get_pretty(ierr));
            error_free(ierr);
            return r;
        }
    }
    if (kernel_address) {
        if (!c->kernel)
            return cfg_err(c, errp, "kernel_address", "only means something with a kernel (kernel: or --kernel)");
        if (c->kernel_elf)
            return cfg_err(c, errp, "kernel_address", "an ELF kernel loads at its own addresses; kernel_address is "
                           "for a RISC-V Linux Image");
        if ((r = parse_addr(c, errp, "kernel_address", kernel_address, &c->kernel_address)) < 0)
            return r;
        uint64_t off = c->kernel_image.text_offset;
        if (c->kernel_address < off || (c->kernel_address - off) % KERNEL_ALIGN)
            return cfg_err(c, errp, "kernel_address", "expected a 2 MiB aligned address plus the Image's "
                           "text_offset 0x%" PRIx64 " (e.g. 0x%" PRIx64 "); got 0x%" PRIx64, off,
                           c->ram[0].base + off, c->kernel_address);
        c->has_kernel_address = true;
    }
    if (initrd) {
        if (!c->kernel)
            return cfg_err(c, errp, "initrd", "an initrd needs a kernel to read it (kernel: or --kernel)");
        if ((r = boot_file(c, o, "initrd", "initrd", initrd, &c->initrd, errp)) < 0)
            return r;
        struct stat st;
        if (stat(c->initrd, &st) < 0 || st.st_size == 0)
            return cfg_err(c, errp, "initrd", "'%s' is empty", c->initrd);
        c->initrd_size = (uint64_t)st.st_size;
    }
    if (dtb) {
        if ((r = boot_file(c, o, "dtb", "device tree", dtb, &c->dtb_file, errp)) < 0)
            return r;
        size_t len = 0;
        Error *rerr = NULL;
        c->dtb_blob = read_file(c->dtb_file, &len, &rerr);
        if (!c->dtb_blob) {
            r = cfg_err(c, errp, "dtb", "%s", error_get_pretty(rerr));
            error_free(rerr);
            return r;
        }
        c->dtb_blob_size = len;
        int fr = len >= 4 && fdt_magic(c->dtb_blob) != FDT_MAGIC ? -FDT_ERR_BADMAGIC
                 : len < sizeof(struct fdt_header) ? -FDT_ERR_TRUNCATED : fdt_check_full(c->dtb_blob, len);
        if (fr < 0)
            return cfg_err(c, errp, "dtb", "'%s' is not a valid flattened device tree (.dtb; compile a .dts with "
                           "dtc): %s", c->dtb_file, fdt_strerror(fr));
        if (len > DTB_FILE_MAX)
            return cfg_err(c, errp, "dtb", "'%s' is %zu bytes; at most %u expected", c->dtb_file, len,
                           DTB_FILE_MAX);
    }
    if ((r = convert_chosen(c, errp)) < 0)
        return r;
    return convert_rng_seed(c, ystr(m, "rng_seed"), errp);
}

static int convert(hub_mconfig *c, const hub_mconfig_opts *o, Error **errp)
{
    int r;
    char path[64];
    const ynode *m = c->tree;
    c->name = strdup(ystr(m, "name") ? ystr(m, "name") : "machine");

    const ynode *ram = ytree_map_get(m, "ram");
    c->ram = calloc(ram->n_items, sizeof(*c->ram));
    for (size_t i = 0; i < ram->n_items; i++) {
        const ynode *e = ram->items[i];
        hub_mc_ram *b = &c->ram[i];
        const char *nm = ystr(e, "name");
        b->name = nm ? strdup(nm) : (i ? hub_xasprintf("ram%zu", i) : strdup("ram"));
        c->n_ram++;
        snprintf(path, sizeof(path), "ram.%zu.name", i);
        if (!valid_name(b->name))
            return cfg_err(c, errp, path, "expected a name of letters, digits, '_' and '-'; got '%s'", b->name);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(c->ram[j].name, b->name))
                return cfg_err(c, errp, path, "duplicate RAM block name '%s'", b->name);
        snprintf(path, sizeof(path), "ram.%zu.base", i);
        if ((r = parse_addr(c, errp, path, ystr(e, "base"), &b->base)) < 0)
            return r;
        if (b->base & 0xfff)
            return cfg_err(c, errp, path, "RAM base 0x%" PRIx64 " is not 4 KiB aligned", b->base);
        snprintf(path, sizeof(path), "ram.%zu.size", i);
        if ((r = parse_addr(c, errp, path, ystr(e, "size"), &b->size)) < 0)
            return r;
        if (!b->size || (b->size & 0xfff))
            return cfg_err(c, errp, path, "expected a non-zero multiple of 4 KiB (e.g. 128M); got '%s'",
                           ystr(e, "size"));
    }

    c->insns_per_ns = DEF_INSNS_PER_NS;
    c->timebase_hz = DEF_TIMEBASE_HZ;
    const ynode *cpu = ytree_map_get(m, "cpu");
    if (cpu) {
        const char *isa = ystr(cpu, "isa");
        if (isa && strcmp(isa, "riscv64") && strcmp(isa, "rv64"))
            return cfg_err(c, errp, "cpu.isa", "expected riscv64 (the only CPU plexus has); got '%s'", isa);
        if (ystr(cpu, "insns_per_ns")) {
            parse_double(ystr(cpu, "insns_per_ns"), &c->insns_per_ns);
            if (!(c->insns_per_ns > 0) || !isfinite(c->insns_per_ns) || c->insns_per_ns > 1000)
                return cfg_err(c, errp, "cpu.insns_per_ns", "expected a number of instructions per virtual "
                               "nanosecond in (0, 1000]; got %g", c->insns_per_ns);
        }
        c->time_mode = (hub_time_mode)yenum(cpu, "time", time_modes, HUB_TIME_VIRTUAL);
        c->idle_mode = (hub_idle_mode)yenum(cpu, "idle", idle_modes, HUB_IDLE_SLEEP);
        if (ystr(cpu, "quantum_ns")) {
            if ((r = parse_addr(c, errp, "cpu.quantum_ns", ystr(cpu, "quantum_ns"), &c->quantum_ns)) < 0)
                return r;
            if (c->quantum_ns < 10 || c->quantum_ns > 1000000000ULL)
                return cfg_err(c, errp, "cpu.quantum_ns", "expected 10..1000000000 ns of virtual time; got %" PRIu64,
                               c->quantum_ns);
        }
        if (ystr(cpu, "timebase_hz")) {
            if ((r = parse_addr(c, errp, "cpu.timebase_hz", ystr(cpu, "timebase_hz"), &c->timebase_hz)) < 0)
                return r;
            if (!c->timebase_hz || c->timebase_hz > 1000000000ULL || c->timebase_hz > UINT32_MAX)
                return cfg_err(c, errp, "cpu.timebase_hz", "expected 1..1000000000 Hz; got %" PRIu64,
                               c->timebase_hz);
        }
    }

    struct { const char *key; bool *on; uint64_t *base; uint64_t def; } bi[] = {
        { "clint", &c->clint, &c->clint_base, DEF_CLINT_BASE },
        { "plic", &c->plic, &c->plic_base, DEF_PLIC_BASE },
        { "poweroff", &c->poweroff, &c->poweroff_base, DEF_POWEROFF_BASE },
    };
    c->plic_sources = DEF_PLIC_SOURCES;
    for (size_t i = 0; i < 3; i++) {
        const ynode *b = ytree_map_get(m, bi[i].key);
        *bi[i].on = true;
        *bi[i].base = bi[i].def;
        if (!b)
            continue;
        *bi[i].on = ybool(b, "enabled", true);
        snprintf(path, sizeof(path), "%s.base", bi[i].key);
        if (ystr(b, "base") && (r = parse_addr(c, errp, path, ystr(b, "base"), bi[i].base)) < 0)
            return r;
        if (*bi[i].base & 0xfff)
            return cfg_err(c, errp, path, "base 0x%" PRIx64 " is not 4 KiB aligned", *bi[i].base);
        if (ytree_map_get(b, "sources")) {
            c->plic_sources = yuint(b, "sources", 0);
            if (c->plic_sources < 1 || c->plic_sources > 1023)
                return cfg_err(c, errp, "plic.sources", "expected 1..1023 interrupt sources; got %u",
                               c->plic_sources);
        }
    }
    if (!c->clint)
        return cfg_err(c, errp, "clint.enabled", "the CPU needs its timer: the CLINT cannot be disabled");

    const ynode *fws = ytree_map_get(m, "firmware");
    size_t n_fw = fws ? fws->n_items : 0;
    c->firmware = calloc(n_fw ? n_fw : 1, sizeof(*c->firmware));
    for (size_t i = 0; i < n_fw; i++) {
        const ynode *e = fws->items[i];
        hub_mc_firmware *f = &c->firmware[i];
        snprintf(path, sizeof(path), "firmware.%zu.file", i);
        char *looked = NULL;
        const char *file = ystr(e, "file");
        f->path = find_data_file(c, o, file, &looked);
        if (!f->path) {
            r = cfg_err(c, errp, path, "firmware file '%s' not found or not readable (looked in %s)", file, looked);
            free(looked);
            return r;
        }
        free(looked);
        c->n_firmware++;
        hub_fw_format fmt = (hub_fw_format)yenum(e, "format", fw_formats, HUB_FW_AUTO);
        f->format = fmt == HUB_FW_AUTO ? sniff_format(f->path) : fmt;
        snprintf(path, sizeof(path), "firmware.%zu.address", i);
        if (ystr(e, "address")) {
            if (f->format == HUB_FW_ELF)
                return cfg_err(c, errp, path, "an ELF image loads at its own addresses; 'address' is for raw "
                               "images (format: raw)");
            if ((r = parse_addr(c, errp, path, ystr(e, "address"), &f->address)) < 0)
                return r;
            f->has_address = true;
        } else if (f->format == HUB_FW_RAW) {
            f->address = c->ram[0].base;
            f->has_address = true;
        }
    }
    if (ystr(m, "reset_pc")) {
        if ((r = parse_addr(c, errp, "reset_pc", ystr(m, "reset_pc"), &c->reset_pc)) < 0)
            return r;
        if (c->reset_pc & 1)
            return cfg_err(c, errp, "reset_pc", "0x%" PRIx64 " is not 2-byte aligned", c->reset_pc);
        c->has_reset_pc = true;
    }
    c->bootargs = ystr(m, "bootargs") ? strdup(ystr(m, "bootargs")) : NULL;
    if ((r = convert_boot(c, o, errp)) < 0)
        return r;

    const ynode *devs = ytree_map_get(m, "devices");
    size_t n_devs = devs ? devs->n_items : 0;
    c->devices = calloc(n_devs ? n_devs : 1, sizeof(*c->devices));
    for (size_t i = 0; i < n_devs; i++) {
        c->n_devices++;
        if ((r = convert_device(c, o, devs->items[i], i, &c->devices[i], errp)) < 0)
            return r;
    }

    c->console = -1;
    const char *console = ystr(m, "console");
    if (console && strcmp(console, "none")) {
        for (size_t i = 0; i < c->n_devices; i++)
            if (!strcmp(c->devices[i].dev.name, console))
                c->console = (int)i;
        if (c->console < 0)
            return cfg_err(c, errp, "console", "no device named '%s' (expected a device name or 'none')", console);
        c->devices[c->console].dev.console = true;
    }
    const ynode *cv = ytree_map_get(m, "curve");
    if (cv) {
        char z85[PLX_CURVE_Z85];
        if ((r = read_key_file(c, o, "curve.secret_key_file", ystr(cv, "secret_key_file"), true, z85, errp)) < 0)
            return r;
        plx_curve_decode(z85, c->curve_secret);
        c->has_curve_secret = true;
        explicit_bzero(z85, sizeof(z85));
    }
    if (yenum(m, "sandbox", sandbox_levels, 0))
        for (size_t i = 0; i < c->n_devices; i++)
            c->devices[i].dev.strict = true;

    /* What is known before the devices start: RAM and the built-in devices must not overlap. */
    named_range rs[64];
    size_t n = 0;
    for (size_t i = 0; i < c->n_ram && n < 60; i++) {
        rs[n++] = (named_range){ hub_xasprintf("RAM '%s'", c->ram[i].name), hub_xasprintf("ram.%zu.base", i),
                                 c->ram[i].base, c->ram[i].size };
    }
    if (c->clint)
        rs[n++] = (named_range){ strdup("clint"), strdup("clint.base"), c->clint_base, CLINT_SIZE };
    if (c->plic)
        rs[n++] = (named_range){ strdup("plic"), strdup("plic.base"), c->plic_base, PLIC_SIZE };
    if (c->poweroff)
        rs[n++] = (named_range){ strdup("poweroff"), strdup("poweroff.base"), c->poweroff_base, POWEROFF_SIZE };
    r = check_range_overlaps(c, rs, n, errp);
    for (size_t i = 0; i < n; i++) {
        free(rs[i].what);
        free(rs[i].path);
    }
    return r;
}

/* ---- load ---- */
static char *read_file(const char *path, size_t *len, Error **errp)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        error_setg(errp, "%s: cannot open: %s", path, strerror(errno));
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
        error_setg(errp, "%s: read error", path);
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
                      const char *option, Error **errp)
{
    char *text = is_file ? realpath(value, NULL) : NULL;
    if (!text)
        text = strdup(value);
    char *q = yaml_quote(text);
    char *v = as_list ? hub_xasprintf("[{file: %s}]", q) : strdup(q);
    Error *serr = NULL;
    int r = ytree_set(c->tree, key, v, option, &serr);
    if (r < 0) {
        error_setg(errp, "%s: %s", option, error_get_pretty(serr));
        error_free(serr);
    }
    free(text);
    free(q);
    free(v);
    return r < 0 ? -EINVAL : 0;
}

static int apply_options(hub_mconfig *c, const hub_mconfig_opts *o, Error **errp)
{
    int r = 0;
    if (o->firmware)
        r = set_option(c, "firmware", o->firmware, true, true, "--firmware", errp);
    if (!r && o->kernel)
        r = set_option(c, "kernel", o->kernel, true, false, "--kernel", errp);
    if (!r && o->initrd)
        r = set_option(c, "initrd", o->initrd, true, false, "--initrd", errp);
    if (!r && o->dtb)
        r = set_option(c, "dtb", o->dtb, true, false, "--dtb", errp);
    if (!r && o->append)
        r = set_option(c, "bootargs", o->append, false, false, "--append", errp);
    return r;
}

int hub_mconfig_load(const char *path, const hub_mconfig_opts *o, hub_mconfig **out, Error **errp)
{
    hub_mconfig *c = calloc(1, sizeof(*c));
    c->path = strdup(path);
    char *slash = strrchr(c->path, '/');
    c->dir = slash ? strndup(c->path, (size_t)(slash - c->path) + (slash == c->path)) : strdup(".");
    c->console = -1;
    int r = -EINVAL;
    size_t len;
    char *text = read_file(path, &len, errp);
    if (!text)
        goto fail;
    unsigned line = 0;
    Error *perr = NULL;
    c->tree = ytree_parse(text, len, NULL, &line, &perr);
    free(text);
    if (!c->tree) {
        error_setg(errp, "%s:%u: %s", path, line, error_get_pretty(perr));
        error_free(perr);
        goto fail;
    }
    if (c->tree->kind != YNODE_MAP) {
        error_setg(errp, "%s:%u: expected a mapping at the top (keys such as ram:, firmware:, devices:)", path,
                         c->tree->line);
        goto fail;
    }
    for (size_t i = 0; o && i < o->n_sets; i++) {
        const char *eq = strchr(o->sets[i], '=');
        if (!eq || eq == o->sets[i]) {
            error_setg(errp, "--set %s: expected KEY=VALUE, e.g. --set cpu.insns_per_ns=0.5", o->sets[i]);
            goto fail;
        }
        char *key = strndup(o->sets[i], (size_t)(eq - o->sets[i]));
        Error *serr = NULL;
        r = ytree_set(c->tree, key, eq + 1, o->sets[i], &serr);
        free(key);
        if (r < 0) {
            error_setg(errp, "--set %s: %s", o->sets[i], error_get_pretty(serr));
            error_free(serr);
            r = -EINVAL;
            goto fail;
        }
    }
    if (o && (r = apply_options(c, o, errp)) < 0)
        goto fail;
    r = -EINVAL;

    kpath kp = { .n = 0 };
    if ((r = check(c, c->tree, &v_machine, &kp, errp)) < 0 || (r = convert(c, o, errp)) < 0)
        goto fail;
    *out = c;
    return 0;
fail:
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
        hub_device_config_clear(&d->dev);
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
