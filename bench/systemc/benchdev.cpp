/*
 * The SystemC device plexus-bench-systemc measures: a TLM-2.0 target behind plexus::bridge (region "io", 0x100
 * bytes, 4-byte accesses) and a DMA initiator bound to the bridge's ram socket. Registers, as the C bench
 * device's (bench/mmio/benchdev.c):
 *   0x00 scratch;  0x10/0x14 guest address lo/hi;  0x18 length;  0x1c repetitions;
 *   0x20 command, each `reps` times `len` bytes after one warm-up, timed in this process:
 *        1 = write guest RAM through DMI (memcpy to the direct pointer), 3 = read it through DMI,
 *        2 = memcpy between two private buffers (the floor),
 *        4 = write guest RAM through b_transport, 5 = read it through b_transport;
 *   0x24/0x28 nanoseconds the last command took (lo/hi), 0x2c 1 if the last command went through.
 */
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <plexus/systemc.hpp>
#include <tlm_utils/simple_initiator_socket.h>
#include <tlm_utils/simple_target_socket.h>

namespace {

uint64_t now_ns()
{
    return (uint64_t)std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct bench_model : sc_core::sc_module {
    tlm_utils::simple_target_socket<bench_model> regs;
    tlm_utils::simple_initiator_socket<bench_model> mem;
    uint32_t scratch = 0, len = 0, reps = 0, ok = 0;
    uint64_t addr = 0, ns = 0;

    explicit bench_model(sc_core::sc_module_name n) : sc_module(n), regs("regs"), mem("mem")
    {
        regs.register_b_transport(this, &bench_model::b_transport);
    }

    void b_transport(tlm::tlm_generic_payload &t, sc_core::sc_time &)
    {
        uint32_t v = 0;
        if (t.get_data_length() != 4) {
            t.set_response_status(tlm::TLM_BURST_ERROR_RESPONSE);
            return;
        }
        if (t.is_write())
            std::memcpy(&v, t.get_data_ptr(), 4);
        switch (t.get_address()) {
        case 0x00: t.is_write() ? (void)(scratch = v) : (void)(v = scratch); break;
        case 0x10: if (t.is_write()) addr = (addr & ~0xffffffffull) | v; break;
        case 0x14: if (t.is_write()) addr = (addr & 0xffffffffull) | (uint64_t)v << 32; break;
        case 0x18: if (t.is_write()) len = v; break;
        case 0x1c: if (t.is_write()) reps = v; break;
        case 0x20: if (t.is_write()) run(v); break;
        case 0x24: v = (uint32_t)ns; break;
        case 0x28: v = (uint32_t)(ns >> 32); break;
        case 0x2c: v = ok; break;
        default: break;
        }
        if (t.is_read())
            std::memcpy(t.get_data_ptr(), &v, 4);
        t.set_response_status(tlm::TLM_OK_RESPONSE);
    }

    bool transport(bool write, unsigned char *buf)
    {
        tlm::tlm_generic_payload t;
        sc_core::sc_time d = sc_core::SC_ZERO_TIME;
        t.set_command(write ? tlm::TLM_WRITE_COMMAND : tlm::TLM_READ_COMMAND);
        t.set_address(addr);
        t.set_data_ptr(buf);
        t.set_data_length(len);
        t.set_streaming_width(len);
        mem->b_transport(t, d);
        return t.is_response_ok();
    }

    void run(uint32_t cmd)
    {
        /* Page-aligned like guest RAM, so every copy below has the same alignment. */
        size_t size = ((size_t)len + 4095) & ~(size_t)4095;
        unsigned char *a = static_cast<unsigned char *>(aligned_alloc(4096, size ? size : 4096));
        unsigned char *b = static_cast<unsigned char *>(aligned_alloc(4096, size ? size : 4096));
        std::memset(a, 0x5a, len);
        std::memset(b, 0xa5, len);
        unsigned char *direct = nullptr;
        if (cmd == 1 || cmd == 3) {
            tlm::tlm_generic_payload t;
            tlm::tlm_dmi dmi;
            t.set_command(cmd == 1 ? tlm::TLM_WRITE_COMMAND : tlm::TLM_READ_COMMAND);
            t.set_address(addr);
            if (mem->get_direct_mem_ptr(t, dmi) && dmi.get_end_address() - addr >= (uint64_t)len - 1)
                direct = dmi.get_dmi_ptr() + (addr - dmi.get_start_address());
        }
        ok = cmd == 2 || direct || cmd == 4 || cmd == 5;
        for (uint32_t i = 0; ok && i <= reps; i++) {
            if (i == 1)
                ns = now_ns();
            switch (cmd) {
            case 1: std::memcpy(direct, a, len); break;
            case 2: std::memcpy(b, a, len); break;
            case 3: std::memcpy(b, direct, len); break;
            case 4: ok = transport(true, a); break;
            case 5: ok = transport(false, b); break;
            }
            __asm__ volatile("" ::: "memory");
        }
        ns = now_ns() - ns;
        free(a);
        free(b);
    }
};

} // namespace

int sc_main(int argc, char **argv)
{
    plexus::device_info info;
    info.model = "plexus,bench-systemc";
    plexus::region io;
    io.name = "io";
    io.size = 0x100;
    io.min_access = io.max_access = 4;
    info.regions = { io };
    try {
        plexus::bridge bridge("bridge", info, argc, argv);
        bench_model model("model");
        bridge.mmio.bind(model.regs);
        model.mem.bind(bridge.ram);
        return bridge.run();
    } catch (const plexus::error &e) {
        std::fprintf(stderr, "plexus-bench-systemc-dev: %s\n", e.what());
        return 1;
    }
}
