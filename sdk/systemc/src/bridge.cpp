/*
 * plexus::bridge: a SystemC TLM-2.0 model as a plexus device (see <plexus/systemc.hpp>). The device tables the SDK
 * wants are built from device_info; the SDK's loop runs inside an SC_THREAD (plx_dev_dispatch on the calling
 * thread, which is the SystemC kernel's), and every hub message is served in simulation context, so targets may
 * wait() inside b_transport and the models' reactions happen before the reply.
 */
#include "plexus/systemc.hpp"

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <utility>

namespace plexus {

using sc_core::sc_time;

/* A device process's standard output is the machine's console: SystemC's banner must not land there. Set before
 * any SystemC object exists (the kernel prints it when its context is created); a program may set it itself. */
__attribute__((constructor)) static void quiet_banner()
{
    setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 0);
}

property property::text(std::string name, std::string default_value, std::string description)
{
    property p;
    p.name = std::move(name);
    p.default_value = std::move(default_value);
    p.description = std::move(description);
    return p;
}

property property::number(std::string name, std::string default_value, std::string description, uint64_t min,
                          uint64_t max)
{
    property p = text(std::move(name), std::move(default_value), std::move(description));
    p.numeric = true;
    p.min = min;
    p.max = max;
    return p;
}

/* ---- the SDK's tables ------------------------------------------------------------------------------------- */

namespace {

bridge_base *the_bridge;            /* one per process: the SDK callbacks and SystemC reports find it here */
bridge_base *opening;               /* the bridge whose plx_dev_open() is running (init() needs it) */

constexpr unsigned n_thunks = PLX_MAX_REGIONS;

bool is_size(unsigned s)
{
    return s == 1 || s == 2 || s == 4 || s == 8;
}

void log_to_stderr(void *, int, const char *device, const char *text)
{
    std::fprintf(stderr, "%s: %s\n", device, text);
}

const char *level_name(sc_core::sc_severity s)
{
    switch (s) {
    case sc_core::SC_INFO: return "info";
    case sc_core::SC_WARNING: return "warning";
    case sc_core::SC_ERROR: return "error";
    default: return "fatal";
    }
}

/* SystemC's reports (the models' SC_REPORT_*, the kernel's) go to the hub's log as the device's records; the rest
 * of what they ask for (throw on errors, abort on fatals) stays as the kernel does it. */
void report_to_hub(const sc_core::sc_report &r, const sc_core::sc_actions &actions)
{
    if (actions & (sc_core::SC_DISPLAY | sc_core::SC_LOG)) {
        int level = r.get_severity() == sc_core::SC_INFO      ? PLX_LOG_INFO
                    : r.get_severity() == sc_core::SC_WARNING ? PLX_LOG_WARNING
                                                              : PLX_LOG_ERR;
        const char *process = r.get_process_name();
        plx_log(the_bridge ? the_bridge->dev() : nullptr, level, "SystemC %s at %s: %s: %s%s%s",
                level_name(r.get_severity()), sc_core::sc_time_stamp().to_string().c_str(), r.get_msg_type(),
                r.get_msg(), process && *process ? " in " : "", process ? process : "");
    }
    sc_core::sc_report_handler::default_handler(r, actions & ~(sc_core::SC_DISPLAY | sc_core::SC_LOG));
}

} // namespace

struct bridge_base::tables {
    std::vector<plx_region_ops> rops;
    std::vector<plx_region_info> regions;
    std::vector<plx_prop_info> props;
    std::vector<const char *> irq_names;
    plx_device_ops ops{};

    static bridge_base *self(void *opaque) { return static_cast<bridge_base *>(opaque); }

    template <unsigned I> static uint64_t read(void *opaque, uint64_t addr, unsigned size)
    {
        return self(opaque)->access(I, false, addr, 0, size);
    }
    template <unsigned I> static void write(void *opaque, uint64_t addr, uint64_t data, unsigned size)
    {
        self(opaque)->access(I, true, addr, data, size);
    }
    template <unsigned... I> static void thunks(std::integer_sequence<unsigned, I...>, plx_region_ops *ops)
    {
        ((ops[I].read = &read<I>, ops[I].write = &write<I>), ...);
    }

