/*
 * ns16550a UART device: the register logic of uart_regs.c wired to the plexus SDK. Transmitted bytes go to the
 * machine's console (when this UART is it), stdout, a file or a pty; received bytes come from the console, a
 * file or the pty. Built both into the plexus-uart16550 program (main.c) and into the plexus-uart16550.so plugin
 * for plexus-device-runner.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <plexus/sdk.h>

#include "uart16550.h"
#include "uart_regs.h"

typedef struct uart_dev {
    plx_dev *dev;
    uart *regs;             /* in the device's state block: survives a restart */
    bool restored;          /* this process resumed a failed one */
    int tx_fd;              /* -1: transmitted bytes are dropped */
    int rx_fd;              /* -1: nothing is ever received */
    int pty_master, pty_slave, file_tx, file_rx;    /* fds this device opened, -1 if none */
    bool rx_watched;
    bool rx_eof;
    bool tx_failed;
    bool tx_console, rx_console;    /* the machine's console, over the channel */
    bool pty_given;                 /* pty_master is the SDK's (the machine's file "pty"): not closed here */
    unsigned granted;               /* console input the hub may still send: never more than the FIFO's room */
} uart_dev;

static void on_rx(void *opaque, int fd);

static void rx_watch(uart_dev *s, bool on)
{
    if (s->rx_fd < 0 || s->rx_eof || s->rx_watched == on)
        return;
    if (plx_dev_watch_fd(s->dev, s->rx_fd, on ? on_rx : NULL, s) == 0)
        s->rx_watched = on;
}

/* Input is read only while the receive FIFO has room: what the guest has not taken yet waits in the pipe,
 * so nothing is lost (the line never overruns). */
static void on_rx(void *opaque, int fd)
{
    uart_dev *s = opaque;
    uint8_t buf[UART_FIFO_SIZE];
    unsigned room = uart_rx_room(s->regs);
    ssize_t n;

    if (!room) {
        rx_watch(s, false);
        return;
    }
    n = read(fd, buf, room < sizeof(buf) ? room : sizeof(buf));
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        if (n < 0)
            plx_log(s->dev, PLX_LOG_WARNING, "receive: read failed: %s; no more input", strerror(errno));
        rx_watch(s, false);
        s->rx_eof = true;
        return;
    }
    for (ssize_t i = 0; i < n; i++)
        uart_rx_push(s->regs, buf[i]);
    if (!uart_rx_room(s->regs))
        rx_watch(s, false);
}

/* Console input: the hub sends at most what was granted, and the FIFO had that much room. */
static void on_console_input(void *opaque, const uint8_t *buf, size_t len)
{
    uart_dev *s = opaque;

    for (size_t i = 0; i < len; i++)
        uart_rx_push(s->regs, buf[i]);
    s->granted -= len < s->granted ? (unsigned)len : s->granted;
}

/* Grant the hub the FIFO's room that is not granted yet (after the guest read from it). */
static void console_grant(uart_dev *s)
{
    unsigned room = uart_rx_room(s->regs);

    if (s->rx_console && room > s->granted && plx_console_grant(s->dev, room - s->granted) == 0)
        s->granted = room;
}

static void hook_tx(void *opaque, uint8_t byte)
{
    uart_dev *s = opaque;
    ssize_t n;

    if (s->tx_console) {
        plx_console_write(s->dev, &byte, 1);
        return;
    }
    if (s->tx_fd < 0)
        return;
    do
        n = write(s->tx_fd, &byte, 1);
    while (n < 0 && errno == EINTR);
    if (n == 1)
        return;
    /* A pty nobody reads fills up (EAGAIN): drop the byte rather than stall the guest. */
    if (!s->tx_failed && errno != EAGAIN)
        plx_log(s->dev, PLX_LOG_WARNING, "transmit: write failed: %s; dropping output", strerror(errno));
    s->tx_failed = errno != EAGAIN;
}

static void hook_irq(void *opaque, int level)
{
    uart_dev *s = opaque;

    plx_irq_set(s->dev, 0, level);
}

static void hook_shadow(void *opaque, unsigned offset, uint8_t value)
{
    uart_dev *s = opaque;

    plx_shadow_store(s->dev, 0, offset, value, 1);
}

static void hook_rx_room(void *opaque)
{
    rx_watch(opaque, true);
    console_grant(opaque);
}

static const uart_hooks hooks = {
    .tx = hook_tx, .irq = hook_irq, .shadow = hook_shadow, .rx_room = hook_rx_room,
};

