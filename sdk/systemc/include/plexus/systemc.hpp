/*
 * <plexus/systemc.hpp>: SystemC TLM-2.0 models as plexus devices (docs/cosim.md, "SystemC TLM-2.0 models").
 *
 * A SystemC program instantiates one plexus::bridge beside its models and binds them to it:
 *
 *   int sc_main(int argc, char **argv)
 *   {
 *       plexus::device_info info;
 *       info.model = "acme,timer";
 *       info.regions = {{"regs", 0x0, 0x100, 4, 4}};          // name, base on mmio, size, access sizes
 *       info.irqs = {"irq"};
 *       info.props = {plexus::property::number("clock_hz", "100000000", "input clock", 1, 1000000000)};
 *       plexus::bridge bridge("bridge", info, argc, argv);  // connects to the hub; throws plexus::error
 *       acme_timer timer("timer", bridge.prop_u64("clock_hz"));
 *       bridge.mmio.bind(timer.socket);                       // guest accesses -> the model's target socket
 *       timer.dma.bind(bridge.ram);                           // the model's DMA -> guest RAM
 *       sc_core::sc_signal<bool> irq;
 *       timer.irq(irq);
 *       bridge.irq[0](irq);                                   // -> the device's IRQ line 0
 *       return bridge.run();                                  // sc_start() until the hub shuts the device down
 *   }
 *
 * Build: c++ -std=c++17 dev.cpp $(pkg-config --cflags --libs plexus-systemc)   (SystemC 2.3, C++17 like
 * Debian's libsystemc). The program is a plexus device process: the hub starts it (program: in the machine file)
 * and it takes the SDK's --plexus-* arguments.
 *
 * mmio (an initiator socket, multi-passthrough: bind one or more targets, in order) issues every guest access
 * the hub forwards as one b_transport: command, address (region base + offset), data, length and streaming
 * width equal to the access size, no byte enables; or, for a region with a bus_width, one aligned transaction
 * of bus_width bytes whose byte enables select the lanes the access covers. Response status -> what the guest
 * sees: TLM_OK_RESPONSE success; TLM_ADDRESS_ERROR_RESPONSE a decode error; every other error (and a status
 * left TLM_INCOMPLETE_RESPONSE) a bus error. On RISC-V both errors are load/store access faults; a read
 * returns all-ones. Errors of posted writes cannot reach the guest: they are logged.
 *
 * ram (a target socket, multi-passthrough: bind any number of initiators) is guest physical memory as the
 * device's RAM grants show it: b_transport and transport_dbg copy from and to the mapped grants (or by message
 * through the hub for RAM granted without its descriptor); get_direct_mem_ptr grants DMI straight into the
 * shared mapping of a whole grant (read-write, or read-only for a read-only grant); outside the grants
 * TLM_ADDRESS_ERROR_RESPONSE (b_transport), 0 bytes (transport_dbg), no DMI. When run() ends, before the grants
 * are unmapped, every initiator gets invalidate_direct_mem_ptr for the whole address space; invalidate_ram()
 * does the same for a range at any time. What the models write through b_transport is reported to the hub (its
 * CPU drops translated code there); what they write through DMI only if they say so (dma_written()): a model
 * whose writes may be code the guest runs (a disk, a network controller) calls it, or writes by b_transport.
 *
 * irq[n] (sc_in<bool>, bound like any port) drives the device's IRQ line n as a level.
 *
 * Time. SystemC time is the hub's virtual time (SystemC 0 s = hub 0 ns; the time resolution must be 1 ns or
 * finer). The models run only inside the bridge's handling of a hub message, on the SystemC kernel's own
 * thread: the bridge is an SC_THREAD that waits on the SDK's poll descriptor (plx_dev_dispatch) while SystemC
 * has nothing to do at the current time, and lets the kernel run (wait) when a message asks for time to pass.
 * Before it serves an access stamped with hub time T, SystemC runs up to T and every delta cycle at T; then the
 * b_transport; then every delta cycle it caused (interrupt changes, DMA), before the reply goes back. So a model
 * never runs ahead of the hub, except by the time an access itself takes (waits inside b_transport).
 *   free-running (the default): after each message the bridge arms a virtual-time timer at the models' next
 *     pending activity (sc_time_to_pending_activity); the hub fires it when its clock gets there, and waits
 *     for it, so an interrupt a model raises at T reaches the hub at T.
 *   lockstep (machine file `sync: lockstep`): the next activity is announced as the device's next event; the
 *     hub's time grants become SystemC runs up to the granted time; an access's own time (waits inside
 *     b_transport, plus the delay it returns) is charged to the guest's clock; interrupt changes carry the time
 *     they happened at. Runs are repeatable: the event log is the same byte for byte.
 *
 * Properties are declared in device_info.props; number properties are parsed and range-checked before the
 * device is ready (a bad value stops it from starting, with a message naming the property), so a model's
 * constructor can take prop_u64() as it is.
 *
 * Lifetime: one bridge per process (the process is one device). The constructor connects to the hub (the
 * handshake, RAM grants, properties) and returns a device that the hub already sees; construct and bind the
 * models after it, then run(). run() returns the exit status for sc_main (0 after an orderly shutdown by the
 * hub; 1 if the connection was lost, a model threw, called sc_stop(), or left the simulation without activity
 * while an access waited). The destructor closes the device if run() was never called (without telling the
 * models, which are gone by then).
 */