    static int init(plx_dev *dev, void **opaque);
    static void reset(void *opaque);
    static void fini(void *opaque);
    static void advance(void *opaque, uint64_t until_ns);
    static void timer(void *opaque);
};

int bridge_base::tables::init(plx_dev *dev, void **opaque)
{
    bridge_base *b = opening;
    b->dev_ = dev;
    *opaque = b;
    for (size_t i = 0; i < b->info_.props.size(); i++) {
        const property &p = b->info_.props[i];
        if (!p.numeric || (!p.has_default && !plx_dev_prop(dev, p.name.c_str())))
            continue;
        uint64_t v;
        int r = plx_dev_prop_u64(dev, p.name.c_str(), &v);     /* logs what is wrong */
        if (r < 0)
            return r;
        if (v < p.min || v > p.max) {
            plx_log(dev, PLX_LOG_ERR, "property '%s' = %" PRIu64 " is out of range [%" PRIu64 ", %" PRIu64 "]",
                    p.name.c_str(), v, p.min, p.max);
            return -EINVAL;
        }
        b->numbers_[i] = v;
    }
    b->lockstep_ = plx_dev_lockstep(dev);
    if (!b->lockstep_ && !(b->timer_ = plx_timer_new(dev, &tables::timer, b)))
        return -ENOMEM;
    return 0;
}

void bridge_base::tables::reset(void *opaque)
{
    bridge_base *b = self(opaque);
    try {
        b->advance_to(plx_now(b->dev_));
        if (b->reset_fn_)
            b->reset_fn_();
        b->settle();
        /* The SDK forgot the lines' levels: say them again. */
        b->irq_sent_.assign(b->irq_sent_.size(), -1);
        b->publish_irqs();
        b->schedule();
    } catch (...) {
        b->fail("the device's reset");
    }
}

void bridge_base::tables::fini(void *opaque)
{
    bridge_base *b = self(opaque);
    plx_timer_free(b->timer_);
    b->timer_ = nullptr;
}

void bridge_base::tables::advance(void *opaque, uint64_t until_ns)
{
    bridge_base *b = self(opaque);
    try {
        b->advance_to(until_ns);
        b->schedule();
    } catch (...) {
        b->fail("a time grant");
    }
}

void bridge_base::tables::timer(void *opaque)
{
    bridge_base *b = self(opaque);
    b->timer_at_ = PLX_NEVER;       /* it fired: disarmed */
    try {
        b->advance_to(plx_now(b->dev_));
        b->schedule();
    } catch (...) {
        b->fail("a timer step");
    }
}

/* ---- construction ----------------------------------------------------------------------------------------- */

static void check_info(const device_info &info)
{
    auto bad = [&](const std::string &what) { throw error("plexus::bridge (" + info.model + "): " + what); };
    if (info.model.empty())
        bad("device_info.model is empty");
    if (info.regions.empty() || info.regions.size() > n_thunks)
        bad("between 1 and " + std::to_string(n_thunks) + " regions are needed, not " +
            std::to_string(info.regions.size()));
    for (const region &r : info.regions) {
        std::string where = "region '" + r.name + "': ";
        if (r.name.empty())
            bad("a region has no name");
        if (r.size == 0)
            bad(where + "size 0");
        if (!is_size(r.min_access) || !is_size(r.max_access) || r.min_access > r.max_access)
            bad(where + "access sizes must be 1, 2, 4 or 8 with min_access <= max_access");
        if (r.bus_width && (!is_size(r.bus_width) || r.base % r.bus_width || r.min_access > r.bus_width ||
                            r.unaligned))
            bad(where + "bus_width must be 1, 2, 4 or 8, divide base, be at least min_access, and the region "
                        "aligned");
        if (r.size - 1 > UINT64_MAX - r.base)
            bad(where + "base + size wraps around");
    }
    for (const property &p : info.props)
        if (p.name.empty() || (p.numeric && p.min > p.max))
            bad("a property has no name, or its min is above its max");
}

