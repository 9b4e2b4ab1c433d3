/*
 * Debugging the guest end to end: the real plexus program with its GDB stub and monitor on real sockets,
 * Debian's gdb-multiarch in batch mode against the hello firmware, the remote protocol spoken by hand
 * (refusals, malformed packets), the -d log, and the --trace timeline read back with a JSON parser.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <json-c/json.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *s;
    va_start(ap, fmt);
    cr_assert(vasprintf(&s, fmt, ap) >= 0);
    va_end(ap);
    return s;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return strdup("");
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            buf = realloc(buf, cap);
        }
        size_t r = fread(buf + n, 1, 4096, f);
        n += r;
        if (r == 0)
            break;
    }
    fclose(f);
    buf[n] = 0;
    return buf;
}

/* A scratch folder for sockets, logs and machine files. */
static char dir[64];

static void setup(void)
{
    strcpy(dir, "/tmp/plexus-debug-test-XXXXXX");
    cr_assert(mkdtemp(dir));
}

static void teardown(void)
{
    char *cmd = xasprintf("rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
    free(cmd);
}

/* plexus run with @args (NULL-terminated), stdout and stderr into DIR/NAME.out, its own process group. */
static pid_t start_plexus(const char *name, const char *const *args)
{
    char *bin = xasprintf("%s/bin/plexus", getenv("PLEXUS_BUILD_DIR"));
    char *out = xasprintf("%s/%s.out", dir, name);
    const char *argv[32] = { bin, "run" };
    size_t n = 2;
    for (; args[n - 2]; n++)
        argv[n] = args[n - 2];
    argv[n] = NULL;
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        setpgid(0, 0);
        int nul = open("/dev/null", O_RDONLY);
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(nul, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    free(bin);
    free(out);
    return pid;
}

/* Wait at most @timeout_s for @pid; kill its group after that. Returns the wait status, or -1 on timeout. */
static int finish(pid_t pid, double timeout_s)
{
    int st;
    double end = now_s() + timeout_s;
    while (now_s() < end) {
        if (waitpid(pid, &st, WNOHANG) == pid)
            return st;
        usleep(10000);
    }
    kill(-pid, SIGKILL);
    waitpid(pid, &st, 0);
    return -1;
}

static char *output_of(const char *name)
{
    char *p = xasprintf("%s/%s.out", dir, name);
    char *s = slurp(p);
    free(p);
    return s;
}

/* plexus ran hello to its end: exit status 0 and the firmware's last line. */
static void expect_hello_passed(pid_t pid, const char *name)
{
    int st = finish(pid, 60);
    char *log = output_of(name);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "plexus ends with the guest's status 0 (%d):\n%s", st, log);
    cr_expect(strstr(log, "hello: all checks passed"), "the firmware's checks passed:\n%s", log);
    free(log);
}

static char *hello_elf(void)
{
    return xasprintf("%s/examples/hello/hello.elf", getenv("PLEXUS_BUILD_DIR"));
}

static char *test_elf(const char *name)
{
    return xasprintf("%s/tests/debug/%s.elf", getenv("PLEXUS_BUILD_DIR"), name);
}

/* A machine with only RAM, the built-in devices and @elf: no device process. */
static char *bare_machine(const char *elf)
{
    char *path = xasprintf("%s/bare.yaml", dir);
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fprintf(f, "name: bare\nram:\n  - name: ram\n    base: 0x80000000\n    size: 16M\nfirmware:\n  - file: %s\n"
            "cpu:\n  insns_per_ns: 0.1\n", elf);
    fclose(f);
    return path;
}

/* Wait until @path exists (a socket plexus made): for the client that is not us. */
static void wait_for_path(const char *path)
{
    double end = now_s() + 20;
    struct stat st;
    while (stat(path, &st) != 0) {
        cr_assert_lt(now_s(), end, "%s did not appear", path);
        usleep(20000);
    }
}

static int connect_unix(const char *path)
{
    double end = now_s() + 20;
    for (;;) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
            return fd;
        close(fd);
        cr_assert_lt(now_s(), end, "nothing listens on %s", path);
        usleep(20000);
    }
}

static void send_all_tty(int fd, const char *s)
{
    size_t n = strlen(s);
    while (n) {
        ssize_t w = write(fd, s, n);
        cr_assert_gt(w, 0, "write: %s", strerror(errno));
        s += w, n -= (size_t)w;
    }
}

/* ---- the remote protocol by hand ---------------------------------------------------------------------- */

static void send_all(int fd, const char *s, size_t n)
{
    while (n) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        cr_assert_gt(w, 0, "send: %s", strerror(errno));
        s += w, n -= (size_t)w;
    }
}

static void send_packet(int fd, const char *body)
{
    unsigned sum = 0;
    for (const char *p = body; *p; p++)
        sum += (unsigned char)*p;
    char *pkt = xasprintf("$%s#%02x", body, sum & 0xff);
    send_all(fd, pkt, strlen(pkt));
    free(pkt);
}

