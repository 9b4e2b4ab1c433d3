/* --trace: Chrome/Perfetto trace events, each built with json-c and written as it happens. */
#define _GNU_SOURCE
#include "trace.h"

#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dlog.h"

#define TID_CPU 1
#define TID_CONSOLE 2
#define TID_HUB_DEVICES 3       /* CLINT, PLIC, poweroff: the devices inside the hub */
#define TID_FIRST_DEVICE 10
#define MAX_TRACKS 256
#define CONSOLE_LINE_MAX 512

/* Reads of one register that keep returning the same value (a guest polling) become one slice. */
typedef struct poll_run {
    bool open;
    hub_cpu_access_info a;      /* the first read; region points into the memory map (lives as long) */
    int tid;
    uint64_t start_ns, end_ns;  /* host: the first read's start, the last one's end */
    uint64_t count;
} poll_run;

typedef struct track {
    char *name;
    int tid;
} track;

struct hub_trace {
    FILE *f;
    char *path;
    bool first;                 /* no event written yet (no comma before the next) */
    bool write_error;
    int pid;
    uint64_t t0_ns;
    track tracks[MAX_TRACKS];
    size_t n_tracks;
    int next_tid;
    char line[CONSOLE_LINE_MAX];
    size_t line_len;
    poll_run run;
    hub_cpu_observer obs;
    hub_devmgr_observer dev_obs;
};

static void flush_run(hub_trace *t);

static uint64_t host_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static double us_since(const hub_trace *t, uint64_t ns)
{
    return ns >= t->t0_ns ? (double)(ns - t->t0_ns) / 1000.0 : 0.0;
}

/* Write @ev (consumed) as the next element of traceEvents (after a pending run of reads: events stay in order). */
static void emit(hub_trace *t, json_object *ev)
{
    if (t->run.open)
        flush_run(t);
    const char *s = json_object_to_json_string_ext(ev, JSON_C_TO_STRING_PLAIN);
    if (fprintf(t->f, "%s\n%s", t->first ? "" : ",", s) < 0)
        t->write_error = true;
    t->first = false;
    json_object_put(ev);
}

static json_object *event(hub_trace *t, const char *ph, const char *name, const char *cat, int tid, double ts)
{
    json_object *ev = json_object_new_object();
    json_object_object_add(ev, "name", json_object_new_string(name));
    if (cat)
        json_object_object_add(ev, "cat", json_object_new_string(cat));
    json_object_object_add(ev, "ph", json_object_new_string(ph));
    json_object_object_add(ev, "pid", json_object_new_int(t->pid));
    json_object_object_add(ev, "tid", json_object_new_int(tid));
    json_object_object_add(ev, "ts", json_object_new_double(ts));
    return ev;
}

static void name_track(hub_trace *t, int tid, const char *name, int sort)
{
    json_object *ev = event(t, "M", "thread_name", NULL, tid, 0);
    json_object *args = json_object_new_object();
    json_object_object_add(args, "name", json_object_new_string(name));
    json_object_object_add(ev, "args", args);
    emit(t, ev);
    ev = event(t, "M", "thread_sort_index", NULL, tid, 0);
    args = json_object_new_object();
    json_object_object_add(args, "sort_index", json_object_new_int(sort));
    json_object_object_add(ev, "args", args);
    emit(t, ev);
}

/* The track of device @name (a region "uart0.regs" belongs to device "uart0"); made on first use. */
static int device_tid(hub_trace *t, const char *name, size_t len)
{
    for (size_t i = 0; i < t->n_tracks; i++)
        if (strlen(t->tracks[i].name) == len && !strncmp(t->tracks[i].name, name, len))
            return t->tracks[i].tid;
    if (t->n_tracks == MAX_TRACKS)
        return TID_HUB_DEVICES;
    track *k = &t->tracks[t->n_tracks++];
    k->name = strndup(name, len);
    k->tid = t->next_tid++;
    char *label;
    if (asprintf(&label, "device %s", k->name) < 0)
        abort();
    name_track(t, k->tid, label, k->tid);
    free(label);
    return k->tid;
}

static int region_tid(hub_trace *t, const char *region)
{
    if (!region || !strchr(region, '.'))
        return TID_HUB_DEVICES;     /* the hub's own devices have plain names */
    return device_tid(t, region, (size_t)(strchr(region, '.') - region));
}

static void add_u64(json_object *o, const char *key, uint64_t v)
{
    json_object_object_add(o, key, json_object_new_uint64(v));
}

static void add_hex(json_object *o, const char *key, uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "0x%" PRIx64, v);
    json_object_object_add(o, key, json_object_new_string(buf));
}

