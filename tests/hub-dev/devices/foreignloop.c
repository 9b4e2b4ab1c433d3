/*
 * A device whose process runs its own poll loop (plx_dev_open / plx_dev_get_poll_fd / plx_dev_dispatch), as a
 * simulator with an event loop of its own would: the loop also serves a timerfd of the program's own.
 *
 * Region "regs" (IO, 0x100 bytes):
 *   0x00  scratch (read/write)
 *   0x04  ticks of the program's own 1 ms timerfd, counted by its loop, outside the SDK (read)
 *   0x08  plx_dev_dispatch() calls so far (read)
 *   0x0c  write: write a byte to a pipe the SDK watches (plx_dev_watch_fd); read: watch callbacks so far
 *   0x10  write v: arm a timer at now + v, whose callback pulses IRQ line 0; read: timer fires so far
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "plexus/sdk.h"

struct st {
    plx_dev *dev;
    uint32_t scratch, ticks, dispatches, watched, fires;
    int pipe[2];
    plx_timer *timer;
};

static void on_pipe(void *opaque, int fd)
{
    struct st *s = opaque;
    char b[16];
    if (read(fd, b, sizeof(b)) > 0)
        s->watched++;
}

static void on_timer(void *opaque)
{
    struct st *s = opaque;
    s->fires++;
    plx_irq_pulse(s->dev, 0);
}

static uint64_t regs_read(void *opaque, uint64_t addr, unsigned size)
{
    struct st *s = opaque;
    switch (addr) {
    case 0x00: return s->scratch;
    case 0x04: return s->ticks;
    case 0x08: return s->dispatches;
    case 0x0c: return s->watched;
    case 0x10: return s->fires;
    default: return 0;
    }
}

static void regs_write(void *opaque, uint64_t addr, uint64_t data, unsigned size)
{
    struct st *s = opaque;
    switch (addr) {
    case 0x00: s->scratch = (uint32_t)data; break;
    case 0x0c:
        if (write(s->pipe[1], "x", 1) != 1)
            plx_log(s->dev, PLX_LOG_ERR, "pipe write: %s", strerror(errno));
        break;
    case 0x10: plx_timer_mod(s->timer, plx_now(s->dev) + data); break;
    default: break;
    }
}

static const plx_region_ops regs_ops = {
    .read = regs_read, .write = regs_write,
    .valid = { .min_access_size = 4, .max_access_size = 4 }, .impl = { .min_access_size = 4, .max_access_size = 4 },
};
static const plx_region_info regions[] = { { .name = "regs", .size = 0x100, .kind = PLX_REGION_IO, .ops = &regs_ops } };
static const char *const irqs[] = { "irq0" };

static int init(plx_dev *dev, void **opaque)
{
    struct st *s = calloc(1, sizeof(*s));
    if (!s || pipe2(s->pipe, O_CLOEXEC | O_NONBLOCK) < 0)
        return -ENOMEM;
    s->dev = dev;
    s->timer = plx_timer_new(dev, on_timer, s);
    if (!s->timer || plx_dev_watch_fd(dev, s->pipe[0], on_pipe, s) < 0)
        return -ENOMEM;
    *opaque = s;
    return 0;
}

static void fini(void *opaque)
{
    struct st *s = opaque;
    plx_timer_free(s->timer);
    close(s->pipe[0]);
    close(s->pipe[1]);
    free(s);
}

static const plx_device_ops ops = {
    .version = PLX_DEVICE_OPS_VERSION, .model = "plexus,test-foreign-loop", .regions = regions, .n_regions = 1,
    .irq_names = irqs, .n_irqs = 1, .init = init, .fini = fini,
};

static void to_stderr(void *opaque, int level, const char *device, const char *text)
{
    fprintf(stderr, "%s: %s: %s\n", device, plx_log_level_name(level), text);
}

int main(int argc, char **argv)
{
    plx_set_log_handler(to_stderr, NULL);
    plx_dev *dev = plx_dev_open(&ops, argc, argv);
    if (!dev)
        return 1;
    struct st *s = plx_dev_opaque(dev);
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    struct itimerspec its = { .it_interval = { 0, 1000000 }, .it_value = { 0, 1000000 } };
    if (tfd < 0 || timerfd_settime(tfd, 0, &its, NULL) < 0)
        return 1;
    struct pollfd p[2] = { { .fd = plx_dev_get_poll_fd(dev), .events = POLLIN }, { .fd = tfd, .events = POLLIN } };
    int r = 0;
    while (r == 0) {
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            break;
        if (p[1].revents & POLLIN) {
            uint64_t n;
            if (read(tfd, &n, sizeof(n)) == sizeof(n))
                s->ticks += (uint32_t)n;
        }
        if (p[0].revents & POLLIN) {
            s->dispatches++;
            r = plx_dev_dispatch(dev, 0);
        }
    }
    close(tfd);
    int status = plx_dev_close(dev);
    return r < 0 ? 1 : status;
}