static int read_byte(int fd, double timeout_s)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    if (poll(&p, 1, (int)(timeout_s * 1000)) <= 0)
        return -1;
    unsigned char c;
    return recv(fd, &c, 1, 0) == 1 ? c : -1;
}

/* The next packet's body (acks skipped; the checksum checked). Malloc'd. */
static char *read_packet(int fd)
{
    int c;
    while ((c = read_byte(fd, 20)) != '$')
        cr_assert(c == '+' || c == '-', "expected a packet, got %d", c);
    char *body = malloc(65536);
    size_t n = 0;
    unsigned sum = 0;
    while ((c = read_byte(fd, 20)) != '#') {
        cr_assert_geq(c, 0, "connection ended inside a packet");
        cr_assert_lt(n, 65535);
        body[n++] = (char)c;
        sum += (unsigned)c;
    }
    body[n] = 0;
    char hex[3] = { (char)read_byte(fd, 5), (char)read_byte(fd, 5), 0 };
    cr_assert_eq(strtoul(hex, NULL, 16), sum & 0xff, "bad checksum on '%s'", body);
    return body;
}

static char *exchange(int fd, const char *body)
{
    send_packet(fd, body);
    return read_packet(fd);
}

static void expect_reply(int fd, const char *body, const char *want)
{
    char *r = exchange(fd, body);
    cr_expect_str_eq(r, want, "%s -> '%s', expected '%s'", body, r, want);
    free(r);
}

static uint64_t le64(const char *hex)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        char b[3] = { hex[2 * i], hex[2 * i + 1], 0 };
        v = v << 8 | strtoul(b, NULL, 16);
    }
    return v;
}

/* ---- gdb-multiarch ------------------------------------------------------------------------------------ */

static bool have_gdb(void)
{
    return system("command -v gdb-multiarch >/dev/null 2>&1") == 0;
}

/*
 * Run gdb-multiarch in batch mode on @elf ("" for none) with the commands in @script; returns its output. With
 * @ctrl_c_after, gdb gets SIGINT (a Ctrl-C typed at it) a moment after it printed that text.
 */
static char *run_gdb(const char *elf, const char *script, const char *ctrl_c_after)
{
    char *sp = xasprintf("%s/cmds.gdb", dir), *op = xasprintf("%s/gdb.out", dir);
    FILE *f = fopen(sp, "w");
    cr_assert(f);
    fputs(script, f);
    fclose(f);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        int fd = open(op, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        if (*elf)
            execlp("gdb-multiarch", "gdb-multiarch", "-nx", "-batch", "-x", sp, elf, (char *)NULL);
        else
            execlp("gdb-multiarch", "gdb-multiarch", "-nx", "-batch", "-x", sp, (char *)NULL);
        _exit(127);
    }
    if (ctrl_c_after) {
        double end = now_s() + 60;
        for (;;) {
            char *so_far = slurp(op);
            bool seen = strstr(so_far, ctrl_c_after) != NULL;
            free(so_far);
            if (seen || now_s() > end)
                break;
            usleep(20000);
        }
        usleep(300000);         /* gdb goes on to `continue` */
        kill(pid, SIGINT);
    }
    int st = finish(pid, 120);
    char *out = slurp(op);
    cr_assert(st != -1, "gdb did not finish:\n%s", out);
    free(sp);
    free(op);
    return out;
}

TestSuite(debug, .init = setup, .fini = teardown);

Test(debug, gdb_breaks_steps_reads_watches_and_runs_hello_to_poweroff)
{
    if (!have_gdb())
        cr_skip_test("gdb-multiarch is not installed (scripts/deps.sh installs it)");
    char *sock = xasprintf("%s/gdb.sock", dir), *spec = xasprintf("unix:%s", sock), *elf = hello_elf();
    const char *args[] = { "hello", "--gdb", spec, "-S", NULL };
    pid_t pid = start_plexus("hello", args);
    wait_for_path(sock);
    char *script = xasprintf(
        "set pagination off\nset confirm off\ntarget remote %s\n"
        "print/x $pc\n"
        "break uart_setup\ncontinue\n"
        "print/x $pc == (long)uart_setup\n"
        "set $at = $pc\nstepi\nprint/x $pc != $at\n"
        "print/x $sp\nprint $priv\nprint/x $mstatus\nprint/x $misa\n"
        "print timer_irqs\n"
        "watch timer_irqs\ncontinue\n"
        "print timer_irqs\n"
        "delete\ncontinue\n", sock);
    char *out = run_gdb(elf, script, NULL);
    cr_expect(strstr(out, "$1 = 0x80000000"), "the guest waited at its entry point (-S):\n%s", out);
    cr_expect(strstr(out, "Breakpoint 1, uart_setup"), "the breakpoint was hit:\n%s", out);
    cr_expect(strstr(out, "$2 = 0x1"), "stopped exactly at uart_setup:\n%s", out);
    cr_expect(strstr(out, "$3 = 0x1"), "stepi moved the pc:\n%s", out);
    cr_expect(strstr(out, "$4 = 0x800"), "sp is in RAM:\n%s", out);
    cr_expect(strstr(out, "$5 = 3"), "the hart runs in M-mode:\n%s", out);
    cr_expect(strstr(out, "$7 = 0x800000000014112d"), "misa is rv64imafdcsu:\n%s", out);
    cr_expect(strstr(out, "$8 = 0"), "timer_irqs reads 0 before the timer fires:\n%s", out);
    cr_expect(strstr(out, "Old value = 0\nNew value = 1"), "the watchpoint fired on the store:\n%s", out);
    cr_expect(strstr(out, "trap_handler"), "... in the trap handler:\n%s", out);
    cr_expect(strstr(out, "$9 = 1"), "the variable reads 1 after it:\n%s", out);
    cr_expect(strstr(out, "exited normally"), "gdb saw the poweroff:\n%s", out);
    expect_hello_passed(pid, "hello");
    free(out);
    free(script);
    free(elf);
    free(spec);
    free(sock);
}