#ifndef PLEXUS_SYSTEMC_HPP
#define PLEXUS_SYSTEMC_HPP

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <systemc>
#include <tlm>
#include <tlm_utils/multi_passthrough_initiator_socket.h>
#include <tlm_utils/multi_passthrough_target_socket.h>

#include <plexus/sdk.h>

namespace plexus {

/* One region of the model's address map that the guest reaches; the machine file places it by name. */
struct region {
    std::string name;
    uint64_t base = 0;              /* address of the region's first byte on the mmio socket */
    uint64_t size = 0;              /* bytes, > 0 */
    unsigned min_access = 1;        /* access sizes the guest may use, bytes (1, 2, 4, 8); others: decode error */
    unsigned max_access = 8;
    bool unaligned = false;         /* the guest may make unaligned accesses (else a decode error) */
    unsigned bus_width = 0;         /* 0: one transaction of the access's size at its address; 1, 2, 4 or 8: an
                                       aligned transaction of that many bytes with byte enables for the access's
                                       lanes (base must be aligned; wider accesses are split by the hub) */
    unsigned target = 0;            /* which target bound to mmio serves the region: 0 = the first bound */
    bool posted = false;            /* the guest's writes do not wait for the model (errors only logged) */
};

/* A property the machine file may set (props:). */
struct PLX_EXPORT property {
    std::string name;
    std::string default_value;
    bool has_default = true;        /* false: no default (prop() is nullptr unless the machine sets it) */
    std::string description;
    bool numeric = false;           /* a number (decimal, 0x hex, k/M/G suffixes) in [min, max] */
    uint64_t min = 0, max = UINT64_MAX;

    static property text(std::string name, std::string default_value, std::string description);
    static property number(std::string name, std::string default_value, std::string description,
                           uint64_t min = 0, uint64_t max = UINT64_MAX);
};

struct device_info {
    std::string model;                  /* e.g. "acme,timer" */
    std::vector<region> regions;
    std::vector<std::string> irqs;      /* IRQ line n is called irqs[n] */
    std::vector<property> props;
    std::string dt_node;                /* generic device-tree node name ("timer"), or empty */
};

/* A bridge that cannot start (bad declaration, no hub, a property out of range) or a misuse of it. */
class PLX_EXPORT error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class PLX_EXPORT bridge_base : public sc_core::sc_module {
public:
    sc_core::sc_vector<sc_core::sc_in<bool>> irq;

    /* A property's configured value or default; nullptr if undeclared or unset without default. */
    const char *prop(const char *name) const;
    /* A number property's value (declared with property::number; checked before the device became ready).
     * Throws plexus::error for any other name. */
    uint64_t prop_u64(const char *name) const;
    /* The device's name in the machine file. */
    const char *device_name() const;
    /* The machine runs the device in lockstep. */
    bool lockstep() const { return lockstep_; }
    /* The SDK's device (plx_log, plx_dma_*, ...); valid until run() returns. */
    plx_dev *dev() const { return dev_; }

    /* Called when the hub resets the device (machine reset), inside simulation time: reset the models. */
    void on_reset(std::function<void()> fn) { reset_fn_ = std::move(fn); }
    /* invalidate_direct_mem_ptr(@start, @end) on every initiator bound to ram. */
    void invalidate_ram(uint64_t start = 0, uint64_t end = UINT64_MAX);
    /* A model wrote guest RAM [@addr, @addr + @len) through a DMI pointer: the hub drops the guest CPU's translated
     * code of those pages (plx_dma_written; TLM-2.0 has no such notice, so only the model can give it). Writes
     * through b_transport and transport_dbg on ram are reported by the bridge itself. */
    void dma_written(uint64_t addr, uint64_t len) { plx_dma_written(dev_, addr, (size_t)len); }