static uint64_t region_read(void *opaque, uint64_t addr, unsigned size)
{
    uart_dev *s = opaque;
    uint64_t v = uart_read(s->regs, (unsigned)addr);

    console_grant(s);
    return v;
}

static void region_write(void *opaque, uint64_t addr, uint64_t data, unsigned size)
{
    uart_dev *s = opaque;

    uart_write(s->regs, (unsigned)addr, (uint8_t)data);
}

static const plx_region_ops region_ops = {
    .read = region_read,
    .write = region_write,
    .endianness = PLX_LITTLE_ENDIAN,
    .valid = { .min_access_size = 1, .max_access_size = 1 },
    .impl = { .min_access_size = 1, .max_access_size = 1 },
};

/* RBR/THR/DLL and IER/DLM change meaning with LCR.DLAB and RBR pops the FIFO; reading IIR clears THRE and the
 * line status; reading MSR clears the deltas. LCR, MCR, LSR, SCR and the reserved space come from the shadow. */
static const struct plx_range read_through[] = {
    { .offset = UART_RBR, .len = 3 },
    { .offset = UART_MSR, .len = 1 },
};

static const plx_region_info regions[] = {
    {
        .name = "regs",
        .size = UART16550_REGION_SIZE,
        .kind = PLX_REGION_SHADOW,
        .ops = &region_ops,
        .read_through = read_through,
        .n_read_through = sizeof(read_through) / sizeof(read_through[0]),
    },
};

static const char *const irq_names[] = { "irq" };

static const plx_prop_info props[] = {
    { "tx", "auto", "where transmitted bytes go: console, stdout, file:PATH (created or truncated), pty, none, or "
      "auto (the console if this UART is the machine's, else stdout)" },
    { "rx", "auto", "where received bytes come from: console, stdin, file:PATH, pty, none, or auto (the console "
      "if this UART is the machine's, else none)" },
};

/*
 * A pseudo-terminal. In its jail the device cannot open /dev/ptmx itself: the machine gives it the multiplexer
 * as the file "pty" (files: [{name: pty, path: /dev/ptmx}]), which the hub opened outside the jail, and the slave
 * comes from the master (TIOCGPTPEER) rather than from a path. A device started by hand opens /dev/ptmx.
 */