Test(debug, gdb_interrupt_stops_a_running_guest)
{
    if (!have_gdb())
        cr_skip_test("gdb-multiarch is not installed (scripts/deps.sh installs it)");
    char *elf = test_elf("spin"), *yaml = bare_machine(elf);
    char *sock = xasprintf("%s/gdb.sock", dir), *spec = xasprintf("unix:%s", sock);
    const char *args[] = { yaml, "--gdb", spec, "-S", NULL };
    pid_t pid = start_plexus("spin", args);
    wait_for_path(sock);
    /* Ctrl-C at gdb while the guest runs: gdb sends the interrupt byte (0x03), the stub stops the guest */
    char *script = xasprintf(
        "set pagination off\nset confirm off\ntarget remote %s\n"
        "print *(long *)&spins\ncontinue\n"
        "print *(long *)&spins > 1000\nprint/x $pc >= 0x80000008 && $pc <= 0x80000014\nkill\n", sock);
    char *out = run_gdb(elf, script, "$1 = 0");
    int st = finish(pid, 30);
    cr_expect(strstr(out, "$1 = 0"), "nothing ran before continue:\n%s", out);
    cr_expect(strstr(out, "SIGINT"), "the guest stopped with SIGINT:\n%s", out);
    cr_expect(strstr(out, "$2 = 1"), "the guest ran meanwhile:\n%s", out);
    cr_expect(strstr(out, "$3 = 0x1"), "it stopped inside its loop:\n%s", out);
    cr_expect(WIFEXITED(st), "plexus ended after kill (status %d)", st);
    free(out);
    free(script);
    free(spec);
    free(sock);
    free(yaml);
    free(elf);
}

