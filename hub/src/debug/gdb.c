/*
 * GDB remote serial protocol (the packets GDB's documentation lists under "Remote Protocol"): framing with
 * checksums and acknowledgements (or none after QStartNoAckMode), a RISC-V 64 target description, registers,
 * memory through the hart's view, breakpoints, watchpoints, step, continue, interrupt, detach, kill and
 * monitor commands. Anything the peer sends is untrusted: every field is parsed with bounds, a malformed
 * packet gets an error reply (or a NAK), never more.
 */
#define _GNU_SOURCE
#include "gdb.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "listen.h"

#define PACKET_MAX 4096         /* what qSupported announces as PacketSize; longer packets are refused */
#define INTERRUPT 0x03
#define SIGINT_NO 2
#define SIGTRAP_NO 5
#define SIGSEGV_NO 11
#define N_GPRS 33               /* x0..x31, pc: the `g` packet; the rest goes through `p` */

/* Errors in replies: EXX with an errno-like number. */
#define E_FAULT "E0e"           /* nothing readable there */
#define E_ACCESS "E0d"          /* a device register: refused (monitor `debug-io on` allows it) */
#define E_INVAL "E16"           /* malformed */
#define E_NOSPC "E1c"

typedef enum { RX_IDLE, RX_DATA, RX_SUM1, RX_SUM2 } rx_state;

struct hub_gdb {
    hub_gdb_host host;
    int listen_fd, conn_fd, ep_fd;
    char *where;
    char *unix_path;
    char *tdesc;
    size_t tdesc_len;

    /* receiving */
    rx_state rx;
    char pkt[PACKET_MAX + 1];
    size_t pkt_len;
    bool pkt_overflow;
    uint8_t sum, sum_rx;
    char queued[PACKET_MAX + 1];    /* one packet that arrived while the guest ran */
    size_t queued_len;
    bool have_queued;

    bool no_ack;
    bool stopped;                   /* the guest is stopped (for us or someone else) */
    bool want_stop_reply;           /* after c/s/vCont: report the next stop */
    hub_cpu_debug_event last;       /* the last stop, for `?` */
    bool swbreak_ok;                /* the debugger understands swbreak/hwbreak stop reasons */
    uint64_t hw_bps[64];            /* addresses inserted with Z1 (for hwbreak) */
    size_t n_hw_bps;
};

/* ---- the target description ----------------------------------------------------------------------- */

static const char *const gpr_names[32] = {
    "zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "fp", "s1", "a0", "a1", "a2", "a3", "a4", "a5",
    "a6", "a7", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "t3", "t4", "t5", "t6",
};
static const char *const fpr_names[32] = {
    "ft0", "ft1", "ft2", "ft3", "ft4", "ft5", "ft6", "ft7", "fs0", "fs1", "fa0", "fa1", "fa2", "fa3", "fa4",
    "fa5", "fa6", "fa7", "fs2", "fs3", "fs4", "fs5", "fs6", "fs7", "fs8", "fs9", "fs10", "fs11", "ft8", "ft9",
    "ft10", "ft11",
};