bridge_base::bridge_base(sc_core::sc_module_name name, const device_info &info, int argc, char **argv)
    : sc_module(name), irq("irq", info.irqs.size()), info_(info), tables_(new tables)
{
    check_info(info_);
    if (the_bridge)
        throw error("plexus::bridge: one bridge per process (a process is one device)");
    units_per_ns_ = sc_time(1, sc_core::SC_NS).value();
    if (units_per_ns_ == 0)
        throw error("plexus::bridge: the SystemC time resolution must be 1 ns or finer");

    tables &t = *tables_;
    t.rops.resize(info_.regions.size());
    std::vector<plx_region_ops> all(n_thunks);
    tables::thunks(std::make_integer_sequence<unsigned, n_thunks>{}, all.data());
    for (size_t i = 0; i < info_.regions.size(); i++) {
        const region &r = info_.regions[i];
        plx_region_ops &o = t.rops[i];
        o = all[i];
        o.endianness = PLX_LITTLE_ENDIAN;
        o.valid = plx_access_rules{ r.min_access, r.max_access, r.unaligned };
        /* With a bus width, every access narrower than it becomes byte enables; wider ones are split. */
        o.impl = r.bus_width ? plx_access_rules{ 1, r.bus_width, false } : o.valid;
        plx_region_info ri{};
        ri.name = r.name.c_str();
        ri.size = r.size;
        ri.kind = r.posted ? PLX_REGION_POSTED : PLX_REGION_IO;
        ri.ops = &o;
        t.regions.push_back(ri);
    }
    for (const property &p : info_.props)
        t.props.push_back(plx_prop_info{ p.name.c_str(), p.has_default ? p.default_value.c_str() : nullptr,
                                         p.description.c_str() });
    for (const std::string &n : info_.irqs)
        t.irq_names.push_back(n.c_str());
    numbers_.assign(info_.props.size(), 0);
    irq_sent_.assign(info_.irqs.size(), 0);

    plx_device_ops &ops = t.ops;
    ops.version = PLX_DEVICE_OPS_VERSION;
    ops.model = info_.model.c_str();
    ops.regions = t.regions.data();
    ops.n_regions = (unsigned)t.regions.size();
    ops.irq_names = t.irq_names.empty() ? nullptr : t.irq_names.data();
    ops.n_irqs = (unsigned)t.irq_names.size();
    ops.props = t.props.empty() ? nullptr : t.props.data();
    ops.n_props = (unsigned)t.props.size();
    ops.init = &tables::init;
    ops.reset = &tables::reset;
    ops.fini = &tables::fini;
    ops.advance = &tables::advance;
    ops.dt_node = info_.dt_node.empty() ? nullptr : info_.dt_node.c_str();

    plx_set_log_handler(log_to_stderr, nullptr);
    sc_core::sc_report_handler::set_handler(report_to_hub);
    opening = this;
    plx_dev *dev = plx_dev_open(&ops, argc, argv);
    opening = nullptr;
    if (!dev)
        throw error("plexus::bridge (" + info_.model + "): the device did not start (the reason is logged above)");
    open_ = true;
    the_bridge = this;

    SC_HAS_PROCESS(bridge_base);
    SC_THREAD(serve);
    set_stack_size(1 << 20);        /* the SDK's frames and the models' b_transport run on it */
    if (irq.size()) {
        SC_METHOD(irq_changed);
        for (auto &port : irq)
            sensitive << port;
        dont_initialize();
    }
}

bridge_base::~bridge_base()
{
    if (open_)
        close(1);
    if (the_bridge == this)
        the_bridge = nullptr;
}

void bridge_base::end_of_elaboration()
{
    for (const region &r : info_.regions)
        if (r.target >= n_targets())
            throw error("plexus::bridge: region '" + r.name + "' is served by mmio target " +
                        std::to_string(r.target) + ", but " + std::to_string(n_targets()) +
                        " targets are bound to mmio");
}

/* ---- properties ------------------------------------------------------------------------------------------- */

const char *bridge_base::prop(const char *name) const
{
    return dev_ && open_ ? plx_dev_prop(dev_, name) : nullptr;
}