Test(debug, protocol_refuses_device_reads_and_survives_malformed_packets)
{
    char *sock = xasprintf("%s/gdb.sock", dir), *spec = xasprintf("unix:%s", sock);
    const char *args[] = { "hello", "--gdb", spec, "-S", NULL };
    pid_t pid = start_plexus("proto", args);
    int fd = connect_unix(sock);

    char *r = exchange(fd, "qSupported:multiprocess+;swbreak+;xmlRegisters=riscv");
    cr_expect(strstr(r, "PacketSize=") && strstr(r, "qXfer:features:read+") && strstr(r, "swbreak+"), "%s", r);
    free(r);
    r = exchange(fd, "?");
    cr_expect_eq(strncmp(r, "T02", 3), 0, "stopped before the first instruction: %s", r);
    free(r);
    /* the target description, in pieces */
    char *xml = calloc(1, 1);
    size_t xml_len = 0;
    for (int piece = 0; piece < 100; piece++) {
        char *q = xasprintf("qXfer:features:read:target.xml:%zx,400", xml_len);
        char *part = exchange(fd, q);
        free(q);
        cr_assert(part[0] == 'l' || part[0] == 'm', "%s", part);
        size_t n = strlen(part + 1);
        cr_assert_leq(n, 0x400);
        xml = realloc(xml, xml_len + n + 1);
        memcpy(xml + xml_len, part + 1, n + 1);
        xml_len += n;
        bool last = part[0] == 'l';
        free(part);
        if (last)
            break;
    }
    r = xml;
    cr_expect(strstr(r, "</target>"), "the whole description: %s", r);
    cr_expect(strstr(r, "org.gnu.gdb.riscv.cpu") && strstr(r, "org.gnu.gdb.riscv.fpu") &&
              strstr(r, "org.gnu.gdb.riscv.csr") && strstr(r, "org.gnu.gdb.riscv.virtual") &&
              strstr(r, "\"mstatus\"") && strstr(r, "\"satp\"") && strstr(r, "\"mtval\"") &&
              strstr(r, "\"priv\""), "the target description names the features and CSRs: %s", r);
    free(r);

    /* registers: pc at the entry point, mstatus by number (65 + 0x300 = 0x341), priv (65 + 4096 = 0x1041) */
    r = exchange(fd, "g");
    cr_expect_eq(strlen(r), 33 * 16, "x0..x31 and pc: %zu", strlen(r));
    cr_expect_eq(le64(r + 32 * 16), 0x80000000ull);
    free(r);
    r = exchange(fd, "p1041");
    cr_expect_eq(le64(r), 3, "M-mode: %s", r);
    free(r);
    expect_reply(fd, "P5=efbeadde00000000", "OK");
    r = exchange(fd, "p5");
    cr_expect_eq(le64(r), 0xdeadbeefull);
    free(r);

    /* RAM reads and writes; device registers refused until `monitor debug-io on` */
    expect_reply(fd, "M80100000,4:11223344", "OK");
    expect_reply(fd, "m80100000,4", "11223344");
    expect_reply(fd, "X80100004,2:}\x03}\x04", "OK");        /* binary, escaped: 0x23 0x24 */
    expect_reply(fd, "m80100004,2", "2324");
    expect_reply(fd, "m10000005,1", "E0d");                 /* the UART's line status: a device */
    expect_reply(fd, "m40000000,4", "E0e");                 /* nothing there */
    expect_reply(fd, "qRcmd,64656275672d696f206f6e", "O" "6465766963652072656769737465727320617265206f70656e20"
                                                      "746f20746865206465627567676572" "20616e6420782f78700a");
    r = read_packet(fd);
    cr_expect_str_eq(r, "OK");
    free(r);
    r = exchange(fd, "m10000005,1");
    cr_expect_eq(strlen(r), 2, "the line status register reads once allowed: %s", r);
    free(r);

    /* malformed: bad checksum (NAK), unknown packets, bad hex, overlong, garbage, a stray '}' at the end */
    send_all(fd, "$g#00", 5);
    cr_expect_eq(read_byte(fd, 10), '-');
    expect_reply(fd, "vFoo", "");
    expect_reply(fd, "Zq", "E16");
    expect_reply(fd, "mzz,4", "E16");
    expect_reply(fd, "m80000000,", "E16");
    expect_reply(fd, "M80000000,4:123", "E16");
    expect_reply(fd, "P1=12", "E16");
    expect_reply(fd, "Z9,80000000,4", "");
    expect_reply(fd, "Z2,80000000,0", "E16");
    expect_reply(fd, "p99999", "");
    expect_reply(fd, "p123456789abcdef01", "E16");
    expect_reply(fd, "qXfer:features:read:other.xml:0,10", "E00");
    expect_reply(fd, "vCont;x", "E16");
    char *big = malloc(10000);
    memset(big, 'a', 9999);
    big[0] = '$';
    memcpy(big + 9995, "#00", 4);
    send_all(fd, big, 9998);
    cr_expect_eq(read_byte(fd, 10), '-', "an overlong packet is refused");
    free(big);
    srand(7);
    char noise[4096];
    for (size_t i = 0; i < sizeof(noise); i++) {
        noise[i] = (char)(rand() & 0xff);
        if (noise[i] == '$' || noise[i] == 3)
            noise[i] = 'x';     /* no packet start, no interrupt: only noise between packets */
    }
    send_all(fd, noise, sizeof(noise));
    send_all(fd, "$}#7d", 5);
    cr_expect_eq(read_byte(fd, 10), '-', "a packet ending in an escape is refused");
    r = exchange(fd, "?");
    cr_expect_eq(strncmp(r, "T02", 3), 0, "the stub still answers: %s", r);
    free(r);

    /* no-ack mode, then detach: the guest runs to its end */
    expect_reply(fd, "QStartNoAckMode", "OK");
    send_packet(fd, "m80000000,4");
    r = read_packet(fd);
    cr_expect_eq(strlen(r), 8);
    free(r);
    expect_reply(fd, "P5=0000000000000000", "OK");
    expect_reply(fd, "D", "OK");
    close(fd);
    expect_hello_passed(pid, "proto");      /* the guest ran to its end after detach */
    free(spec);
    free(sock);
}

/* Send a monitor line, read until the next prompt; returns what came before it. */
static char *monitor_cmd(int fd, const char *line)
{
    if (line)
        send_all(fd, line, strlen(line));
    char *buf = malloc(1 << 20);
    size_t n = 0;
    for (;;) {
        int c = read_byte(fd, 20);
        cr_assert_geq(c, 0, "the monitor did not answer '%s' (got '%.*s')", line, (int)n, buf);
        buf[n++] = (char)c;
        buf[n] = 0;
        if (n >= 9 && !memcmp(buf + n - 9, "(plexus) ", 9)) {
            buf[n - 9] = 0;
            return buf;
        }
        cr_assert_lt(n, (1 << 20) - 1);
    }
}

/* A monitor command whose answer must contain @want. */
static void monitor_expect(int fd, const char *line, const char *want)
{
    char *r = monitor_cmd(fd, line);
    cr_expect(strstr(r, want), "'%s' answers '%s', without '%s'", line, r, want);
    free(r);
}

