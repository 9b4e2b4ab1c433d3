/*
 * plexus-test-systemc-probe: TLM-2.0 models behind plexus::bridge that record what the bridge hands them and do
 * on command what a model may do to it, for tests/systemc/test_bridge.c. Two targets on mmio:
 *
 * target 0, the probe (regions "ctl" at 0x0, "bus" at 0x1000, "raw" at 0x2000, "posted" at 0x3000):
 *   bus (bus width 8: byte enables) and raw (each access as it is, unaligned allowed): every transaction is
 *     recorded in ctl's LAST_*. bus 0x00..0x3f is byte storage that honours byte enables; bus 0x80..0x8f answers
 *     TLM_ADDRESS_ERROR_RESPONSE, 0x90..0x9f TLM_GENERIC_ERROR_RESPONSE, 0xa0..0xaf leaves the status
 *     TLM_INCOMPLETE_RESPONSE. raw reads return byte (address * 7 + 3) at each address.
 *   posted (posted writes, 4 bytes): 0x0 counts writes (read it), 0x80 answers TLM_ADDRESS_ERROR_RESPONSE.
 *   ctl (4 and 8 bytes):
 *     0x00 ID "SCPR"            0x08 LAST_ADDR (64)       0x10 LAST_CMD (0 read, 1 write)   0x14 LAST_LEN
 *     0x18 LAST_WIDTH           0x1c LAST_BE (bit n: lane n enabled; 0x100: no byte enables)
 *     0x20 LAST_DATA (64, the data bytes)                 0x28 TRANSACTIONS                 0x2c IDENT (property)
 *     0x30 DMA_ADDR (64)        0x38 DMA_LEN              0x3c DMA_CMD (write: run it, below)
 *     0x40 DMA_RES              0x44 DMA_STATUS (1 - tlm_response_status: 0 ok, 3 address error)  0x48 DMA_BYTES
 *     0x50 DMI_START (64)       0x58 DMI_END (64)         0x60 DMI_ACCESS (tlm_dmi access)  0x64 INVALIDATIONS
 *     0x68 IRQ (write v: irq0 = bit 0, irq1 = bit 1)      0x6c IRQ_AFTER (write d: irq0 rises d ns later)
 *     0x70 NOW (64, SystemC time in ns)                   0x78 RESETS
 *     0x80 read: abort()        0x84 read: never returns (pause)
 *     0x88 read: waits for an event nobody notifies       0x8c read: SC_REPORT_ERROR
 *   DMA commands, on DMA_LEN bytes at DMA_ADDR; the pattern is byte n = n * 7 + 1:
 *     1 write the pattern through DMI      3 read through DMI (DMA_RES = sum of the bytes)
 *     2 write the pattern by b_transport   4 read by b_transport (DMA_RES = sum)
 *     5 read by transport_dbg (DMA_RES = sum, DMA_BYTES = bytes it moved)     9 write the pattern by transport_dbg
 *     6 write the pattern by b_transport with byte enables {0xff, 0} and streaming width 4
 *     7 ask for DMI to read DMA_ADDR (DMA_RES = granted, DMI_* = the region)   8 bridge.invalidate_ram()
 *     10 write the pattern through DMI and say so (bridge.dma_written)
 *     (DMI refused: DMA_RES = 0xdead0001)
 *
 * target 1, a memory (region "mem" at 0x0, 0x100 bytes): b_transport waits mem-wait-ns inside and adds
 *   mem-delay-ns to the delay it returns.
 *
 * IRQ lines "irq0", "irq1". Properties: ident (number), mem-wait-ns, mem-delay-ns. With --probe-bad-target the
 * region "mem" is said to be served by a third target, which is never bound.
 */
#include <poll.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <plexus/systemc.hpp>
#include <tlm_utils/simple_initiator_socket.h>
#include <tlm_utils/simple_target_socket.h>

using sc_core::sc_time;
using sc_core::SC_NS;
using sc_core::SC_ZERO_TIME;

namespace {

uint64_t get(const unsigned char *p, unsigned n)
{
    uint64_t v = 0;
    std::memcpy(&v, p, n);
    return v;
}

struct probe : sc_core::sc_module {
    tlm_utils::simple_target_socket<probe> socket;
    tlm_utils::simple_initiator_socket<probe> dma;
    sc_core::sc_out<bool> irq0, irq1;
    plexus::bridge *bridge = nullptr;