static void flush_run(hub_trace *t)
{
    poll_run *r = &t->run;
    const hub_cpu_access_info *a = &r->a;
    r->open = false;
    json_object *ev = event(t, "X", a->write ? "write" : "read", "mmio", r->tid, us_since(t, r->start_ns));
    json_object_object_add(ev, "dur", json_object_new_double((double)(r->end_ns - r->start_ns) / 1000.0));
    json_object *args = json_object_new_object();
    json_object_object_add(args, "region", json_object_new_string(a->region ? a->region : "(unassigned)"));
    add_hex(args, "addr", a->addr);
    json_object_object_add(args, "size", json_object_new_int((int)a->size));
    add_hex(args, "value", a->value);
    add_u64(args, "vtime_ns", a->vtime_ns);
    if (r->count > 1)
        add_u64(args, "count", r->count);      /* this many reads in a row, each returning value */
    if (a->error)
        json_object_object_add(args, "error", json_object_new_boolean(1));
    json_object_object_add(ev, "args", args);
    emit(t, ev);
}

static void on_access(void *opaque, const hub_cpu_access_info *a, uint64_t pc, unsigned priv)
{
    hub_trace *t = opaque;
    poll_run *r = &t->run;
    uint64_t end = host_ns();
    if (r->open && !a->write && !a->error && !r->a.write && !r->a.error && a->addr == r->a.addr &&
        a->size == r->a.size && a->value == r->a.value) {
        r->end_ns = end;
        r->count++;
        return;
    }
    if (r->open)
        flush_run(t);
    *r = (poll_run){ .open = true, .a = *a, .tid = region_tid(t, a->region), .start_ns = end - a->host_ns,
                     .end_ns = end, .count = 1 };
}

static void on_trap(void *opaque, const hub_cpu_trap_info *tr)
{
    hub_trace *t = opaque;
    char name[80];
    snprintf(name, sizeof(name), "%s %" PRIu64 " (%s)", tr->interrupt ? "interrupt" : "exception", tr->cause,
             hub_cause_name(tr->interrupt, tr->cause));
    json_object *ev = event(t, "i", name, tr->interrupt ? "interrupt" : "exception", TID_CPU, us_since(t, host_ns()));
    json_object_object_add(ev, "s", json_object_new_string("t"));
    json_object *args = json_object_new_object();
    add_hex(args, "epc", tr->epc);
    add_hex(args, "tval", tr->tval);
    add_u64(args, "vtime_ns", tr->vtime_ns);
    json_object_object_add(ev, "args", args);
    emit(t, ev);
}

static void on_dma(void *opaque, const char *device, uint64_t addr, uint32_t len, bool write, bool ok,
                   uint64_t host_ns, uint64_t vtime_ns)
{
    json_object *args = json_object_new_object();
    json_object_object_add(args, "dir", json_object_new_string(write ? "write to RAM" : "read from RAM"));
    add_hex(args, "addr", addr);
    add_u64(args, "len", len);
    if (!ok)
        json_object_object_add(args, "refused", json_object_new_boolean(1));
    hub_trace_device_event(opaque, device, "dma", (double)host_ns / 1000.0, vtime_ns, args);
}

static void on_timer(void *opaque, const char *device, uint32_t id, uint64_t host_ns, uint64_t vtime_ns)
{
    json_object *args = json_object_new_object();
    add_u64(args, "id", id);
    hub_trace_device_event(opaque, device, "timer", (double)host_ns / 1000.0, vtime_ns, args);
}

static void on_grant(void *opaque, const char *device, uint64_t next_ns, uint64_t host_ns, uint64_t vtime_ns)
{
    json_object *args = json_object_new_object();
    add_u64(args, "next_ns", next_ns);
    hub_trace_device_event(opaque, device, "grant", (double)host_ns / 1000.0, vtime_ns, args);
}

static void on_failed(void *opaque, const char *device, const char *why, uint64_t vtime_ns)
{
    json_object *args = json_object_new_object();
    json_object_object_add(args, "why", json_object_new_string(why));
    hub_trace_device_event(opaque, device, "failed", 0, vtime_ns, args);
}

static void on_restarted(void *opaque, const char *device, unsigned count, bool ok, int pid, uint64_t host_ns,
                         uint64_t vtime_ns)
{
    hub_trace *t = opaque;
    json_object *args = json_object_new_object();
    add_u64(args, "count", count);
    json_object_object_add(args, "ok", json_object_new_boolean(ok));
    if (ok)
        json_object_object_add(args, "pid", json_object_new_int(pid));
    hub_trace_device_event(t, device, "restart", (double)host_ns / 1000.0, vtime_ns, args);
    if (ok)
        hub_trace_device(t, device, pid);
}