Test(debug, monitor_shows_registers_memory_map_devices_and_runs_the_guest)
{
    char *sock = xasprintf("%s/mon.sock", dir), *spec = xasprintf("unix:%s", sock);
    const char *args[] = { "hello", "--monitor", spec, "-S", NULL };
    pid_t pid = start_plexus("mon", args);
    int fd = connect_unix(sock);
    free(monitor_cmd(fd, NULL));
    char *r = monitor_cmd(fd, "info registers\n");
    cr_expect(strstr(r, " pc       0000000080000000  priv M"), "%s", r);
    cr_expect(strstr(r, "mstatus") && strstr(r, "satp") && strstr(r, "x2 /sp"), "%s", r);
    free(r);
    r = monitor_cmd(fd, "info mtree\n");
    cr_expect(strstr(r, "uart0") && strstr(r, "0000000080000000"), "%s", r);
    free(r);
    r = monitor_cmd(fd, "info devices\n");
    cr_expect(strstr(r, "uart0") && strstr(r, "dma0"), "%s", r);
    free(r);
    /* the first instruction of hello (start.S: la gp, ... = auipc gp): x and xp agree in M-mode */
    r = monitor_cmd(fd, "x /2xw 0x80000000\n");
    char *rp = monitor_cmd(fd, "xp /2xw 0x80000000\n");
    cr_expect_str_eq(r, rp);
    cr_expect(strstr(r, "0000000080000000: 0x"), "%s", r);
    unsigned long w0 = strtoul(strstr(r, ": 0x") + 2, NULL, 16);
    cr_expect_eq(w0 & 0xfff, 0x197, "auipc gp: 0x%lx", w0);
    free(r);
    free(rp);
    monitor_expect(fd, "xp /1xb 0x10000005\n", "device register");
    monitor_expect(fd, "x /3q 0\n", "unknown format");
    monitor_expect(fd, "frobnicate\n", "unknown command");
    r = monitor_cmd(fd, "help\n");
    cr_expect(strstr(r, "info registers") && strstr(r, "system_reset"), "%s", r);
    free(r);
    free(monitor_cmd(fd, "cont\n"));
    close(fd);
    expect_hello_passed(pid, "mon");
    free(spec);
    free(sock);
}

Test(debug, monitor_stops_resets_and_quits_a_running_guest)
{
    char *elf = test_elf("spin"), *yaml = bare_machine(elf);
    char *sock = xasprintf("%s/mon.sock", dir), *spec = xasprintf("unix:%s", sock);
    const char *args[] = { yaml, "--monitor", spec, NULL };
    pid_t pid = start_plexus("spin", args);
    int fd = connect_unix(sock);
    free(monitor_cmd(fd, NULL));
    usleep(200000);
    free(monitor_cmd(fd, "stop\n"));
    usleep(100000);
    /* spins is the first word of .data (0x80002000): stopped, it does not move */
    char *a = monitor_cmd(fd, "xp /1ug 0x80002000\n");
    usleep(200000);
    char *b = monitor_cmd(fd, "xp /1ug 0x80002000\n");
    cr_expect_str_eq(a, b, "time stands still while stopped");
    cr_expect_gt(strtoull(strchr(a, ':') + 1, NULL, 10), 1000, "the guest ran before: %s", a);
    free(a);
    free(b);
    monitor_expect(fd, "system_reset\n", "restarts at 0x80000000");
    monitor_expect(fd, "xp /1ug 0x80002000\n", ": 0\n");
    monitor_expect(fd, "info registers\n", " pc       0000000080000000");
    send_all(fd, "quit\n", 5);
    int st = finish(pid, 30);
    char *log = output_of("spin");
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%d:\n%s", st, log);
    cr_expect(strstr(log, "guest stopped at pc 0x8000"), "%s", log);
    free(log);
    close(fd);
    free(spec);
    free(sock);
    free(yaml);
    free(elf);
}

Test(debug, d_log_reports_guest_errors_unimplemented_csrs_traps_and_the_fatal_stop)
{
    char *elf = test_elf("faults"), *yaml = bare_machine(elf), *dlog = xasprintf("%s/d.log", dir);
    const char *args[] = { yaml, "-d", "guest_errors,unimp,int", "-D", dlog, NULL };
    pid_t pid = start_plexus("faults", args);
    int st = finish(pid, 30);
    char *out = output_of("faults"), *log = slurp(dlog);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 1, "a fatal CPU stop is status 1 (%d):\n%s", st, out);
    cr_expect(strstr(log, "guest_errors: 4-byte load at 0x40000000 where nothing is mapped, pc 0x80000010 "
                          "in M-mode"), "%s", log);
    cr_expect(strstr(log, "guest_errors: 1-byte store at 0x100000 refused by region 'poweroff'"), "%s", log);
    cr_expect(strstr(log, "unimp: CSR 0x7c5 refused at pc 0x8000001c in M-mode"), "%s", log);
    cr_expect(strstr(log, "int: exception 5 (load access fault) epc 0x80000010 tval 0x40000000 M->M"), "%s", log);
    cr_expect(strstr(log, "int: exception 2 (illegal instruction) epc 0x8000001c"), "%s", log);
    /* the fatal stop: the message, the first fault of the cascade, the registers */
    cr_expect(strstr(out, "plexus: CPU stopped: instruction fetch from 0x40000000 failed"), "%s", out);
    cr_expect(strstr(out, "the first fault that led there: exception 5 (load access fault) at pc 0x8000002c"),
              "%s", out);
    cr_expect(strstr(out, " pc       0000000040000000") && strstr(out, "mcause"), "%s", out);
    free(out);
    free(log);
    free(dlog);
    free(yaml);
    free(elf);
}