uint64_t bridge_base::prop_u64(const char *name) const
{
    for (size_t i = 0; i < info_.props.size(); i++)
        if (info_.props[i].numeric && info_.props[i].name == name && prop(name))
            return numbers_[i];
    throw error(std::string("plexus::bridge: '") + name + "' is not a number property with a value");
}

const char *bridge_base::device_name() const
{
    return dev_ && open_ ? plx_dev_name(dev_) : "";
}

/* ---- time --------------------------------------------------------------------------------------------------- */

sc_time bridge_base::to_sc(uint64_t ns) const
{
    uint64_t max = UINT64_MAX / units_per_ns_;
    return sc_time::from_value((ns < max ? ns : max) * units_per_ns_);
}

uint64_t bridge_base::ceil_ns(const sc_time &t) const
{
    return t.value() / units_per_ns_ + (t.value() % units_per_ns_ != 0);
}

/* Every delta cycle at the current time: what the last step set off (signal updates, notified processes). */
void bridge_base::settle()
{
    while (sc_core::sc_pending_activity_at_current_time())
        wait(sc_core::SC_ZERO_TIME);
}

/* SystemC up to hub time @ns, everything at @ns included; never back (an access's own time may be ahead). */
void bridge_base::advance_to(uint64_t ns)
{
    sc_time target = to_sc(ns), now = sc_core::sc_time_stamp();
    if (target > now)
        wait(target - now);
    settle();
}

/* When the models next act on their own: a timer at that time, or (lockstep) the next event the hub grants. */
void bridge_base::schedule()
{
    uint64_t next = PLX_NEVER;
    if (sc_core::sc_pending_activity_at_future_time())
        next = ceil_ns(sc_core::sc_time_stamp() + sc_core::sc_time_to_pending_activity());
    if (lockstep_) {
        plx_set_next_event(dev_, next);
        return;
    }
    if (next == timer_at_)
        return;
    timer_at_ = next;
    if (next == PLX_NEVER)
        plx_timer_del(timer_);
    else
        plx_timer_mod(timer_, next);
}

/* ---- the loop ----------------------------------------------------------------------------------------------- */

void bridge_base::serve()
{
    settle();       /* the models' start (their threads' first run, initial writes) */
    publish_irqs();
    schedule();
    for (;;) {
        int r = plx_dev_dispatch(dev_, -1);
        if (r == 0)
            continue;
        if (r < 0) {
            lost_ = true;
            plx_log(dev_, PLX_LOG_ERR, "lost the connection to the hub");
        }
        stopped_ = true;
        break;
    }
    /* the kernel's "Simulation stopped by user." is no news here */
    sc_core::sc_report_handler::set_actions("/OSCI/SystemC", sc_core::SC_INFO, sc_core::SC_DO_NOTHING);
    sc_core::sc_stop();
}

/* A model threw inside a hub message: the device ends (the hub sees it leave and fails its accesses). */
void bridge_base::fail(const char *where)
{
    const char *what = "an exception that is not a std::exception";
    std::string text;
    try {
        throw;
    } catch (const std::exception &e) {
        text = e.what();
        what = text.c_str();
    } catch (...) {
    }
    plx_log(dev_, PLX_LOG_ERR, "a model threw during %s at %s: %s", where,
            sc_core::sc_time_stamp().to_string().c_str(), what);
    plx_set_access_result(dev_, PLX_ACCESS_ERROR);
    plx_dev_stop(dev_, 1);
}

int bridge_base::run()
{
    if (!open_)
        throw error("plexus::bridge: run() after the device was closed");
    int status = 0;
    try {
        sc_core::sc_start();
    } catch (const std::exception &e) {
        plx_log(dev_, PLX_LOG_ERR, "the SystemC simulation failed at %s: %s",
                sc_core::sc_time_stamp().to_string().c_str(), e.what());
        status = 1;
    }
    if (!stopped_ && status == 0) {
        plx_log(dev_, PLX_LOG_ERR, "%s at %s",
                sc_core::sc_get_status() == sc_core::SC_STOPPED
                    ? "a model stopped the simulation (sc_stop)"
                    : "the simulation ran out of activity while a hub message waited for the models",
                sc_core::sc_time_stamp().to_string().c_str());
        status = 1;
    }
    /* The SDK is about to unmap guest RAM: no model may keep a DMI pointer into it. (A bridge destroyed without
     * run() skips this: the models, built after it, are gone by then.) */
    try {
        invalidate_initiators(0, UINT64_MAX);
    } catch (...) {
        /* a model that throws here cannot use its pointers any more either: the simulation is over */
    }
    return close(status);
}

