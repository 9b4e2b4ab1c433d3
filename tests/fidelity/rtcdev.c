/*
 * A real-time clock in the manner of the goldfish RTC (the register layout of Linux's rtc-goldfish driver), ported
 * from an in-process model: the tests of what the guest sees of posted writes, interrupts and access times run it
 * through the hub. Its clock is the guest's virtual time (plx_now), in ns. One SHADOW region "regs" of 0x24 bytes,
 * 4-byte accesses; IRQ line "irq":
 *   0x00 TIME_LOW         read (through): the low half of the time; latches the high half
 *   0x04 TIME_HIGH        read (through): the latched high half
 *   0x08 ALARM_LOW        write: arm the alarm at ALARM_HIGH:value (at once if that is past)
 *   0x0c ALARM_HIGH       write
 *   0x10 IRQ_ENABLED      write: 1 lets a pending alarm drive the line
 *   0x14 CLEAR_ALARM      write: disarm
 *   0x18 ALARM_STATUS     read (shadow): 1 while the alarm is armed
 *   0x1c CLEAR_INTERRUPT  write: the alarm's interrupt is no longer pending (the line drops)
 *   0x20 INT_STATUS       read (shadow): 1 while the interrupt is pending (not goldfish's: a status to poll)
 * Writes are posted (SHADOW), as an out-of-process port of a device whose model cleared its interrupt inside the
 * write handler would declare them.
 */
#include <stdint.h>
#include <stdlib.h>

#include <plexus/sdk.h>

enum {
    TIME_LOW = 0x00, TIME_HIGH = 0x04, ALARM_LOW = 0x08, ALARM_HIGH = 0x0c, IRQ_ENABLED = 0x10, CLEAR_ALARM = 0x14,
    ALARM_STATUS = 0x18, CLEAR_INTERRUPT = 0x1c, INT_STATUS = 0x20, REGS_SIZE = 0x24,
};

struct rtc {
    plx_dev *dev;
    plx_timer *alarm;
    uint32_t time_high, alarm_high;
    bool armed, pending, enabled;
};

static void publish(struct rtc *s)
{
    plx_shadow_store(s->dev, 0, ALARM_STATUS, s->armed, 4);
    plx_shadow_store(s->dev, 0, INT_STATUS, s->pending, 4);
    plx_irq_set(s->dev, 0, s->pending && s->enabled);
}

static void alarm_fired(void *opaque)
{
    struct rtc *s = opaque;
    s->armed = false;
    s->pending = true;
    publish(s);
}

static uint64_t regs_read(void *opaque, uint64_t addr, unsigned size)
{
    struct rtc *s = opaque;
    uint64_t now = plx_now(s->dev);
    switch (addr) {
    case TIME_LOW:
        s->time_high = (uint32_t)(now >> 32);
        return (uint32_t)now;
    case TIME_HIGH:
        return s->time_high;
    case ALARM_STATUS:
        return s->armed;
    case INT_STATUS:
        return s->pending;
    default:
        return 0;
    }
}

static void regs_write(void *opaque, uint64_t addr, uint64_t data, unsigned size)
{
    struct rtc *s = opaque;
    switch (addr) {
    case ALARM_LOW: {
        uint64_t when = (uint64_t)s->alarm_high << 32 | (uint32_t)data;
        s->armed = true;
        if (when <= plx_now(s->dev)) {
            alarm_fired(s);
            return;
        }
        plx_timer_mod(s->alarm, when);
        break;
    }
    case ALARM_HIGH:
        s->alarm_high = (uint32_t)data;
        return;
    case IRQ_ENABLED:
        s->enabled = data & 1;
        break;
    case CLEAR_ALARM:
        s->armed = false;
        plx_timer_del(s->alarm);
        break;
    case CLEAR_INTERRUPT:
        s->pending = false;
        break;
    default:
        return;
    }
    publish(s);
}

static const plx_region_ops regs_ops = {
    .read = regs_read,
    .write = regs_write,
    .endianness = PLX_LITTLE_ENDIAN,
    .valid = { .min_access_size = 4, .max_access_size = 4 },
    .impl = { .min_access_size = 4, .max_access_size = 4 },
};
static const struct plx_range through[] = { { TIME_LOW, 8 } };
static const plx_region_info regions[] = {
    { .name = "regs", .size = REGS_SIZE, .kind = PLX_REGION_SHADOW, .ops = &regs_ops, .read_through = through,
      .n_read_through = 1 },
};
static const char *const irqs[] = { "irq" };

static int init(plx_dev *dev, void **opaque)
{
    struct rtc *s = calloc(1, sizeof(*s));
    if (!s)
        return -12;
    s->dev = dev;
    s->alarm = plx_timer_new(dev, alarm_fired, s);
    if (!s->alarm) {
        free(s);
        return -12;
    }
    *opaque = s;
    publish(s);
    return 0;
}

static void fini(void *opaque)
{
    free(opaque);
}

static const plx_device_ops ops = {
    .version = PLX_DEVICE_OPS_VERSION, .model = "plexus,test-goldfish-rtc",
    .regions = regions, .n_regions = 1, .irq_names = irqs, .n_irqs = 1,
    .init = init, .fini = fini,
};

int main(int argc, char **argv)
{
    return plx_dev_main(&ops, argc, argv);
}