Test(debug, options_are_checked)
{
    const char *a1[] = { "hello", "-d", "guest_errors,bogus", NULL };
    int st = finish(start_plexus("o1", a1), 30);
    char *out = output_of("o1");
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 2 && strstr(out, "unknown item 'bogus'"), "%s", out);
    free(out);
    const char *a2[] = { "hello", "--gdb", "udp:1234", NULL };
    st = finish(start_plexus("o2", a2), 30);
    out = output_of("o2");
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 1 && strstr(out, "expected tcp::PORT"), "%s", out);
    free(out);
    const char *a3[] = { "hello", "-S", NULL };
    st = finish(start_plexus("o3", a3), 30);
    out = output_of("o3");
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 2 && strstr(out, "-S waits for a debugger"), "%s", out);
    free(out);
}

static uint64_t stat_value(const char *out, const char *name)
{
    const char *p = strstr(out, name);
    cr_assert(p, "no '%s' in --stats:\n%s", name, out);
    return strtoull(p + strlen(name), NULL, 10);
}

static const char *arg_str(json_object *ev, const char *key)
{
    json_object *args, *v;
    if (!json_object_object_get_ex(ev, "args", &args) || !json_object_object_get_ex(args, key, &v))
        return NULL;
    return json_object_get_string(v);
}

static uint64_t arg_u64(json_object *ev, const char *key)
{
    json_object *args, *v;
    cr_assert(json_object_object_get_ex(ev, "args", &args) && json_object_object_get_ex(args, key, &v));
    return json_object_get_uint64(v);
}

static const char *field(json_object *ev, const char *key)
{
    json_object *v;
    return json_object_object_get_ex(ev, key, &v) ? json_object_get_string(v) : "";
}

static double num(json_object *ev, const char *key)
{
    json_object *v;
    cr_assert(json_object_object_get_ex(ev, key, &v), "event without %s", key);
    return json_object_get_double(v);
}

Test(debug, trace_has_every_access_on_its_device_track_in_order)
{
    char *path = xasprintf("%s/trace.json", dir);
    /* DMA by message: the hub sees every transfer */
    const char *args[] = { "hello", "--set", "devices.dma0.dma=message", "--trace", path, "--stats", NULL };
    int st = finish(start_plexus("trace", args), 60);
    char *out = output_of("trace");
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s", out);
    uint64_t accesses = stat_value(out, "mmio reads") + stat_value(out, "mmio writes");
    uint64_t dma_msgs = stat_value(out, "dma messages"), dma_refused = stat_value(out, "dma refused");

    json_object *doc = json_object_from_file(path);
    cr_assert(doc, "the trace is JSON: %s", json_util_get_last_err());
    json_object *evs;
    cr_assert(json_object_object_get_ex(doc, "traceEvents", &evs) && json_object_is_type(evs, json_type_array));
    size_t n = json_object_array_length(evs);

    /* the tracks: cpu, console, one per device process */
    int tid_uart = -1, tid_dma = -1, tid_cpu = -1, tid_console = -1;
    for (size_t i = 0; i < n; i++) {
        json_object *ev = json_object_array_get_idx(evs, i);
        if (strcmp(field(ev, "ph"), "M") || strcmp(field(ev, "name"), "thread_name"))
            continue;
        const char *name = arg_str(ev, "name");
        int tid = (int)num(ev, "tid");
        if (!strncmp(name, "device uart0 (process ", 22))
            tid_uart = tid;
        else if (!strncmp(name, "device dma0 (process ", 21))
            tid_dma = tid;
        else if (!strcmp(name, "cpu"))
            tid_cpu = tid;
        else if (!strcmp(name, "console"))
            tid_console = tid;
    }
    cr_assert(tid_uart > 0 && tid_dma > 0 && tid_cpu > 0 && tid_console > 0, "tracks %d %d %d %d", tid_uart,
              tid_dma, tid_cpu, tid_console);

    uint64_t mmio = 0, uart = 0, dma = 0, last_vtime = 0, transfers = 0, refused = 0, timers = 0;
    double last_ts = -1, first_console = -1, last_console = -1;
    bool irq_up = false, irq_down = false, timer_irq = false, passed = false;
    for (size_t i = 0; i < n; i++) {
        json_object *ev = json_object_array_get_idx(evs, i);
        const char *cat = field(ev, "cat"), *ph = field(ev, "ph");
        if (!strcmp(cat, "mmio")) {
            cr_assert_str_eq(ph, "X");
            json_object *a, *cnt;
            cr_assert(json_object_object_get_ex(ev, "args", &a));
            uint64_t reads = json_object_object_get_ex(a, "count", &cnt) ? json_object_get_uint64(cnt) : 1;
            mmio += reads;
            double ts = num(ev, "ts");
            cr_expect_geq(ts, last_ts, "accesses in order (event %zu)", i);
            cr_expect_geq(num(ev, "dur"), 0);
            last_ts = ts;
            uint64_t vt = arg_u64(ev, "vtime_ns");
            cr_expect_geq(vt, last_vtime, "virtual time never goes back (event %zu)", i);
            last_vtime = vt;
            const char *region = arg_str(ev, "region");
            int tid = (int)num(ev, "tid");
            if (!strcmp(region, "uart0.regs")) {
                cr_expect_eq(tid, tid_uart);
                uart += reads;
            } else if (!strcmp(region, "dma0.regs")) {
                cr_expect_eq(tid, tid_dma);
                dma += reads;
            }
        } else if (!strcmp(cat, "dma")) {
            cr_expect_eq((int)num(ev, "tid"), tid_dma, "DMA on the DMA engine's track");
            if (!strcmp(ph, "X"))
                transfers++;
            else
                refused += arg_str(ev, "refused") != NULL;
        } else if (!strcmp(cat, "timer")) {
            cr_expect_eq((int)num(ev, "tid"), tid_dma);
            cr_expect_geq(num(ev, "dur"), 0);
            timers++;
        } else if (!strcmp(cat, "irq")) {
            json_object *a, *lv;
            cr_assert(json_object_object_get_ex(ev, "args", &a) && json_object_object_get_ex(a, "level", &lv));
            irq_up |= json_object_get_int(lv) == 1;
            irq_down |= json_object_get_int(lv) == 0;
        } else if (!strcmp(cat, "interrupt")) {
            cr_expect_eq((int)num(ev, "tid"), tid_cpu);
            timer_irq |= strstr(field(ev, "name"), "machine timer") != NULL;
        } else if (!strcmp(cat, "console")) {
            double ts = num(ev, "ts");
            if (first_console < 0)
                first_console = ts;
            cr_expect_geq(ts, last_console);
            last_console = ts;
            passed |= !strcmp(arg_str(ev, "text"), "hello: all checks passed");
        }
    }
    cr_expect_eq(mmio, accesses, "every access of the run is in the trace (%" PRIu64 " of %" PRIu64 ")", mmio,
                 accesses);
    cr_expect(uart > 100 && dma > 10, "uart %" PRIu64 ", dma %" PRIu64, uart, dma);
    cr_expect_eq(transfers, dma_msgs, "every DMA transfer is a slice (%" PRIu64 " of %" PRIu64 ")", transfers,
                 dma_msgs);
    cr_expect_eq(refused, dma_refused, "the refused DMA is there");
    cr_expect_gt(transfers, 0);
    cr_expect_gt(timers, 0, "the DMA engine's timers fired");
    cr_expect(irq_up && irq_down, "the interrupt lines went up and down");
    cr_expect(timer_irq, "the timer interrupt was taken");
    cr_expect(passed && first_console < last_console, "the console's lines are there");
    json_object_put(doc);
    free(out);
    free(path);
}