/* fini() (the models lose their DMI pointers), Goodbye with @status unless the device stopped with its own. */
int bridge_base::close(int status)
{
    if (status)
        plx_dev_stop(dev_, status);
    open_ = false;
    int s = plx_dev_close(dev_);
    if (the_bridge == this)
        the_bridge = nullptr;
    return lost_ ? 1 : s;
}

/* ---- interrupts ----------------------------------------------------------------------------------------------- */

void bridge_base::publish_irqs()
{
    uint64_t at = sc_core::sc_time_stamp().value() / units_per_ns_;
    for (size_t i = 0; i < irq.size(); i++) {
        int level = irq[i].read() ? 1 : 0;
        if (level == irq_sent_[i])
            continue;
        irq_sent_[i] = level;
        if (lockstep_)
            plx_irq_set_at(dev_, (unsigned)i, level, at);
        else
            plx_irq_set(dev_, (unsigned)i, level);
    }
}

void bridge_base::irq_changed()
{
    publish_irqs();
}

/* ---- guest accesses --------------------------------------------------------------------------------------------- */

uint64_t bridge_base::access(unsigned index, bool write, uint64_t offset, uint64_t value, unsigned size)
{
    const region &r = info_.regions[index];
    try {
        advance_to(plx_now(dev_));
        uint64_t addr = r.base + offset;
        unsigned len = size, lane = 0;
        if (r.bus_width) {
            lane = (unsigned)(addr % r.bus_width);
            addr -= lane;
            len = r.bus_width;
            std::memset(be_, 0, len);
            std::memset(be_ + lane, TLM_BYTE_ENABLED, size);
        }
        std::memset(data_, 0, len);
        if (write)
            for (unsigned k = 0; k < size; k++)
                data_[lane + k] = (unsigned char)(value >> (8 * k));
        tlm::tlm_generic_payload &t = txn_;
        t.set_command(write ? tlm::TLM_WRITE_COMMAND : tlm::TLM_READ_COMMAND);
        t.set_address(addr);
        t.set_data_ptr(data_);
        t.set_data_length(len);
        t.set_streaming_width(len);
        t.set_byte_enable_ptr(r.bus_width ? be_ : nullptr);
        t.set_byte_enable_length(r.bus_width ? len : 0);
        t.set_dmi_allowed(false);
        t.set_response_status(tlm::TLM_INCOMPLETE_RESPONSE);
        sc_time delay = sc_core::SC_ZERO_TIME, start = sc_core::sc_time_stamp();
        forward(r.target, t, delay);
        settle();
        if (lockstep_)
            plx_set_access_busy(dev_, ceil_ns(sc_core::sc_time_stamp() - start + delay));
        tlm::tlm_response_status st = t.get_response_status();
        if (st != tlm::TLM_OK_RESPONSE) {
            plx_set_access_result(dev_, st == tlm::TLM_ADDRESS_ERROR_RESPONSE ? PLX_ACCESS_DECODE_ERROR
                                                                               : PLX_ACCESS_ERROR);
            if (write && r.posted && posted_errors_++ < 8)
                plx_log(dev_, PLX_LOG_WARNING, "posted write of %u bytes at %s+0x%" PRIx64 " answered %s",
                        size, r.name.c_str(), offset, t.get_response_string().c_str());
        }
        uint64_t v = 0;
        if (!write)
            for (unsigned k = 0; k < size; k++)
                v |= (uint64_t)data_[lane + k] << (8 * k);
        schedule();
        return v;
    } catch (...) {
        fail(write ? "a guest write" : "a guest read");
        return 0;
    }
}

/* ---- the models' DMA ------------------------------------------------------------------------------------------ */

