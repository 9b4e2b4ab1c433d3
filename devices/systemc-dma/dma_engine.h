/*
 * A memory-to-memory DMA engine as a plain SystemC TLM-2.0 model: a target socket for its registers, an
 * initiator socket for the memory it copies in, an interrupt output. It knows nothing of plexus: main.cpp puts
 * it behind a plexus::bridge. Register map and behaviour: those of devices/dma (README.md there), the C model of
 * the same engine ("plexus,dma"), so the two are interchangeable in a machine.
 *
 * Copies use DMI when the memory grants it for both whole ranges (one memmove between the direct pointers), and
 * b_transport in 4 KiB pieces otherwise (or always, with use_dmi false). The copy happens when START is taken;
 * the transfer then stays BUSY for latency + length * per_byte of simulated time (a wait in the engine's
 * thread), then DONE, COUNT + 1 and, with IE, the interrupt.
 */
#ifndef PLEXUS_SYSTEMC_DMA_ENGINE_H
#define PLEXUS_SYSTEMC_DMA_ENGINE_H

#include <cstdint>
#include <functional>
#include <vector>

#include <systemc>
#include <tlm>
#include <tlm_utils/simple_initiator_socket.h>
#include <tlm_utils/simple_target_socket.h>
#include "../dma/dma_regs.h"   /* the register map, shared with the C model (devices/dma) */

class dma_engine : public sc_core::sc_module {
public:
    static constexpr uint64_t region_size = DMA_REGION_SIZE;

    tlm_utils::simple_target_socket<dma_engine> regs;
    tlm_utils::simple_initiator_socket<dma_engine> mem;
    sc_core::sc_out<bool> irq;

    struct config {
        sc_core::sc_time latency = sc_core::sc_time(1000, sc_core::SC_NS);
        sc_core::sc_time per_byte = sc_core::sc_time(1, sc_core::SC_NS);
        bool use_dmi = true;
        /* Called after a copy wrote [addr, addr + len) through a DMI pointer, behind the memory's back (a host
         * that caches what it holds there needs to know); may be empty. */
        std::function<void(uint64_t addr, uint64_t len)> written;
    };

    dma_engine(sc_core::sc_module_name name, const config &cfg);

    /* Power-on state: registers zero, a running transfer abandoned (it never completes), interrupt low. */
    void reset();

    /* Transfers copied through DMI, and through b_transport. */

private:
    void b_transport(tlm::tlm_generic_payload &txn, sc_core::sc_time &delay);
    void invalidate_direct_mem_ptr(sc_dt::uint64 start, sc_dt::uint64 end);
    void engine();
    uint32_t read_reg(uint64_t offset) const;
    void write_reg(uint64_t offset, uint32_t value);
    void update_irq();
    void drive_irq();
    bool copy(uint64_t dst, uint64_t src, uint64_t len, sc_core::sc_time &delay);
    unsigned char *direct(uint64_t addr, uint64_t len, bool write);
    bool transport(tlm::tlm_command cmd, uint64_t addr, unsigned char *buf, unsigned len, sc_core::sc_time &delay);

    config cfg_;
    uint64_t src_ = 0, dst_ = 0;
    uint32_t len_ = 0, ctrl_ = 0, status_ = 0, count_ = 0;
    uint64_t job_src_ = 0, job_dst_ = 0;
    uint32_t job_len_ = 0;
    uint64_t generation_ = 0;           /* a reset abandons the transfer of an older generation */
    sc_core::sc_event start_, cancel_, irq_changed_;
    bool irq_level_ = false;
    std::vector<tlm::tlm_dmi> dmi_;     /* regions the memory granted DMI for, until it invalidates them */
};

#endif