    uint64_t last_addr = 0, last_data = 0, dma_addr = 0, dmi_start = 0, dmi_end = 0;
    uint32_t last_cmd = 0, last_len = 0, last_width = 0, last_be = 0, transactions = 0, ident = 0;
    uint32_t dma_len = 0, dma_res = 0, dma_status = 0, dma_bytes = 0, dmi_access = 0, invalidations = 0;
    uint32_t resets = 0, posted_writes = 0;
    unsigned char bytes[0x40] = {};
    bool level0 = false, level1 = false;
    sc_core::sc_event irq_changed, irq_rise, never;

    probe(sc_core::sc_module_name n, uint32_t id) : sc_module(n), socket("socket"), dma("dma"), ident(id)
    {
        socket.register_b_transport(this, &probe::b_transport);
        dma.register_invalidate_direct_mem_ptr(this, &probe::invalidate);
        SC_HAS_PROCESS(probe);
        SC_METHOD(drive);
        sensitive << irq_changed;
        dont_initialize();
        SC_METHOD(rise);
        sensitive << irq_rise;
        dont_initialize();
    }

    void drive()
    {
        irq0.write(level0);
        irq1.write(level1);
    }

    void rise()
    {
        level0 = true;
        irq_changed.notify(SC_ZERO_TIME);
    }

    void reset()
    {
        resets++;
        level0 = level1 = false;
        irq_changed.notify(SC_ZERO_TIME);
    }

    void invalidate(sc_dt::uint64, sc_dt::uint64) { invalidations++; }

    void record(tlm::tlm_generic_payload &t)
    {
        last_addr = t.get_address();
        last_cmd = t.is_write();
        last_len = t.get_data_length();
        last_width = t.get_streaming_width();
        last_be = 0x100;
        if (const unsigned char *be = t.get_byte_enable_ptr()) {
            last_be = 0;
            for (unsigned i = 0; i < last_len && i < 8; i++)
                if (be[i % t.get_byte_enable_length()])
                    last_be |= 1u << i;
        }
        last_data = t.is_write() ? get(t.get_data_ptr(), last_len < 8 ? last_len : 8) : 0;
        transactions++;
    }

    void b_transport(tlm::tlm_generic_payload &t, sc_time &)
    {
        uint64_t a = t.get_address();
        t.set_response_status(tlm::TLM_OK_RESPONSE);
        if (a >= 0x1000 && a < 0x3000) {
            record(t);
            if (a >= 0x2000)
                return raw(t);
            return bus(t, a - 0x1000);
        }
        if (a >= 0x3000) {
            if (a == 0x3080)
                t.set_response_status(tlm::TLM_ADDRESS_ERROR_RESPONSE);
            else if (t.is_write())
                posted_writes++;
            else
                std::memcpy(t.get_data_ptr(), &posted_writes, 4);
            return;
        }
        ctl(t, a);
    }

    void raw(tlm::tlm_generic_payload &t)
    {
        if (t.is_read())
            for (unsigned i = 0; i < t.get_data_length(); i++)
                t.get_data_ptr()[i] = (unsigned char)((t.get_address() + i) * 7 + 3);
    }

    void bus(tlm::tlm_generic_payload &t, uint64_t off)
    {
        if (off >= 0x80 && off < 0x90)
            return t.set_response_status(tlm::TLM_ADDRESS_ERROR_RESPONSE);
        if (off >= 0x90 && off < 0xa0)
            return t.set_response_status(tlm::TLM_GENERIC_ERROR_RESPONSE);
        if (off >= 0xa0 && off < 0xb0)
            return t.set_response_status(tlm::TLM_INCOMPLETE_RESPONSE);
        const unsigned char *be = t.get_byte_enable_ptr();
        for (unsigned i = 0; i < t.get_data_length(); i++) {
            if ((be && !be[i % t.get_byte_enable_length()]) || off + i >= sizeof(bytes))
                continue;
            if (t.is_write())
                bytes[off + i] = t.get_data_ptr()[i];
            else
                t.get_data_ptr()[i] = bytes[off + i];
        }
    }

    uint64_t read_ctl(uint64_t a)
    {
        switch (a) {
        case 0x00: return 0x53435052;
        case 0x08: return last_addr;
        case 0x10: return last_cmd;
        case 0x14: return last_len;
        case 0x18: return last_width;
        case 0x1c: return last_be;
        case 0x20: return last_data;
        case 0x28: return transactions;
        case 0x2c: return ident;
        case 0x30: return dma_addr;
        case 0x38: return dma_len;
        case 0x40: return dma_res;
        case 0x44: return dma_status;
        case 0x48: return dma_bytes;
        case 0x50: return dmi_start;
        case 0x58: return dmi_end;
        case 0x60: return dmi_access;
        case 0x64: return invalidations;
        case 0x70: return sc_core::sc_time_stamp().value() / sc_time(1, SC_NS).value();
        case 0x78: return resets;
        case 0x80: abort();
        case 0x84:
            for (;;)
                pause();
        case 0x88:
            wait(never);
            return 0;
        case 0x8c:
            SC_REPORT_ERROR("/plexus/probe", "the probe was asked to fail");
            return 0;
        default: return 0;
        }
    }