int bridge_base::dma(uint64_t addr, unsigned char *buf, unsigned len, bool write)
{
    return write ? plx_dma_write(dev_, addr, buf, len) : plx_dma_read(dev_, addr, buf, len);
}

static tlm::tlm_response_status dma_status(int r)
{
    switch (r) {
    case 0: return tlm::TLM_OK_RESPONSE;
    case -EFAULT: return tlm::TLM_ADDRESS_ERROR_RESPONSE;     /* not RAM this device may reach */
    case -EACCES: return tlm::TLM_COMMAND_ERROR_RESPONSE;     /* a write to a read-only grant */
    default: return tlm::TLM_GENERIC_ERROR_RESPONSE;          /* the hub is gone */
    }
}

void bridge_base::ram_b_transport(tlm::tlm_generic_payload &t, sc_time &)
{
    if (t.get_command() == tlm::TLM_IGNORE_COMMAND) {
        t.set_response_status(tlm::TLM_OK_RESPONSE);
        return;
    }
    bool write = t.is_write();
    uint64_t addr = t.get_address();
    unsigned char *data = t.get_data_ptr();
    unsigned len = t.get_data_length(), width = t.get_streaming_width();
    const unsigned char *be = t.get_byte_enable_ptr();
    unsigned be_len = t.get_byte_enable_length();
    if (width == 0 || width > len)
        width = len;
    if (be && be_len == 0)
        be = nullptr;
    int r = 0;
    if (!be && width == len) {
        r = dma(addr, data, len, write);
    } else {
        /* Runs of enabled bytes, each inside one beat; beat n of a streaming transfer starts at the address again. */
        for (unsigned i = 0; i < len && r == 0;) {
            if (be && !be[i % be_len]) {
                i++;
                continue;
            }
            unsigned n = 1;
            while (i + n < len && (i + n) % width && (!be || be[(i + n) % be_len]))
                n++;
            r = dma(addr + i % width, data + i, n, write);
            i += n;
        }
    }
    plx_dma_window w;
    t.set_dmi_allowed(plx_dma_window_at(dev_, addr, &w) == 0);
    t.set_response_status(dma_status(r));
}

bool bridge_base::ram_get_direct_mem_ptr(tlm::tlm_generic_payload &t, tlm::tlm_dmi &dmi)
{
    uint64_t addr = t.get_address();
    plx_dma_window w;
    if (plx_dma_window_at(dev_, addr, &w) < 0) {
        dmi.set_start_address(addr);        /* no DMI here (not a mapped grant); ask again elsewhere */
        dmi.set_end_address(addr);
        dmi.set_granted_access(tlm::tlm_dmi::DMI_ACCESS_NONE);
        return false;
    }
    dmi.set_dmi_ptr(static_cast<unsigned char *>(w.ptr));
    dmi.set_start_address(w.base);
    dmi.set_end_address(w.base + (w.size - 1));
    dmi.set_granted_access(w.readonly ? tlm::tlm_dmi::DMI_ACCESS_READ : tlm::tlm_dmi::DMI_ACCESS_READ_WRITE);
    dmi.set_read_latency(sc_core::SC_ZERO_TIME);
    dmi.set_write_latency(sc_core::SC_ZERO_TIME);
    return !(t.is_write() && w.readonly);
}

unsigned bridge_base::ram_transport_dbg(tlm::tlm_generic_payload &t)
{
    if (t.get_command() == tlm::TLM_IGNORE_COMMAND)
        return 0;
    uint64_t addr = t.get_address();
    unsigned len = t.get_data_length();
    /* Inside a mapped grant: as much of the range as it holds. Elsewhere all or nothing, by message. */
    plx_dma_window w;
    if (plx_dma_window_at(dev_, addr, &w) == 0) {
        uint64_t room = w.size - (addr - w.base);
        if (len > room)
            len = (unsigned)room;
        if (t.is_write() && w.readonly)
            return 0;
    }
    return dma(addr, t.get_data_ptr(), len, t.is_write()) == 0 ? len : 0;
}

void bridge_base::invalidate_ram(uint64_t start, uint64_t end)
{
    invalidate_initiators(start, end);
}

} // namespace plexus
