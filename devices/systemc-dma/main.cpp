/*
 * plexus-systemc-dma: the DMA engine's SystemC model (dma_engine.cpp, plain TLM-2.0) as a plexus device. Drop-in
 * for plexus-dma, the C model: same model name, region, IRQ line, properties and register behaviour.
 * Properties: latency-ns, ns-per-byte (as plexus-dma), dmi (1: copy through DMI when granted; 0: b_transport).
 */
#include <cstdio>

#include <plexus/systemc.hpp>

#include "dma_engine.h"

int sc_main(int argc, char **argv)
{
    plexus::device_info info;
    info.model = "plexus,dma";
    plexus::region regs;
    regs.name = "regs";
    regs.size = dma_engine::region_size;
    regs.min_access = 4;
    regs.max_access = 8;
    regs.posted = true;         /* as plexus-dma: the guest's register writes do not wait */
    info.regions = { regs };
    info.irqs = { "irq" };
    info.props = {
        plexus::property::number("latency-ns", "1000", "virtual time every transfer takes, in ns", 0, 1ull << 50),
        plexus::property::number("ns-per-byte", "1", "virtual time per byte copied, in ns", 0, 1000000),
        plexus::property::number("dmi", "1", "1: copy through DMI when the memory grants it; 0: b_transport", 0, 1),
    };
    try {
        plexus::bridge bridge("bridge", info, argc, argv);
        dma_engine::config cfg;
        cfg.latency = sc_core::sc_time((double)bridge.prop_u64("latency-ns"), sc_core::SC_NS);
        cfg.per_byte = sc_core::sc_time((double)bridge.prop_u64("ns-per-byte"), sc_core::SC_NS);
        cfg.use_dmi = bridge.prop_u64("dmi") != 0;
        /* The guest's CPU drops translated code where the engine wrote through DMI (as the C model's copies do). */
        cfg.written = [&bridge](uint64_t addr, uint64_t len) { bridge.dma_written(addr, len); };
        dma_engine dma("dma", cfg);
        sc_core::sc_signal<bool> irq("irq_line");
        bridge.mmio.bind(dma.regs);
        dma.mem.bind(bridge.ram);
        dma.irq(irq);
        bridge.irq[0](irq);
        bridge.on_reset([&dma] { dma.reset(); });
        return bridge.run();
    } catch (const plexus::error &e) {
        std::fprintf(stderr, "plexus-systemc-dma: %s\n", e.what());
        return 1;
    }
}