    void write_ctl(uint64_t a, uint64_t v)
    {
        switch (a) {
        case 0x30: dma_addr = v; break;
        case 0x38: dma_len = (uint32_t)v; break;
        case 0x3c: run((uint32_t)v); break;
        case 0x68:
            level0 = v & 1;
            level1 = v & 2;
            irq_changed.notify(SC_ZERO_TIME);
            break;
        case 0x6c: irq_rise.notify(sc_time((double)v, SC_NS)); break;
        default: break;
        }
    }

    void ctl(tlm::tlm_generic_payload &t, uint64_t a)
    {
        unsigned len = t.get_data_length();
        if (len != 4 && len != 8)
            return t.set_response_status(tlm::TLM_BURST_ERROR_RESPONSE);
        if (t.is_read()) {
            uint64_t v = read_ctl(a);
            std::memcpy(t.get_data_ptr(), &v, len);
        } else {
            write_ctl(a, get(t.get_data_ptr(), len));
        }
    }

    /* ---- DMA ---- */

    std::vector<unsigned char> pattern() const
    {
        std::vector<unsigned char> p(dma_len);
        for (uint32_t i = 0; i < dma_len; i++)
            p[i] = (unsigned char)(i * 7 + 1);
        return p;
    }

    static uint32_t sum(const unsigned char *p, size_t n)
    {
        uint32_t s = 0;
        for (size_t i = 0; i < n; i++)
            s += p[i];
        return s;
    }

    unsigned char *direct(bool write)
    {
        tlm::tlm_generic_payload t;
        tlm::tlm_dmi d;
        t.set_command(write ? tlm::TLM_WRITE_COMMAND : tlm::TLM_READ_COMMAND);
        t.set_address(dma_addr);
        bool ok = dma->get_direct_mem_ptr(t, d);
        dmi_start = d.get_start_address();
        dmi_end = d.get_end_address();
        dmi_access = d.get_granted_access();
        if (!ok || dma_len - 1 > d.get_end_address() - dma_addr)
            return nullptr;
        return d.get_dmi_ptr() + (dma_addr - d.get_start_address());
    }

    void transport(tlm::tlm_command cmd, unsigned char *buf, const unsigned char *be, unsigned be_len, unsigned width)
    {
        tlm::tlm_generic_payload t;
        sc_time delay = SC_ZERO_TIME;
        t.set_command(cmd);
        t.set_address(dma_addr);
        t.set_data_ptr(buf);
        t.set_data_length(dma_len);
        t.set_streaming_width(width ? width : dma_len);
        t.set_byte_enable_ptr(const_cast<unsigned char *>(be));
        t.set_byte_enable_length(be_len);
        t.set_response_status(tlm::TLM_INCOMPLETE_RESPONSE);
        dma->b_transport(t, delay);
        dma_status = (uint32_t)(1 - (int)t.get_response_status());
    }

    unsigned debug(tlm::tlm_command cmd, unsigned char *buf)
    {
        tlm::tlm_generic_payload t;
        t.set_command(cmd);
        t.set_address(dma_addr);
        t.set_data_ptr(buf);
        t.set_data_length(dma_len);
        return dma->transport_dbg(t);
    }