    /* sc_start() until the hub shuts the device down, then close it; the exit status for sc_main. */
    int run();

    ~bridge_base() override;

protected:
    bridge_base(sc_core::sc_module_name name, const device_info &info, int argc, char **argv);

    virtual unsigned n_targets() = 0;
    virtual void forward(unsigned target, tlm::tlm_generic_payload &txn, sc_core::sc_time &delay) = 0;
    virtual void invalidate_initiators(uint64_t start, uint64_t end) = 0;

    void ram_b_transport(tlm::tlm_generic_payload &txn, sc_core::sc_time &delay);
    bool ram_get_direct_mem_ptr(tlm::tlm_generic_payload &txn, tlm::tlm_dmi &dmi);
    unsigned ram_transport_dbg(tlm::tlm_generic_payload &txn);
    void end_of_elaboration() override;

private:
    struct tables;
    friend struct tables;

    void serve();
    void irq_changed();
    uint64_t access(unsigned region, bool write, uint64_t offset, uint64_t value, unsigned size);
    void advance_to(uint64_t ns);
    void settle();
    void schedule();
    void publish_irqs();
    void fail(const char *where);
    int close(int status);
    int dma(uint64_t addr, unsigned char *buf, unsigned len, bool write);
    sc_core::sc_time to_sc(uint64_t ns) const;
    uint64_t ceil_ns(const sc_core::sc_time &t) const;

    device_info info_;
    std::unique_ptr<tables> tables_;
    plx_dev *dev_ = nullptr;
    bool lockstep_ = false;
    bool open_ = false;                 /* plx_dev_close not yet called */
    bool stopped_ = false;              /* the hub ended the device, or a callback failed */
    bool lost_ = false;                 /* the hub went away */
    uint64_t units_per_ns_ = 1;
    plx_timer *timer_ = nullptr;
    uint64_t timer_at_ = PLX_NEVER;
    std::vector<int> irq_sent_;
    std::vector<uint64_t> numbers_;     /* parsed number properties, by declaration index */
    std::function<void()> reset_fn_;
    tlm::tlm_generic_payload txn_;
    unsigned char data_[8] = {};
    unsigned char be_[8] = {};
    unsigned posted_errors_ = 0;
};

/* The bridge with sockets of BUSWIDTH bits (the models' sockets must have the same; TLM's default is 32). */
template <unsigned BUSWIDTH = 32>
class basic_bridge : public bridge_base {
public:
    tlm_utils::multi_passthrough_initiator_socket_optional<basic_bridge, BUSWIDTH> mmio;
    tlm_utils::multi_passthrough_target_socket_optional<basic_bridge, BUSWIDTH> ram;

    basic_bridge(sc_core::sc_module_name name, const device_info &info, int argc, char **argv)
        : bridge_base(name, info, argc, argv), mmio("mmio"), ram("ram")
    {
        mmio.register_invalidate_direct_mem_ptr(this, &basic_bridge::mmio_invalidate);
        ram.register_b_transport(this, &basic_bridge::ram_b);
        ram.register_get_direct_mem_ptr(this, &basic_bridge::ram_dmi);
        ram.register_transport_dbg(this, &basic_bridge::ram_dbg);
    }

private:
    unsigned n_targets() override { return (unsigned)mmio.size(); }
    void forward(unsigned target, tlm::tlm_generic_payload &txn, sc_core::sc_time &delay) override
    {
        mmio[target]->b_transport(txn, delay);
    }
    void invalidate_initiators(uint64_t start, uint64_t end) override
    {
        for (unsigned i = 0; i < ram.size(); i++)
            ram[i]->invalidate_direct_mem_ptr(start, end);
    }
    /* The bridge keeps no DMI pointers into the models: it only calls b_transport. */
    void mmio_invalidate(int, sc_dt::uint64, sc_dt::uint64) {}
    void ram_b(int, tlm::tlm_generic_payload &txn, sc_core::sc_time &delay) { ram_b_transport(txn, delay); }
    bool ram_dmi(int, tlm::tlm_generic_payload &txn, tlm::tlm_dmi &dmi) { return ram_get_direct_mem_ptr(txn, dmi); }
    unsigned ram_dbg(int, tlm::tlm_generic_payload &txn) { return ram_transport_dbg(txn); }
};

using bridge = basic_bridge<32>;

} // namespace plexus

#endif