static int open_pty(uart_dev *s)
{
    const char *path;
    int given = plx_dev_file(s->dev, "pty", NULL);

    if (s->pty_master >= 0)
        return 0;
    s->pty_given = given >= 0;
    s->pty_master = given >= 0 ? given : posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (s->pty_master < 0 || grantpt(s->pty_master) < 0 || unlockpt(s->pty_master) < 0 ||
        !(path = ptsname(s->pty_master))) {
        int e = errno;

        plx_log(s->dev, PLX_LOG_ERR, "cannot create a pty: %s", strerror(e));
        return -e;
    }
    /* Holding the slave open keeps the master from reporting hang-ups while no terminal is attached. */
    s->pty_slave = ioctl(s->pty_master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (s->pty_slave < 0)
        s->pty_slave = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (s->pty_slave < 0) {
        int e = errno;

        plx_log(s->dev, PLX_LOG_ERR, "cannot open pty %s: %s", path, strerror(e));
        return -e;
    }
    fcntl(s->pty_master, F_SETFL, fcntl(s->pty_master, F_GETFL) | O_NONBLOCK);
    plx_log(s->dev, PLX_LOG_NOTICE, "serial console on pty %s", path);
    return 0;
}

static int setup_tx(uart_dev *s, const char *spec)
{
    int r;

    if (!strcmp(spec, "auto"))
        spec = plx_console_attached(s->dev) ? "console" : "stdout";
    if (!strcmp(spec, "console")) {
        if (!plx_console_attached(s->dev)) {
            plx_log(s->dev, PLX_LOG_ERR, "property tx: console, but this UART is not the machine's console");
            return -EINVAL;
        }
        s->tx_console = true;
    } else if (!strcmp(spec, "stdout")) {
        s->tx_fd = STDOUT_FILENO;
    } else if (!strcmp(spec, "none")) {
        s->tx_fd = -1;
    } else if (!strcmp(spec, "pty")) {
        if ((r = open_pty(s)) < 0)
            return r;
        s->tx_fd = s->pty_master;
    } else if (!strncmp(spec, "file:", 5) && spec[5]) {
        /* a restarted device goes on writing where its previous process stopped */
        s->file_tx = open(spec + 5, O_WRONLY | O_CREAT | O_CLOEXEC | (s->restored ? O_APPEND : O_TRUNC), 0644);
        if (s->file_tx < 0) {
            int e = errno;

            plx_log(s->dev, PLX_LOG_ERR, "property tx: cannot open %s: %s", spec + 5, strerror(e));
            return -e;
        }
        s->tx_fd = s->file_tx;
    } else {
        plx_log(s->dev, PLX_LOG_ERR, "property tx: '%s' is not console, stdout, file:PATH, pty, none or auto",
                spec);
        return -EINVAL;
    }
    return 0;
}

static int setup_rx(uart_dev *s, const char *spec)
{
    int r;

    if (!strcmp(spec, "auto"))
        spec = plx_console_attached(s->dev) ? "console" : "none";
    if (!strcmp(spec, "console")) {
        if (!plx_console_attached(s->dev)) {
            plx_log(s->dev, PLX_LOG_ERR, "property rx: console, but this UART is not the machine's console");
            return -EINVAL;
        }
        s->rx_console = true;
        plx_console_set_input(s->dev, on_console_input, s);
    } else if (!strcmp(spec, "stdin")) {
        s->rx_fd = STDIN_FILENO;
    } else if (!strcmp(spec, "none")) {
        s->rx_fd = -1;
    } else if (!strcmp(spec, "pty")) {
        if ((r = open_pty(s)) < 0)
            return r;
        s->rx_fd = s->pty_master;
    } else if (!strncmp(spec, "file:", 5) && spec[5]) {
        s->file_rx = open(spec + 5, O_RDONLY | O_CLOEXEC);
        if (s->file_rx < 0) {
            int e = errno;

            plx_log(s->dev, PLX_LOG_ERR, "property rx: cannot open %s: %s", spec + 5, strerror(e));
            return -e;
        }
        s->rx_fd = s->file_rx;
    } else {
        plx_log(s->dev, PLX_LOG_ERR, "property rx: '%s' is not console, stdin, file:PATH, pty, none or auto",
                spec);
        return -EINVAL;
    }
    return 0;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void uart_fini(void *opaque)
{
    uart_dev *s = opaque;

    if (!s)
        return;
    if (s->rx_watched)
        plx_dev_watch_fd(s->dev, s->rx_fd, NULL, NULL);
    close_fd(&s->file_tx);
    close_fd(&s->file_rx);
    close_fd(&s->pty_slave);
    if (!s->pty_given)
        close_fd(&s->pty_master);
    free(s);
}

static int uart_init_dev(plx_dev *dev, void **opaque)
{
    uart_dev *s = calloc(1, sizeof(*s));
    const char *tx, *rx;
    int r;

    if (!s)
        return -ENOMEM;
    s->dev = dev;
    s->tx_fd = s->rx_fd = -1;
    s->pty_master = s->pty_slave = s->file_tx = s->file_rx = -1;
    s->regs = plx_dev_state(dev, sizeof(*s->regs), &s->restored);
    if (!s->regs) {
        free(s);
        return -ENOMEM;
    }
    tx = plx_dev_prop(dev, "tx");
    rx = plx_dev_prop(dev, "rx");
    if ((r = setup_tx(s, tx ? tx : "auto")) < 0 || (r = setup_rx(s, rx ? rx : "auto")) < 0) {
        uart_fini(s);
        return r;
    }
    if (s->restored) {
        uart_resume(s->regs, &hooks, s);
    } else {
        uart_init(s->regs, &hooks, s);
        uart_reset(s->regs);
    }
    rx_watch(s, true);
    console_grant(s);
    *opaque = s;
    return 0;
}

static void uart_reset_dev(void *opaque)
{
    uart_dev *s = opaque;

    uart_reset(s->regs);
    rx_watch(s, true);
    console_grant(s);
}

const plx_device_ops uart16550_ops = {
    .version = PLX_DEVICE_OPS_VERSION,
    .model = "ns16550a",
    .dt_node = "serial",
    .regions = regions,
    .n_regions = sizeof(regions) / sizeof(regions[0]),
    .irq_names = irq_names,
    .n_irqs = 1,
    .props = props,
    .n_props = sizeof(props) / sizeof(props[0]),
    .init = uart_init_dev,
    .reset = uart_reset_dev,
    .fini = uart_fini,
};

PLX_DEVICE_DEFINE(&uart16550_ops);