    void run(uint32_t cmd)
    {
        std::vector<unsigned char> p = pattern(), buf(dma_len);
        dma_res = 0;
        switch (cmd) {
        case 1: {
            unsigned char *d = direct(true);
            if (!d)
                dma_res = 0xdead0001;
            else
                std::memcpy(d, p.data(), dma_len);
            break;
        }
        case 2: transport(tlm::TLM_WRITE_COMMAND, p.data(), nullptr, 0, 0); break;
        case 3: {
            unsigned char *d = direct(false);
            dma_res = d ? sum(d, dma_len) : 0xdead0001;
            break;
        }
        case 4:
            transport(tlm::TLM_READ_COMMAND, buf.data(), nullptr, 0, 0);
            dma_res = sum(buf.data(), dma_len);
            break;
        case 5:
            dma_bytes = debug(tlm::TLM_READ_COMMAND, buf.data());
            dma_res = sum(buf.data(), dma_bytes);
            break;
        case 6: {
            static const unsigned char be[2] = { TLM_BYTE_ENABLED, TLM_BYTE_DISABLED };
            transport(tlm::TLM_WRITE_COMMAND, p.data(), be, 2, 4);
            break;
        }
        case 7: dma_res = direct(false) != nullptr; break;
        case 8: bridge->invalidate_ram(); break;
        case 9: dma_bytes = debug(tlm::TLM_WRITE_COMMAND, p.data()); break;
        case 10: {
            unsigned char *d = direct(true);
            if (!d) {
                dma_res = 0xdead0001;
                break;
            }
            std::memcpy(d, p.data(), dma_len);
            bridge->dma_written(dma_addr, dma_len);
            break;
        }
        default: break;
        }
    }
};

/* A memory that takes time: a wait inside b_transport, and a delay it returns. */
struct slow_memory : sc_core::sc_module {
    tlm_utils::simple_target_socket<slow_memory> socket;
    unsigned char mem[0x100] = {};
    sc_time wait_, delay_;

    slow_memory(sc_core::sc_module_name n, sc_time w, sc_time d) : sc_module(n), socket("socket"), wait_(w), delay_(d)
    {
        socket.register_b_transport(this, &slow_memory::b_transport);
    }

    void b_transport(tlm::tlm_generic_payload &t, sc_time &delay)
    {
        if (wait_ != SC_ZERO_TIME)
            wait(wait_);
        delay += delay_;
        uint64_t a = t.get_address();
        unsigned n = t.get_data_length();
        if (a >= sizeof(mem) || n > sizeof(mem) - a)
            return t.set_response_status(tlm::TLM_ADDRESS_ERROR_RESPONSE);
        if (t.is_write())
            std::memcpy(mem + a, t.get_data_ptr(), n);
        else
            std::memcpy(t.get_data_ptr(), mem + a, n);
        t.set_response_status(tlm::TLM_OK_RESPONSE);
    }
};

plexus::region make(const char *name, uint64_t base, unsigned min, unsigned max, unsigned target)
{
    plexus::region r;
    r.name = name;
    r.base = base;
    r.size = 0x100;
    r.min_access = min;
    r.max_access = max;
    r.target = target;
    return r;
}

} // namespace

/* The bridge for 64-bit sockets is only a template here: instantiate it so that it keeps compiling. */
template class plexus::basic_bridge<64>;

int sc_main(int argc, char **argv)
{
    plexus::device_info info;
    info.model = "plexus,test-systemc-probe";
    plexus::region bus = make("bus", 0x1000, 1, 8, 0), raw = make("raw", 0x2000, 1, 8, 0);
    plexus::region posted = make("posted", 0x3000, 4, 4, 0);
    bus.bus_width = 8;
    raw.unaligned = true;
    posted.posted = true;
    /* --probe-bad-target: "mem" names a third target, which is never bound (a mistake the bridge reports). */
    bool bad_target = false;
    for (int i = 1; i < argc; i++)
        bad_target |= std::strcmp(argv[i], "--probe-bad-target") == 0;
    info.regions = { make("ctl", 0x0, 4, 8, 0), bus, raw, posted, make("mem", 0x0, 1, 8, bad_target ? 2 : 1) };
    info.irqs = { "irq0", "irq1" };
    info.props = {
        plexus::property::number("ident", "0x5a5a", "read back at ctl 0x2c", 0, 0xffffffff),
        plexus::property::number("mem-wait-ns", "0", "the memory's wait inside b_transport", 0, 1000000),
        plexus::property::number("mem-delay-ns", "0", "the delay the memory adds", 0, 1000000),
    };
    try {
        plexus::bridge bridge("bridge", info, argc, argv);
        probe p("probe", (uint32_t)bridge.prop_u64("ident"));
        slow_memory mem("mem", sc_time((double)bridge.prop_u64("mem-wait-ns"), SC_NS),
                        sc_time((double)bridge.prop_u64("mem-delay-ns"), SC_NS));
        p.bridge = &bridge;
        bridge.mmio.bind(p.socket);
        bridge.mmio.bind(mem.socket);
        p.dma.bind(bridge.ram);
        sc_core::sc_signal<bool> irq0("irq0_line"), irq1("irq1_line");
        p.irq0(irq0);
        p.irq1(irq1);
        bridge.irq[0](irq0);
        bridge.irq[1](irq1);
        bridge.on_reset([&p] { p.reset(); });
        return bridge.run();
    } catch (const plexus::error &e) {
        std::fprintf(stderr, "plexus-test-systemc-probe: %s\n", e.what());
        return 1;
    }
}