int
hub_trace_open(const char *path, hub_trace **out, Error **errp)
{
    hub_trace *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->f = fopen(path, "w");
    if (!t->f) {
        int e = errno;
        error_setg(errp, "cannot write the trace %s: %s", path, strerror(e));
        free(t);
        return -e;
    }
    t->path = strdup(path);
    t->first = true;
    t->pid = (int)getpid();
    t->t0_ns = host_ns();
    t->next_tid = TID_FIRST_DEVICE;
    fputs("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[", t->f);
    json_object *ev = event(t, "M", "process_name", NULL, 0, 0);
    json_object *args = json_object_new_object();
    json_object_object_add(args, "name", json_object_new_string("plexus"));
    json_object_object_add(ev, "args", args);
    emit(t, ev);
    name_track(t, TID_CPU, "cpu", TID_CPU);
    name_track(t, TID_CONSOLE, "console", TID_CONSOLE);
    name_track(t, TID_HUB_DEVICES, "hub devices (clint, plic, poweroff)", TID_HUB_DEVICES);
    t->obs = (hub_cpu_observer){ .events = HUB_CPU_OBS_MMIO | HUB_CPU_OBS_MMIO_TIME | HUB_CPU_OBS_TRAP,
                                 .access = on_access, .trap = on_trap };
    t->dev_obs = (hub_devmgr_observer){ .dma = on_dma, .timer = on_timer, .grant = on_grant, .failed = on_failed,
                                        .restarted = on_restarted };
    *out = t;
    return 0;
}

int
hub_trace_close(hub_trace *t)
{
    if (!t)
        return 0;
    if (t->line_len)
        hub_trace_console(t, "\n", 1, 0);
    if (t->run.open)
        flush_run(t);
    fputs("\n]}\n", t->f);
    int r = t->write_error || ferror(t->f) ? -EIO : 0;
    if (fclose(t->f) != 0)
        r = -errno;
    for (size_t i = 0; i < t->n_tracks; i++)
        free(t->tracks[i].name);
    free(t->path);
    free(t);
    return r;
}

const hub_cpu_observer *
hub_trace_observer(hub_trace *t)
{
    return t ? &t->obs : NULL;
}

const hub_devmgr_observer *
hub_trace_devmgr_observer(hub_trace *t)
{
    return t ? &t->dev_obs : NULL;
}

void
hub_trace_device(hub_trace *t, const char *name, int os_pid)
{
    if (!t)
        return;
    int tid = device_tid(t, name, strlen(name));
    if (os_pid > 0) {
        char *label;
        if (asprintf(&label, "device %s (process %d)", name, os_pid) < 0)
            abort();
        name_track(t, tid, label, tid);
        free(label);
    }
}

void
hub_trace_irq(hub_trace *t, unsigned line, int level)
{
    if (!t)
        return;
    char name[32];
    snprintf(name, sizeof(name), "irq %u", line);
    json_object *ev = event(t, "C", name, "irq", 0, us_since(t, host_ns()));
    json_object *args = json_object_new_object();
    json_object_object_add(args, "level", json_object_new_int(level));
    json_object_object_add(ev, "args", args);
    emit(t, ev);
}

void
hub_trace_console(hub_trace *t, const char *bytes, size_t n, uint64_t vtime_ns)
{
    if (!t)
        return;
    for (size_t i = 0; i < n; i++) {
        char c = bytes[i];
        bool end = c == '\n' || t->line_len == CONSOLE_LINE_MAX - 1;
        if (c != '\n' && c != '\r')
            t->line[t->line_len++] = c;
        if (!end)
            continue;
        t->line[t->line_len] = 0;
        json_object *ev = event(t, "i", "console", "console", TID_CONSOLE, us_since(t, host_ns()));
        json_object_object_add(ev, "s", json_object_new_string("t"));
        json_object *args = json_object_new_object();
        json_object_object_add(args, "text", json_object_new_string(t->line));
        add_u64(args, "vtime_ns", vtime_ns);
        json_object_object_add(ev, "args", args);
        emit(t, ev);
        t->line_len = 0;
    }
}

void
hub_trace_device_event(hub_trace *t, const char *device, const char *kind, double dur_us, uint64_t vtime_ns,
                       json_object *args)
{
    if (!t) {
        json_object_put(args);
        return;
    }
    double now = us_since(t, host_ns());
    json_object *ev = event(t, dur_us > 0 ? "X" : "i", kind, kind, device_tid(t, device, strlen(device)),
                            dur_us > 0 ? now - dur_us : now);
    if (dur_us > 0)
        json_object_object_add(ev, "dur", json_object_new_double(dur_us));
    else
        json_object_object_add(ev, "s", json_object_new_string("t"));
    if (!args)
        args = json_object_new_object();
    add_u64(args, "vtime_ns", vtime_ns);
    json_object_object_add(ev, "args", args);
    emit(t, ev);
}