Test(debug, d_file_has_device_errors_and_the_stub_listens_on_tcp)
{
    char *dlog = xasprintf("%s/d.log", dir);
    const char *args[] = { "hello", "-d", "guest_errors", "-D", dlog, "--gdb", "tcp::0", "-S", NULL };
    pid_t pid = start_plexus("tcp", args);
    /* the stub says where it listens (a free port) */
    char *out = NULL;
    const char *at = NULL;
    double end = now_s() + 20;
    while (!at) {
        free(out);
        out = output_of("tcp");
        at = strstr(out, "listens on tcp:127.0.0.1:");
        if (at && !strchr(at, '\n'))
            at = NULL;          /* the line is still being written */
        cr_assert(at || now_s() < end, "%s", out);
        if (!at)
            usleep(20000);
    }
    int port = atoi(at + strlen("listens on tcp:127.0.0.1:"));
    cr_assert_gt(port, 0);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "%s", strerror(errno));
    char *r = exchange(fd, "?");
    cr_expect(!strncmp(r, "T02", 3), "%s", r);
    free(r);
    expect_reply(fd, "D", "OK");
    close(fd);
    int st = finish(pid, 60);
    char *log = slurp(dlog);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%d", st);
    cr_expect(strstr(log, "guest_errors: device dma0: warning: DMA read from 0x0+0x40 outside its RAM grants"),
              "the device's refusal is in the -D file:\n%s", log);
    free(log);
    free(out);
    free(dlog);
}

