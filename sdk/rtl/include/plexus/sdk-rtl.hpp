/*
 * A plexus device whose model is a Verilated peripheral (see <plexus/rtl-sim.hpp> for the port contract).
 *
 *   #include <plexus/sdk-rtl.hpp>
 *   #include "Vmy_periph.h"
 *   static const char *const irqs[] = {"irq"};
 *   int main(int argc, char **argv)
 *   {
 *       plexus::rtl::DeviceInfo info;
 *       info.model = "acme,my-periph";
 *       info.region_size = 0x100;
 *       info.irq_names = irqs;
 *       info.n_irqs = 1;
 *       return plexus::rtl::Device<Vmy_periph>::main(info, argc, argv);
 *   }
 *
 * The device declares one register region (name info.region_name, info.access_size-byte accesses, aligned),
 * the IRQ lines given, and these properties:
 *   clock_hz     clock frequency of the model (default info.clock_hz)
 *   vcd          write a VCD of every signal to this file (default: none)
 *   dma_latency  cycles between a DMA request and its ack (default 0)
 *   step_cycles  while the model is active, how many cycles of virtual time pass between timer steps (1024)
 *   idle_skip    1: cycles during which `active` is low are skipped, not simulated (default 1; see below)
 *   max_wait     access cycles a register transfer may wait for pready before it fails (default 1000)
 *
 * Lockstep (machine.yaml `sync: lockstep`): no timers; the model runs to each time the hub grants (advance),
 * announces now + step_cycles as its next event while `active`, stamps interrupt edges with their cycle's time,
 * and reports each register transfer's bus cycles so the guest's clock pays them (the model is never ahead).
 *
 * Timing model. Cycle n of the model happens at virtual time n / clock_hz. Before every register access, and on
 * every timer step, the model is clocked up to the cycle that matches plx_now(); a register transfer then takes
 * its own bus cycles (setup, wait states, access) that the hub's clock does not see, so back-to-back accesses
 * move the model ahead of the hub's clock by those cycles; it is never behind it. While the model's `active` output is high, a virtual-time timer fires every step_cycles
 * cycles so that the work completes, and interrupts rise, as guest time passes even when the guest does not touch
 * the device (e.g. it waits in WFI): an interrupt is seen by the hub at most step_cycles after the cycle that
 * raised it (exactly at the access when the guest polls). With idle_skip, cycles with `active` low are not
 * evaluated: the peripheral must not change state on its own while idle (true of bus-driven peripherals; turn
 * it off for free-running timers or models without an `active` port, which are then clocked cycle by cycle).
 *
 * DMA requests are served through plx_dma_read() / plx_dma_write() at the cycle the ack is driven; a failed
 * transfer drives dma_err.
 * IRQ output bit n drives line n through plx_irq_set() after the edge that changed it.
 *
 * Lifetime: main() builds the SDK tables (static storage) and runs plx_dev_main(); the Device object lives from
 * init() to fini().
 */
#ifndef PLEXUS_SDK_RTL_HPP
#define PLEXUS_SDK_RTL_HPP

#include <cerrno>
#include <cinttypes>
#include <cstring>
#include <new>

#include <plexus/rtl-sim.hpp>
#include <plexus/sdk.h>

namespace plexus::rtl {

struct DeviceInfo {
    const char *model = nullptr;            /* required, e.g. "plexus,crc32-rtl" */
    const char *region_name = "regs";
    uint64_t region_size = 0;               /* required */
    enum plx_region_kind kind = PLX_REGION_IO;
    unsigned access_size = 4;               /* bus width in bytes: the only guest access size accepted */
    const char *const *irq_names = nullptr;
    unsigned n_irqs = 0;
    const char *clock_hz = "100000000";     /* default of the clock_hz property */
};

template <class Top>
class Device {
public:
    using SimT = Sim<Top>;

