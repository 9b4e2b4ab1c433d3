/*
 * plexus-rtl-crc32: the CRC-32 accelerator of rtl/crc32_dma.v, Verilated, as a plexus device.
 * Register map and behaviour: rtl/crc32_dma.v; the same device as a C model: devices/crc32-model.
 * Properties: those of <plexus/sdk-rtl.hpp> (clock_hz, vcd, dma_latency, step_cycles, idle_skip, max_wait).
 */
#include <plexus/sdk-rtl.hpp>

#include "Vcrc32_dma.h"

int main(int argc, char **argv)
{
    static const char *const irqs[] = {"irq"};
    plexus::rtl::DeviceInfo info;
    info.model = "plexus,crc32";
    info.region_name = "regs";
    info.region_size = 0x100;
    info.irq_names = irqs;
    info.n_irqs = 1;
    return plexus::rtl::Device<Vcrc32_dma>::main(info, argc, argv);
}