Test(debug, gdb_stops_u_boot_at_its_prompt_and_breaks_there)
{
    if (!have_gdb())
        cr_skip_test("gdb-multiarch is not installed (scripts/deps.sh installs it)");
    if (access("/usr/lib/u-boot/qemu-riscv64/u-boot.bin", R_OK) != 0)
        cr_skip_test("Debian's U-Boot (u-boot-qemu) is not installed");
    char *sock = xasprintf("%s/gdb.sock", dir), *spec = xasprintf("unix:%s", sock);
    const char *args[] = { "u-boot", "--gdb", spec, NULL };
    pid_t pid = start_plexus("uboot", args);
    /* wait for the prompt: U-Boot then polls its UART for a key */
    double end = now_s() + 60;
    for (;;) {
        char *o = output_of("uboot");
        bool at_prompt = strstr(o, "=> ") != NULL;
        free(o);
        if (at_prompt)
            break;
        cr_assert_lt(now_s(), end, "U-Boot did not reach its prompt");
        usleep(50000);
    }
    /* connecting stops the running guest; a breakpoint at its pc is hit again as it polls */
    char *script = xasprintf(
        "set pagination off\nset confirm off\nset architecture riscv:rv64\ntarget remote %s\n"
        "set $at = $pc\nprint/x $at > 0x80000000 && $at < 0x88000000\nprint $priv\n"
        "break *$at\ncontinue\nprint/x $pc == $at\nx/1i $pc\nkill\n", sock);
    char *out = run_gdb("", script, NULL);
    int st = finish(pid, 30);
    cr_expect(strstr(out, "$1 = 0x1"), "stopped in U-Boot (RAM):\n%s", out);
    cr_expect(strstr(out, "$2 = 3"), "U-Boot runs in M-mode here:\n%s", out);
    cr_expect(strstr(out, "Breakpoint 1, ") && strstr(out, "$3 = 0x1"), "the breakpoint was hit:\n%s", out);
    cr_expect(strstr(out, "=> 0x"), "the instruction there disassembles from guest memory:\n%s", out);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "kill ends plexus (%d)", st);
    free(out);
    free(script);
    free(spec);
    free(sock);
}

/* Read from @fd into @buf (NUL-terminated, at most @cap - 1 bytes kept) until it contains @needle or
 * @timeout_s passes. */
static bool read_until(int fd, char *buf, size_t cap, size_t *len, const char *needle, double timeout_s)
{
    double end = now_s() + timeout_s;
    while (!strstr(buf, needle)) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (now_s() > end || poll(&p, 1, 100) < 0)
            return false;
        if (!(p.revents & POLLIN))
            continue;
        if (*len + 1 >= cap)
            return false;
        ssize_t n = read(fd, buf + *len, cap - 1 - *len);
        if (n <= 0)
            return false;
        *len += (size_t)n;
        buf[*len] = 0;
    }
    return true;
}

Test(debug, ctrl_a_c_switches_the_console_to_the_monitor_and_back)
{
    char *sock = xasprintf("%s/mon.sock", dir), *spec = xasprintf("unix:%s", sock);
    char *bin = xasprintf("%s/bin/plexus", getenv("PLEXUS_BUILD_DIR"));
    int fd;
    pid_t pid = forkpty(&fd, NULL, NULL, NULL);
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        execl(bin, bin, "run", "hello", "--monitor", spec, "-S", (char *)NULL);
        _exit(127);
    }
    static char buf[1 << 16];
    size_t len = 0;
    buf[0] = 0;
    cr_assert(read_until(fd, buf, sizeof(buf), &len, "guest stopped", 20), "%s", buf);
    send_all_tty(fd, "\001c");
    cr_assert(read_until(fd, buf, sizeof(buf), &len, "(plexus) ", 10), "the prompt: %s", buf);
    send_all_tty(fd, "info registers\r");
    cr_assert(read_until(fd, buf, sizeof(buf), &len, " pc       0000000080000000  priv M", 10), "%s", buf);
    send_all_tty(fd, "cont\r");
    cr_assert(read_until(fd, buf, sizeof(buf), &len, "hello: all checks passed", 30), "the guest ran: %s", buf);
    int st = finish(pid, 30);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%d: %s", st, buf);
    close(fd);
    free(bin);
    free(spec);
    free(sock);
}

Test(debug, per_device_log_level_and_mmio_trace_in_the_machine_file)
{
    /* dma0's refused DMA is a warning: shown by default, hidden below `log.level: error` */
    const char *a1[] = { "hello", "--set", "devices.dma0.log.level=error", "--set", "devices.uart0.log.mmio=true",
                         NULL };
    int st = finish(start_plexus("lv", a1), 60);
    char *out = output_of("lv");
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s", out);
    cr_expect(!strstr(out, "outside its RAM grants"), "dma0's warning is hidden:\n%s", out);
    cr_expect(strstr(out, "mmio: uart0.regs write 1 @0x10000000"), "uart0's accesses are logged:\n%s", out);
    cr_expect(!strstr(out, "mmio: dma0") && !strstr(out, "mmio: clint"), "only uart0's:\n%s", out);
    free(out);
    const char *a2[] = { "hello", NULL };
    st = finish(start_plexus("lv2", a2), 60);
    out = output_of("lv2");
    cr_expect(strstr(out, "dma0: warning: DMA read from 0x0+0x40 outside its RAM grants"), "by default:\n%s", out);
    cr_expect(!strstr(out, "mmio:"), "no access is logged by default:\n%s", out);
    free(out);
    const char *a3[] = { "hello", "--set", "devices.uart0.log.level=loud", NULL };
    st = finish(start_plexus("lv3", a3), 60);
    out = output_of("lv3");
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 1, "%s", out);
    cr_expect(strstr(out, "key 'devices[0].log.level': expected one of: error, warning, notice, info, debug; got "
                          "'loud'"), "%s", out);
    free(out);
}