    static int main(const DeviceInfo &info, int argc, char **argv)
    {
        static DeviceInfo s_info;
        static plx_region_ops s_rops;
        static plx_region_info s_region;
        static plx_prop_info s_props[6];
        static plx_device_ops s_ops;
        s_info = info;
        s_rops = plx_region_ops{};
        s_rops.read = &Device::region_read;
        s_rops.write = &Device::region_write;
        s_rops.endianness = PLX_LITTLE_ENDIAN;
        s_rops.valid = plx_access_rules{info.access_size, info.access_size, false};
        s_rops.impl = s_rops.valid;
        s_region = plx_region_info{};
        s_region.name = info.region_name;
        s_region.size = info.region_size;
        s_region.kind = info.kind;
        s_region.ops = &s_rops;
        s_props[0] = plx_prop_info{"clock_hz", info.clock_hz, "clock frequency of the RTL model in Hz"};
        s_props[1] = plx_prop_info{"vcd", nullptr, "write a VCD trace of every signal to this file"};
        s_props[2] = plx_prop_info{"dma_latency", "0", "cycles between a DMA request and its ack"};
        s_props[3] = plx_prop_info{"step_cycles", "1024", "cycles between timer steps while the model is active"};
        s_props[4] = plx_prop_info{"idle_skip", "1", "1: skip cycles while the model's active output is low"};
        s_props[5] = plx_prop_info{"max_wait", "1000", "access cycles a register transfer may wait for pready"};
        s_ops = plx_device_ops{};
        s_ops.version = PLX_DEVICE_OPS_VERSION;
        s_ops.model = info.model;
        s_ops.regions = &s_region;
        s_ops.n_regions = 1;
        s_ops.irq_names = info.irq_names;
        s_ops.n_irqs = info.n_irqs;
        s_ops.props = s_props;
        s_ops.n_props = sizeof s_props / sizeof s_props[0];
        s_ops.init = &Device::init;
        s_ops.reset = &Device::reset;
        s_ops.fini = &Device::fini;
        s_ops.advance = &Device::advance;
        info_ = &s_info;
        return plx_dev_main(&s_ops, argc, argv);
    }

    SimT &sim() { return sim_; }

private:
    Device(plx_dev *dev, const SimOptions &opt, uint64_t step, bool idle_skip)
        : dev_(dev), sim_(opt), step_cycles_(step), idle_skip_(idle_skip)
    {
        sim_.on_dma_read([this](uint64_t addr, void *buf, size_t len) -> int {
            int r = plx_dma_read(dev_, addr, buf, len);
            if (r < 0)
                plx_log(dev_, PLX_LOG_WARNING, "DMA read of %zu bytes at 0x%" PRIx64 " failed: %s", len, addr,
                        strerror(-r));
            return r;
        });
        sim_.on_dma_write([this](uint64_t addr, const void *buf, size_t len) -> int {
            int r = plx_dma_write(dev_, addr, buf, len);
            if (r < 0)
                plx_log(dev_, PLX_LOG_WARNING, "DMA write of %zu bytes at 0x%" PRIx64 " failed: %s", len, addr,
                        strerror(-r));
            return r;
        });
        sim_.on_irq([this](unsigned line, int level) {
            if (line >= info_->n_irqs)
                return;
            if (lockstep_)
                plx_irq_set_at(dev_, line, level, ns_at(sim_.cycles()));   /* the edge's own time */
            else
                plx_irq_set(dev_, line, level);
        });
    }

    ~Device()
    {
        plx_timer_free(timer_);
    }

    static int prop_u64(plx_dev *dev, const char *name, uint64_t *out, uint64_t min, uint64_t max)
    {
        uint64_t v;
        int r = plx_dev_prop_u64(dev, name, &v);
        if (r < 0)
            return r;
        if (v < min || v > max) {
            plx_log(dev, PLX_LOG_ERR, "property %s=%" PRIu64 " is out of range [%" PRIu64 ", %" PRIu64 "]", name, v,
                    min, max);
            return -EINVAL;
        }
        *out = v;
        return 0;
    }

    static int init(plx_dev *dev, void **opaque)
    {
        uint64_t hz, latency, step, skip, max_wait;
        int r;
        if ((r = prop_u64(dev, "clock_hz", &hz, 1, 100000000000ull)) < 0 ||
            (r = prop_u64(dev, "dma_latency", &latency, 0, 1000000)) < 0 ||
            (r = prop_u64(dev, "step_cycles", &step, 1, 1ull << 40)) < 0 ||
            (r = prop_u64(dev, "idle_skip", &skip, 0, 1)) < 0 ||
            (r = prop_u64(dev, "max_wait", &max_wait, 0, 1000000000)) < 0)
            return r;
        SimOptions opt;
        opt.clock_hz = hz;
        opt.dma_latency = (unsigned)latency;
        opt.max_wait = (unsigned)max_wait;
        Device *d = new (std::nothrow) Device(dev, opt, step, skip != 0 && SimT::has_active);
        if (!d)
            return -ENOMEM;
        d->lockstep_ = plx_dev_lockstep(dev);
        d->timer_ = plx_timer_new(dev, &Device::timer_cb, d);
        if (!d->timer_) {
            delete d;
            return -ENOMEM;
        }
        const char *vcd = plx_dev_prop(dev, "vcd");
        if (vcd && *vcd) {
            r = d->sim_.open_vcd(vcd);
            if (r < 0) {
                plx_log(dev, PLX_LOG_ERR, "cannot open VCD file %s: %s", vcd, strerror(-r));
                delete d;
                return r;
            }
        }
        d->sim_.reset();
        d->base_ = d->sim_.cycles();
        *opaque = d;
        return 0;
    }