/* GDB's RISC-V features: org.gnu.gdb.riscv.cpu, .fpu (f registers and the FP CSRs), .csr, .virtual (priv). */
static char *build_tdesc(size_t *len)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    if (!f)
        return NULL;
    fputs("<?xml version=\"1.0\"?>\n<!DOCTYPE target SYSTEM \"gdb-target.dtd\">\n<target version=\"1.0\">\n"
          "<architecture>riscv:rv64</architecture>\n<feature name=\"org.gnu.gdb.riscv.cpu\">\n", f);
    for (int i = 0; i < 32; i++)
        fprintf(f, "<reg name=\"%s\" bitsize=\"64\" regnum=\"%d\" type=\"%s\"/>\n", gpr_names[i], i,
                i == 1 ? "code_ptr" : i >= 2 && i <= 4 ? "data_ptr" : "int");
    fprintf(f, "<reg name=\"pc\" bitsize=\"64\" regnum=\"%d\" type=\"code_ptr\"/>\n</feature>\n", HUB_REG_PC);
    fputs("<feature name=\"org.gnu.gdb.riscv.fpu\">\n", f);
    for (int i = 0; i < 32; i++)
        fprintf(f, "<reg name=\"%s\" bitsize=\"64\" regnum=\"%d\" type=\"ieee_double\"/>\n", fpr_names[i],
                HUB_REG_F0 + i);
    size_t n;
    const hub_csr_name *csrs = hub_cpu_csrs(&n);
    for (size_t i = 0; i < n; i++)
        if (csrs[i].csr <= HUB_CSR_FCSR)
            fprintf(f, "<reg name=\"%s\" bitsize=\"64\" regnum=\"%u\" type=\"int\" group=\"float\"/>\n",
                    csrs[i].name, HUB_REG_CSR0 + csrs[i].csr);
    fputs("</feature>\n<feature name=\"org.gnu.gdb.riscv.csr\">\n", f);
    for (size_t i = 0; i < n; i++)
        if (csrs[i].csr > HUB_CSR_FCSR)
            fprintf(f, "<reg name=\"%s\" bitsize=\"64\" regnum=\"%u\" type=\"int\" group=\"system\"/>\n",
                    csrs[i].name, HUB_REG_CSR0 + csrs[i].csr);
    fprintf(f, "</feature>\n<feature name=\"org.gnu.gdb.riscv.virtual\">\n"
            "<reg name=\"priv\" bitsize=\"64\" regnum=\"%d\" type=\"int\" group=\"system\"/>\n</feature>\n"
            "</target>\n", HUB_REG_PRIV);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* ---- hex -------------------------------------------------------------------------------------------- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* A hex number of at most 16 digits at *@p; advances *@p. False if there is none or it is too long. */
static bool parse_hex(const char **p, uint64_t *out)
{
    uint64_t v = 0;
    int n = 0, d;
    while ((d = hexval(**p)) >= 0) {
        if (++n > 16)
            return false;
        v = v << 4 | (uint64_t)d;
        (*p)++;
    }
    *out = v;
    return n > 0;
}

static bool expect(const char **p, char c)
{
    if (**p != c)
        return false;
    (*p)++;
    return true;
}

