/*
 * @NAME@: a plexus device with one register, made by `plexus new-device` (see README.md).
 *
 * One IO region "regs", 0x100 bytes (machine.yaml places it at 0x10020000):
 *   0x0  VALUE  RW  32 bits; 0x12345678 after reset, then what was last written
 * Other offsets read 0 and ignore writes. 32-bit accesses only: the hub refuses the rest (a decode error).
 *
 * The region callbacks and access rules have the shape of QEMU's MemoryRegionOps: a QEMU device's read/write
 * functions move here almost unchanged.
 */
#include <errno.h>
#include <stdlib.h>

#include <plexus/sdk.h>

#define REG_VALUE   0x0
#define VALUE_RESET 0x12345678u

typedef struct @ID@ {
    uint32_t value;
} @ID@;

static uint64_t @ID@_read(void *opaque, uint64_t addr, unsigned size)
{
    @ID@ *s = opaque;

    switch (addr) {
    case REG_VALUE:
        return s->value;
    default:
        return 0;
    }
}

static void @ID@_write(void *opaque, uint64_t addr, uint64_t data, unsigned size)
{
    @ID@ *s = opaque;

    switch (addr) {
    case REG_VALUE:
        s->value = (uint32_t)data;
        break;
    default:
        break;
    }
}

static const plx_region_ops @ID@_region_ops = {
    .read = @ID@_read,
    .write = @ID@_write,
    .endianness = PLX_LITTLE_ENDIAN,
    .valid = { .min_access_size = 4, .max_access_size = 4 },   /* what the guest may do */
    .impl = { .min_access_size = 4, .max_access_size = 4 },    /* what the callbacks handle */
};

static const plx_region_info @ID@_regions[] = {
    { .name = "regs", .size = 0x100, .kind = PLX_REGION_IO, .ops = &@ID@_region_ops },
};

static void @ID@_reset(void *opaque)
{
    @ID@ *s = opaque;

    s->value = VALUE_RESET;
}

static int @ID@_init(plx_dev *dev, void **opaque)
{
    @ID@ *s = calloc(1, sizeof(*s));

    if (!s)
        return -ENOMEM;
    @ID@_reset(s);
    *opaque = s;
    return 0;
}

static const plx_device_ops @ID@_ops = {
    .version = PLX_DEVICE_OPS_VERSION,
    .model = "example,@NAME@",
    .regions = @ID@_regions,
    .n_regions = 1,
    .init = @ID@_init,
    .reset = @ID@_reset,
    .fini = free,
};

int main(int argc, char **argv)
{
    return plx_dev_main(&@ID@_ops, argc, argv);
}