    static void reset(void *opaque)
    {
        Device *d = static_cast<Device *>(opaque);
        d->sync();
        d->sim_.reset();
        d->schedule();
    }

    static void fini(void *opaque)
    {
        delete static_cast<Device *>(opaque);
    }

    static uint64_t region_read(void *opaque, uint64_t addr, unsigned size)
    {
        Device *d = static_cast<Device *>(opaque);
        d->sync();
        uint64_t v = 0, start = d->sim_.cycles();
        int r = d->sim_.read(addr, &v);
        if (r < 0) {
            d->bus_error("read", addr, r);
            v = 0;
        }
        d->bus_time(start);
        d->schedule();
        return v;
    }

    static void region_write(void *opaque, uint64_t addr, uint64_t data, unsigned size)
    {
        Device *d = static_cast<Device *>(opaque);
        d->sync();
        uint64_t start = d->sim_.cycles();
        int r = d->sim_.write(addr, data);
        if (r < 0)
            d->bus_error("write", addr, r);
        d->bus_time(start);
        d->schedule();
    }

    /* Lockstep: time granted up to @until_ns; the model runs to it (never past it). */
    static void advance(void *opaque, uint64_t until_ns)
    {
        Device *d = static_cast<Device *>(opaque);
        (void)until_ns;     /* plx_now() is until_ns during the call */
        d->sync();
        d->schedule();
    }

    /* Lockstep: the transfer's bus cycles (setup, wait states) since cycle @start took virtual time the guest
     * pays for. */
    void bus_time(uint64_t start)
    {
        if (lockstep_ && sim_.cycles() > start)
            plx_set_access_busy(dev_, ns_at(sim_.cycles()) - ns_at(start));
    }

    static void timer_cb(void *opaque)
    {
        Device *d = static_cast<Device *>(opaque);
        d->armed_ = false;
        d->sync();
        d->schedule();
    }

    void bus_error(const char *what, uint64_t addr, int r)
    {
        plx_log(dev_, PLX_LOG_WARNING, "guest %s at offset 0x%" PRIx64 ": %s", what, addr,
                r == -EIO ? "the peripheral signalled a bus error (pslverr)" : "no pready from the peripheral");
    }

    /* First cycle at or after virtual time @ns (cycle base_ is at time 0). */
    uint64_t cycle_at(uint64_t ns) const
    {
        return base_ + (uint64_t)(((unsigned __int128)ns * sim_.options().clock_hz) / 1000000000u);
    }

    uint64_t ns_at(uint64_t cycle) const
    {
        unsigned __int128 c = cycle > base_ ? cycle - base_ : 0;
        uint64_t hz = sim_.options().clock_hz;
        return (uint64_t)((c * 1000000000u + hz - 1) / hz);
    }

    /* Clock the model up to the hub's virtual time. */
    void sync()
    {
        uint64_t target = cycle_at(plx_now(dev_));
        while (sim_.cycles() < target) {
            if (idle_skip_ && !sim_.active()) {
                sim_.skip(target - sim_.cycles());
                break;
            }
            sim_.cycle();
        }
    }

    /* Keep a timer step pending while the model has work in flight (lockstep: announce it as the next event;
     * the hub grants time then). */
    void schedule()
    {
        if (lockstep_) {
            plx_set_next_event(dev_, sim_.active() ? ns_at(sim_.cycles() + step_cycles_) : PLX_NEVER);
            return;
        }
        if (sim_.active()) {
            if (!armed_) {
                plx_timer_mod(timer_, ns_at(sim_.cycles() + step_cycles_));
                armed_ = true;
            }
        } else if (armed_) {
            plx_timer_del(timer_);
            armed_ = false;
        }
    }

    static inline const DeviceInfo *info_ = nullptr;
    plx_dev *dev_;
    SimT sim_;
    plx_timer *timer_ = nullptr;
    uint64_t step_cycles_;
    bool idle_skip_;
    bool armed_ = false;
    bool lockstep_ = false;
    uint64_t base_ = 0;
};

} // namespace plexus::rtl

#endif