/* @n bytes from hex text at @p (exactly 2n digits). */
static bool unhex(const char *p, size_t digits, uint8_t *out, size_t n)
{
    if (digits != 2 * n)
        return false;
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(p[2 * i]), lo = hexval(p[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

static void put_hex_bytes(FILE *f, const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%02x", b[i]);
}

static void put_reg(FILE *f, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        fprintf(f, "%02x", (unsigned)(v >> (8 * i)) & 0xff);
}

/* ---- sending ------------------------------------------------------------------------------------------ */

static void drop_client(hub_gdb *g);

static void send_raw(hub_gdb *g, const char *s, size_t n)
{
    while (n && g->conn_fd >= 0) {
        ssize_t w = send(g->conn_fd, s, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct timeval tv = { 1, 0 };
            fd_set ws;
            FD_ZERO(&ws);
            FD_SET(g->conn_fd, &ws);
            if (select(g->conn_fd + 1, NULL, &ws, NULL, &tv) <= 0) {
                drop_client(g);
                return;
            }
            continue;
        }
        if (w <= 0) {
            drop_client(g);
            return;
        }
        s += w, n -= (size_t)w;
    }
}

/* Frame @body as $body#xx, escaping what the protocol reserves. */
static void send_packet(hub_gdb *g, const char *body, size_t n)
{
    char *out = malloc(2 * n + 5);
    if (!out)
        return;
    size_t k = 0;
    uint8_t sum = 0;
    out[k++] = '$';
    for (size_t i = 0; i < n; i++) {
        char c = body[i];
        if (c == '$' || c == '#' || c == '}' || c == '*') {
            out[k++] = '}';
            sum += '}';
            c ^= 0x20;
        }
        out[k++] = c;
        sum += (uint8_t)c;
    }
    k += (size_t)sprintf(out + k, "#%02x", sum);
    send_raw(g, out, k);
    free(out);
}

static void reply(hub_gdb *g, const char *s)
{
    send_packet(g, s, strlen(s));
}

/* ---- stop replies ------------------------------------------------------------------------------------- */

static bool is_hw_bp(const hub_gdb *g, uint64_t pc)
{
    for (size_t i = 0; i < g->n_hw_bps; i++)
        if (g->hw_bps[i] == pc)
            return true;
    return false;
}

static void send_stop_reply(hub_gdb *g)
{
    const hub_cpu_debug_event *e = &g->last;
    char buf[96];
    switch (e->reason) {
    case HUB_CPU_STOP_BREAK:
        snprintf(buf, sizeof(buf), "T%02xthread:1;", SIGINT_NO);
        break;
    case HUB_CPU_STOP_BREAKPOINT:
        snprintf(buf, sizeof(buf), "T%02xthread:1;%s", SIGTRAP_NO,
                 !g->swbreak_ok ? "" : is_hw_bp(g, e->pc) ? "hwbreak:;" : "swbreak:;");
        break;
    case HUB_CPU_STOP_WATCH:
        snprintf(buf, sizeof(buf), "T%02xthread:1;%s:%" PRIx64 ";", SIGTRAP_NO,
                 e->watch_kind == HUB_WATCH_WRITE ? "watch" : e->watch_kind == HUB_WATCH_READ ? "rwatch" : "awatch",
                 e->watch_addr);
        break;
    default:
        snprintf(buf, sizeof(buf), "T%02xthread:1;", SIGTRAP_NO);
        break;
    }
    reply(g, buf);
}

void
hub_gdb_stopped(hub_gdb *g, const hub_cpu_debug_event *ev)
{
    if (!g)
        return;
    g->stopped = true;
    g->last = *ev;
    if (g->want_stop_reply && g->conn_fd >= 0) {
        g->want_stop_reply = false;
        send_stop_reply(g);
    }
}

void
hub_gdb_exited(hub_gdb *g, int status, bool fatal)
{
    if (!g || g->conn_fd < 0)
        return;
    char buf[8];
    snprintf(buf, sizeof(buf), fatal ? "X%02x" : "W%02x", fatal ? SIGSEGV_NO : status & 0xff);
    reply(g, buf);
    close(g->conn_fd);          /* not drop_client(): the guest is not to be resumed */
    epoll_ctl(g->ep_fd, EPOLL_CTL_DEL, g->conn_fd, NULL);
    g->conn_fd = -1;
}

void
hub_gdb_running(hub_gdb *g)
{
    if (g)
        g->stopped = false;
}

static void resume(hub_gdb *g, bool step)
{
    if (step)
        hub_cpu_debug_step(g->host.cpu);
    g->want_stop_reply = true;
    g->stopped = false;
    g->host.resume(g->host.opaque);
}

/* ---- commands ----------------------------------------------------------------------------------------- */

static unsigned mem_flags(hub_gdb *g)
{
    return g->host.io_allowed && g->host.io_allowed(g->host.opaque) ? HUB_DBG_IO : 0;
}

static void cmd_read_regs(hub_gdb *g)
{
    char buf[N_GPRS * 16 + 1];
    FILE *f = fmemopen(buf, sizeof(buf), "w");
    for (unsigned r = 0; r < N_GPRS; r++) {
        uint64_t v = 0;
        hub_cpu_get_reg(g->host.cpu, r, &v);
        put_reg(f, v);
    }
    fclose(f);
    send_packet(g, buf, N_GPRS * 16);
}

static void cmd_write_regs(hub_gdb *g, const char *p, size_t n)
{
    if (n % 16 || n / 16 > N_GPRS) {
        reply(g, E_INVAL);
        return;
    }
    uint64_t vals[N_GPRS];
    for (size_t r = 0; r < n / 16; r++) {
        uint8_t b[8];
        if (!unhex(p + 16 * r, 16, b, 8)) {
            reply(g, E_INVAL);
            return;
        }
        vals[r] = 0;
        for (int i = 7; i >= 0; i--)
            vals[r] = vals[r] << 8 | b[i];
    }
    for (size_t r = 0; r < n / 16; r++)
        hub_cpu_set_reg(g->host.cpu, (unsigned)r, vals[r]);
    reply(g, "OK");
}

static void cmd_read_reg(hub_gdb *g, const char *p)
{
    uint64_t reg, v;
    if (!parse_hex(&p, &reg) || *p || reg > UINT32_MAX) {
        reply(g, E_INVAL);
        return;
    }
    if (hub_cpu_get_reg(g->host.cpu, (unsigned)reg, &v) < 0) {
        reply(g, "");     /* no such register: GDB marks it unavailable */
        return;
    }
    char buf[17];
    FILE *f = fmemopen(buf, sizeof(buf), "w");
    put_reg(f, v);
    fclose(f);
    send_packet(g, buf, 16);
}

static void cmd_write_reg(hub_gdb *g, const char *p)
{
    uint64_t reg, v = 0;
    uint8_t b[8];
    if (!parse_hex(&p, &reg) || !expect(&p, '=') || reg > UINT32_MAX || !unhex(p, strlen(p), b, 8)) {
        reply(g, E_INVAL);
        return;
    }
    for (int i = 7; i >= 0; i--)
        v = v << 8 | b[i];
    reply(g, hub_cpu_set_reg(g->host.cpu, (unsigned)reg, v) < 0 ? E_INVAL : "OK");
}

static const char *mem_error(int r)
{
    return r == -EPERM ? E_ACCESS : E_FAULT;
}

static void cmd_read_mem(hub_gdb *g, const char *p)
{
    uint64_t addr, len;
    if (!parse_hex(&p, &addr) || !expect(&p, ',') || !parse_hex(&p, &len) || *p) {
        reply(g, E_INVAL);
        return;
    }
    if (len > PACKET_MAX / 2)
        len = PACKET_MAX / 2;   /* GDB asks again for the rest */
    uint8_t data[PACKET_MAX / 2];
    int r = hub_cpu_debug_read(g->host.cpu, addr, data, len, mem_flags(g));
    if (r < 0) {
        reply(g, mem_error(r));
        return;
    }
    char out[PACKET_MAX + 1];
    FILE *f = fmemopen(out, sizeof(out), "w");
    put_hex_bytes(f, data, len);
    fclose(f);
    send_packet(g, out, 2 * len);
}

/* M addr,len:hex and X addr,len:binary (already unescaped by the framing layer). */
static void cmd_write_mem(hub_gdb *g, const char *p, size_t n, bool binary)
{
    const char *end = p + n;
    uint64_t addr, len;
    if (!parse_hex(&p, &addr) || !expect(&p, ',') || !parse_hex(&p, &len) || !expect(&p, ':') ||
        len > PACKET_MAX) {
        reply(g, E_INVAL);
        return;
    }
    uint8_t data[PACKET_MAX];
    size_t have = (size_t)(end - p);
    if (binary ? have != len : !unhex(p, have, data, len)) {
        reply(g, E_INVAL);
        return;
    }
    if (binary)
        memcpy(data, p, len);
    if (!len) {
        reply(g, "OK");
        return;
    }
    int r = hub_cpu_debug_write(g->host.cpu, addr, data, len, mem_flags(g));
    reply(g, r < 0 ? mem_error(r) : "OK");
}

static void note_hw_bp(hub_gdb *g, uint64_t addr, bool add)
{
    for (size_t i = 0; i < g->n_hw_bps; i++)
        if (g->hw_bps[i] == addr) {
            if (!add)
                g->hw_bps[i] = g->hw_bps[--g->n_hw_bps];
            return;
        }
    if (add && g->n_hw_bps < sizeof(g->hw_bps) / sizeof(g->hw_bps[0]))
        g->hw_bps[g->n_hw_bps++] = addr;
}

/* Z/z type,addr,kind */
static void cmd_point(hub_gdb *g, const char *p, bool insert)
{
    uint64_t type, addr, kind;
    if (!parse_hex(&p, &type) || !expect(&p, ',') || !parse_hex(&p, &addr) || !expect(&p, ',') ||
        !parse_hex(&p, &kind) || (*p && *p != ';')) {
        reply(g, E_INVAL);
        return;
    }
    hub_cpu *cpu = g->host.cpu;
    int r;
    switch (type) {
    case 0: case 1:
        r = insert ? hub_cpu_breakpoint_insert(cpu, addr) : hub_cpu_breakpoint_remove(cpu, addr);
        if (r == -EEXIST || r == -ENOENT)
            r = 0;      /* GDB may insert twice (Z0 and Z1 at one address) or remove what is gone */
        if (!r && type == 1)
            note_hw_bp(g, addr, insert);
        break;
    case 2: case 3: case 4: {
        hub_watch_kind k = type == 2 ? HUB_WATCH_WRITE : type == 3 ? HUB_WATCH_READ : HUB_WATCH_ACCESS;
        r = insert ? hub_cpu_watchpoint_insert(cpu, addr, kind, k) : hub_cpu_watchpoint_remove(cpu, addr, kind, k);
        if (r == -EEXIST || r == -ENOENT)
            r = 0;
        break;
    }
    default:
        reply(g, "");   /* unsupported type */
        return;
    }
    reply(g, r == -ENOSPC ? E_NOSPC : r < 0 ? E_INVAL : "OK");
}

static void cmd_xfer(hub_gdb *g, const char *p)
{
    static const char prefix[] = "features:read:target.xml:";
    uint64_t off, len;
    if (strncmp(p, prefix, sizeof(prefix) - 1)) {
        reply(g, !strncmp(p, "features:read:", 14) ? "E00" : "");
        return;
    }
    p += sizeof(prefix) - 1;
    if (!parse_hex(&p, &off) || !expect(&p, ',') || !parse_hex(&p, &len) || *p) {
        reply(g, E_INVAL);
        return;
    }
    if (off >= g->tdesc_len) {
        reply(g, "l");
        return;
    }
    size_t n = g->tdesc_len - off;
    if (len > PACKET_MAX - 1)
        len = PACKET_MAX - 1;
    bool last = n <= len;
    if (!last)
        n = len;
    char *out = malloc(n + 1);
    if (!out)
        return;
    out[0] = last ? 'l' : 'm';
    memcpy(out + 1, g->tdesc + off, n);
    send_packet(g, out, n + 1);
    free(out);
}

static void cmd_monitor(hub_gdb *g, const char *hex)
{
    size_t digits = strlen(hex);
    char cmd[PACKET_MAX / 2 + 1];
    if (digits % 2 || !unhex(hex, digits, (uint8_t *)cmd, digits / 2)) {
        reply(g, E_INVAL);
        return;
    }
    cmd[digits / 2] = 0;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) {
        reply(g, E_NOSPC);
        return;
    }
    if (g->host.monitor)
        g->host.monitor(g->host.opaque, cmd, f);
    else
        fputs("no monitor here\n", f);
    fclose(f);
    /* console output: O + hex, in pieces a packet can carry */
    for (size_t at = 0; at < len;) {
        size_t n = len - at < PACKET_MAX / 2 - 1 ? len - at : PACKET_MAX / 2 - 1;
        char out[PACKET_MAX + 1];
        out[0] = 'O';
        FILE *o = fmemopen(out + 1, sizeof(out) - 1, "w");
        put_hex_bytes(o, (const uint8_t *)text + at, n);
        fclose(o);
        send_packet(g, out, 1 + 2 * n);
        at += n;
    }
    free(text);
    reply(g, "OK");
}

/* vCont;ACTION[:thread][;ACTION...]: one hart, so the first action decides (s wins over c). */
static void cmd_vcont(hub_gdb *g, const char *p)
{
    bool step = false, any = false;
    while (*p == ';') {
        p++;
        char a = *p;
        if (a != 'c' && a != 's' && a != 'C' && a != 'S') {
            reply(g, E_INVAL);
            return;
        }
        if (!any)
            step = a == 's' || a == 'S';
        any = true;
        while (*p && *p != ';')
            p++;
    }
    if (!any || *p) {
        reply(g, E_INVAL);
        return;
    }
    resume(g, step);
}

/* c [addr], s [addr], C sig[;addr], S sig[;addr] */
static void cmd_resume(hub_gdb *g, char c, const char *p)
{
    uint64_t addr, sig;
    if ((c == 'C' || c == 'S') && (!parse_hex(&p, &sig) || (*p && !expect(&p, ';')))) {
        reply(g, E_INVAL);
        return;
    }
    if (*p) {
        if (!parse_hex(&p, &addr) || *p) {
            reply(g, E_INVAL);
            return;
        }
        hub_cpu_set_reg(g->host.cpu, HUB_REG_PC, addr);
    }
    resume(g, c == 's' || c == 'S');
}

static void cmd_query(hub_gdb *g, const char *p)
{
    if (!strncmp(p, "Supported", 9)) {
        g->swbreak_ok = strstr(p, "swbreak+") != NULL;
        char buf[160];
        snprintf(buf, sizeof(buf), "PacketSize=%x;qXfer:features:read+;QStartNoAckMode+;vContSupported+%s",
                 PACKET_MAX, g->swbreak_ok ? ";swbreak+;hwbreak+" : "");
        reply(g, buf);
    } else if (!strncmp(p, "Xfer:", 5)) {
        cmd_xfer(g, p + 5);
    } else if (!strcmp(p, "Attached")) {
        reply(g, "1");
    } else if (!strcmp(p, "C")) {
        reply(g, "QC1");
    } else if (!strcmp(p, "fThreadInfo")) {
        reply(g, "m1");
    } else if (!strcmp(p, "sThreadInfo")) {
        reply(g, "l");
    } else if (!strncmp(p, "Rcmd,", 5)) {
        cmd_monitor(g, p + 5);
    } else if (!strncmp(p, "Symbol", 6)) {
        reply(g, "OK");
    } else {
        reply(g, "");
    }
}

static void drop_client(hub_gdb *g)
{
    if (g->conn_fd < 0)
        return;
    epoll_ctl(g->ep_fd, EPOLL_CTL_DEL, g->conn_fd, NULL);
    close(g->conn_fd);
    g->conn_fd = -1;
    g->rx = RX_IDLE;
    g->have_queued = false;
    g->want_stop_reply = false;
    g->no_ack = false;
    g->n_hw_bps = 0;
    /* what the debugger left behind goes, and the guest runs on */
    hub_cpu_debug_clear(g->host.cpu);
    if (g->stopped) {
        g->stopped = false;
        g->host.resume(g->host.opaque);
    }
}

static void handle_packet(hub_gdb *g, const char *p, size_t n)
{
    char c = n ? p[0] : 0;
    const char *a = p + (n ? 1 : 0);
    switch (c) {
    case '?':
        send_stop_reply(g);
        break;
    case 'g':
        cmd_read_regs(g);
        break;
    case 'G':
        cmd_write_regs(g, a, n - 1);
        break;
    case 'p':
        cmd_read_reg(g, a);
        break;
    case 'P':
        cmd_write_reg(g, a);
        break;
    case 'm':
        cmd_read_mem(g, a);
        break;
    case 'M':
        cmd_write_mem(g, a, n - 1, false);
        break;
    case 'X':
        cmd_write_mem(g, a, n - 1, true);
        break;
    case 'Z': case 'z':
        cmd_point(g, a, c == 'Z');
        break;
    case 'c': case 's': case 'C': case 'S':
        cmd_resume(g, c, a);
        break;
    case 'H': case 'T':
        reply(g, "OK");
        break;
    case 'q':
        cmd_query(g, a);
        break;
    case 'Q':
        if (!strcmp(a, "StartNoAckMode")) {
            reply(g, "OK");
            g->no_ack = true;
        } else {
            reply(g, "");
        }
        break;
    case 'v':
        if (!strcmp(a, "Cont?"))
            reply(g, "vCont;c;C;s;S");
        else if (!strncmp(a, "Cont", 4))
            cmd_vcont(g, a + 4);
        else
            reply(g, "");
        break;
    case 'D':
        reply(g, "OK");
        drop_client(g);
        break;
    case 'k':
        drop_client(g);
        g->host.kill(g->host.opaque);
        break;
    default:
        reply(g, "");
        break;
    }
}

/* The packet just received (checksum good). While the guest runs, keep it for when it stops. */
static void packet_in(hub_gdb *g)
{
    g->pkt[g->pkt_len] = 0;
    if (!g->stopped) {
        if (!g->have_queued) {      /* all-stop: a debugger sends nothing but 0x03 while the guest runs */
            memcpy(g->queued, g->pkt, g->pkt_len + 1);
            g->queued_len = g->pkt_len;
            g->have_queued = true;
        }
        return;
    }
    handle_packet(g, g->pkt, g->pkt_len);
}

static void rx_byte(hub_gdb *g, uint8_t b)
{
    switch (g->rx) {
    case RX_IDLE:
        if (b == '$') {
            g->rx = RX_DATA;
            g->pkt_len = 0;
            g->pkt_overflow = false;
            g->sum = 0;
        } else if (b == INTERRUPT) {
            if (!g->stopped)
                hub_cpu_debug_break(g->host.cpu);
        }
        /* '+', '-' and noise between packets: nothing to do (replies are not resent) */
        break;
    case RX_DATA:
        if (b == '#') {
            g->rx = RX_SUM1;
            break;
        }
        g->sum += b;
        if (g->pkt_len >= PACKET_MAX)
            g->pkt_overflow = true;
        else
            g->pkt[g->pkt_len++] = (char)b;
        break;
    case RX_SUM1:
        g->sum_rx = (uint8_t)(hexval((char)b) << 4);
        g->rx = hexval((char)b) < 0 ? RX_IDLE : RX_SUM2;
        if (g->rx == RX_IDLE && !g->no_ack)
            send_raw(g, "-", 1);
        break;
    case RX_SUM2: {
        g->rx = RX_IDLE;
        int lo = hexval((char)b);
        bool ok = lo >= 0 && (uint8_t)(g->sum_rx | lo) == g->sum && !g->pkt_overflow;
        /* unescape in place: }x stands for x ^ 0x20 */
        size_t k = 0;
        for (size_t i = 0; ok && i < g->pkt_len; i++) {
            if (g->pkt[i] == '}') {
                if (++i == g->pkt_len) {
                    ok = false;
                    break;
                }
                g->pkt[k++] = g->pkt[i] ^ 0x20;
            } else {
                g->pkt[k++] = g->pkt[i];
            }
        }
        if (!g->no_ack)
            send_raw(g, ok ? "+" : "-", 1);
        if (ok) {
            g->pkt_len = k;
            packet_in(g);
        }
        break;
    }
    }
}

static void accept_client(hub_gdb *g)
{
    int fd = accept4(g->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0)
        return;
    if (g->conn_fd >= 0) {          /* one debugger at a time */
        close(fd);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));    /* fails harmlessly on UNIX sockets */
    g->conn_fd = fd;
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
    epoll_ctl(g->ep_fd, EPOLL_CTL_ADD, fd, &ev);
    /* a debugger expects a stopped target */
    if (!g->stopped)
        hub_cpu_debug_break(g->host.cpu);
}

void
hub_gdb_service(hub_gdb *g)
{
    if (!g)
        return;
    accept_client(g);
    if (g->stopped && g->have_queued && g->conn_fd >= 0) {
        g->have_queued = false;
        handle_packet(g, g->queued, g->queued_len);
    }
    while (g->conn_fd >= 0) {
        uint8_t buf[1024];
        ssize_t n = recv(g->conn_fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {
            drop_client(g);
            break;
        }
        for (ssize_t i = 0; i < n && g->conn_fd >= 0; i++)
            rx_byte(g, buf[i]);
    }
}

/* ---- life cycle -------------------------------------------------------------------------------------- */

int
hub_gdb_open(const char *spec, const hub_gdb_host *host, hub_gdb **out, Error **errp)
{
    hub_gdb *g = calloc(1, sizeof(*g));
    if (!g)
        abort();
    g->host = *host;
    g->conn_fd = -1;
    g->ep_fd = epoll_create1(EPOLL_CLOEXEC);
    g->tdesc = build_tdesc(&g->tdesc_len);
    if (g->ep_fd < 0 || !g->tdesc)
        abort();                /* out of descriptors or memory at start-up */
    g->listen_fd = hub_listen("gdb", spec, true, &g->where, errp);
    if (g->listen_fd < 0) {
        int r = g->listen_fd;
        hub_gdb_close(g);
        return r;
    }
    if (!strncmp(spec, "unix:", 5))
        g->unix_path = strdup(spec + 5);
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = g->listen_fd };
    epoll_ctl(g->ep_fd, EPOLL_CTL_ADD, g->listen_fd, &ev);
    *out = g;
    return 0;
}

void
hub_gdb_close(hub_gdb *g)
{
    if (!g)
        return;
    if (g->conn_fd >= 0)
        close(g->conn_fd);
    if (g->listen_fd >= 0)
        close(g->listen_fd);
    if (g->ep_fd >= 0)
        close(g->ep_fd);
    if (g->unix_path)
        unlink(g->unix_path);
    free(g->unix_path);
    free(g->where);
    free(g->tdesc);
    free(g);
}

const char *
hub_gdb_where(const hub_gdb *g)
{
    return g->where;
}

int
hub_gdb_fd(const hub_gdb *g)
{
    return g->ep_fd;
}

bool
hub_gdb_connected(const hub_gdb *g)
{
    return g && g->conn_fd >= 0;
}
