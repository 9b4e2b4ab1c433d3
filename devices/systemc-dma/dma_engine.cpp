/* The DMA engine's TLM-2.0 model; see dma_engine.h. */
#include "dma_engine.h"

#include <algorithm>
#include <cstring>

using sc_core::sc_time;
using sc_core::SC_ZERO_TIME;

namespace {

constexpr unsigned chunk = 4096;

} // namespace

dma_engine::dma_engine(sc_core::sc_module_name name, const config &cfg)
    : sc_module(name), regs("regs"), mem("mem"), irq("irq"), cfg_(cfg)
{
    regs.register_b_transport(this, &dma_engine::b_transport);
    mem.register_invalidate_direct_mem_ptr(this, &dma_engine::invalidate_direct_mem_ptr);
    SC_HAS_PROCESS(dma_engine);
    SC_THREAD(engine);
    SC_METHOD(drive_irq);
    sensitive << irq_changed_;
    dont_initialize();
}

void dma_engine::reset()
{
    generation_++;
    start_.cancel();
    cancel_.notify();
    src_ = dst_ = 0;
    len_ = ctrl_ = status_ = count_ = 0;
    update_irq();
}

/* Registers change from the initiators' processes and the engine's; the output has one driver (SystemC's rule). */
void dma_engine::update_irq()
{
    irq_level_ = (ctrl_ & DMA_CTRL_IE) && (status_ & (DMA_STATUS_DONE | DMA_STATUS_ERROR));
    irq_changed_.notify(SC_ZERO_TIME);
}

void dma_engine::drive_irq()
{
    irq.write(irq_level_);
}

/* ---- registers ------------------------------------------------------------------------------------------- */

uint32_t dma_engine::read_reg(uint64_t offset) const
{
    switch (offset) {
    case DMA_ID: return DMA_ID_VALUE;
    case DMA_VERSION: return DMA_VERSION_VALUE;
    case DMA_SRC_LO: return (uint32_t)src_;
    case DMA_SRC_HI: return (uint32_t)(src_ >> 32);
    case DMA_DST_LO: return (uint32_t)dst_;
    case DMA_DST_HI: return (uint32_t)(dst_ >> 32);
    case DMA_LEN: return len_;
    case DMA_CTRL: return ctrl_;
    case DMA_STATUS: return status_;
    case DMA_COUNT: return count_;
    default: return 0;
    }
}

void dma_engine::write_reg(uint64_t offset, uint32_t value)
{
    switch (offset) {
    case DMA_SRC_LO: src_ = (src_ & ~0xffffffffull) | value; break;
    case DMA_SRC_HI: src_ = (src_ & 0xffffffffull) | (uint64_t)value << 32; break;
    case DMA_DST_LO: dst_ = (dst_ & ~0xffffffffull) | value; break;
    case DMA_DST_HI: dst_ = (dst_ & 0xffffffffull) | (uint64_t)value << 32; break;
    case DMA_LEN: len_ = value; break;
    case DMA_CTRL:
        ctrl_ = value & DMA_CTRL_IE;
        if ((value & DMA_CTRL_START) && !(status_ & DMA_STATUS_BUSY)) {     /* one transfer at a time */
            status_ = DMA_STATUS_BUSY;
            job_src_ = src_;
            job_dst_ = dst_;
            job_len_ = len_;
            start_.notify(SC_ZERO_TIME);
        }
        break;
    case DMA_STATUS: status_ &= ~(value & (DMA_STATUS_DONE | DMA_STATUS_ERROR)); break;
    default: break;     /* ID, VERSION, COUNT are read-only; the rest is reserved */
    }
    update_irq();
}

/* 32-bit registers; an 8-byte access is two of them, the lower address first. */
void dma_engine::b_transport(tlm::tlm_generic_payload &t, sc_time &)
{
    uint64_t addr = t.get_address();
    unsigned len = t.get_data_length();
    unsigned char *data = t.get_data_ptr();
    if (t.get_command() == tlm::TLM_IGNORE_COMMAND) {
        t.set_response_status(tlm::TLM_OK_RESPONSE);
        return;
    }
    if (t.get_byte_enable_ptr()) {
        t.set_response_status(tlm::TLM_BYTE_ENABLE_ERROR_RESPONSE);
        return;
    }
    if ((len != 4 && len != 8) || addr % len || t.get_streaming_width() < len) {
        t.set_response_status(tlm::TLM_BURST_ERROR_RESPONSE);
        return;
    }
    if (addr >= region_size || len > region_size - addr) {
        t.set_response_status(tlm::TLM_ADDRESS_ERROR_RESPONSE);
        return;
    }
    for (unsigned k = 0; k < len; k += 4) {
        uint32_t v;
        if (t.is_read()) {
            v = read_reg(addr + k);
            std::memcpy(data + k, &v, 4);
        } else {
            std::memcpy(&v, data + k, 4);
            write_reg(addr + k, v);
        }
    }
    t.set_response_status(tlm::TLM_OK_RESPONSE);
}

/* ---- the transfer ---------------------------------------------------------------------------------------- */

void dma_engine::engine()
{
    for (;;) {
        wait(start_);
        uint64_t gen = generation_;
        uint64_t src = job_src_, dst = job_dst_, len = job_len_;
        sc_time delay = SC_ZERO_TIME;
        bool wraps = len && (src + len - 1 < src || dst + len - 1 < dst);
        if (wraps || (len && !copy(dst, src, len, delay))) {
            if (gen == generation_) {
                status_ = DMA_STATUS_ERROR;
                update_irq();
            }
            continue;
        }
        delay += cfg_.latency + cfg_.per_byte * (double)len;
        if (delay != SC_ZERO_TIME)
            wait(delay, cancel_);
        if (gen != generation_)
            continue;       /* reset meanwhile */
        status_ = DMA_STATUS_DONE;
        count_++;
        update_irq();
    }
}

void dma_engine::invalidate_direct_mem_ptr(sc_dt::uint64 start, sc_dt::uint64 end)
{
    dmi_.erase(std::remove_if(dmi_.begin(), dmi_.end(),
                              [&](const tlm::tlm_dmi &d) {
                                  return d.get_start_address() <= end && start <= d.get_end_address();
                              }),
               dmi_.end());
}

/* A direct pointer to [addr, addr + len) if the memory grants DMI for all of it, else nullptr. */
unsigned char *dma_engine::direct(uint64_t addr, uint64_t len, bool write)
{
    auto covers = [&](const tlm::tlm_dmi &d) {
        return d.get_start_address() <= addr && len - 1 <= d.get_end_address() - addr &&
               (write ? d.is_write_allowed() : d.is_read_allowed());
    };
    auto it = std::find_if(dmi_.begin(), dmi_.end(), covers);
    if (it == dmi_.end()) {
        tlm::tlm_generic_payload t;
        tlm::tlm_dmi d;
        t.set_command(write ? tlm::TLM_WRITE_COMMAND : tlm::TLM_READ_COMMAND);
        t.set_address(addr);
        if (!mem->get_direct_mem_ptr(t, d) || !covers(d))
            return nullptr;
        dmi_.push_back(d);
        it = dmi_.end() - 1;
    }
    return it->get_dmi_ptr() + (addr - it->get_start_address());
}

bool dma_engine::transport(tlm::tlm_command cmd, uint64_t addr, unsigned char *buf, unsigned len, sc_time &delay)
{
    tlm::tlm_generic_payload t;
    t.set_command(cmd);
    t.set_address(addr);
    t.set_data_ptr(buf);
    t.set_data_length(len);
    t.set_streaming_width(len);
    t.set_response_status(tlm::TLM_INCOMPLETE_RESPONSE);
    mem->b_transport(t, delay);
    return t.is_response_ok();
}

/* memmove semantics: with the destination above an overlapping source, the pieces go from the end. */
bool dma_engine::copy(uint64_t dst, uint64_t src, uint64_t len, sc_time &delay)
{
    if (cfg_.use_dmi) {
        unsigned char *from = direct(src, len, false), *to = from ? direct(dst, len, true) : nullptr;
        if (from && to) {
            std::memmove(to, from, len);
            if (cfg_.written)
                cfg_.written(dst, len);
            return true;
        }
    }
    std::vector<unsigned char> buf(chunk);
    bool backward = dst > src && dst - src < len;
    for (uint64_t done = 0; done < len;) {
        unsigned n = (unsigned)std::min<uint64_t>(len - done, chunk);
        uint64_t off = backward ? len - done - n : done;
        if (!transport(tlm::TLM_READ_COMMAND, src + off, buf.data(), n, delay) ||
            !transport(tlm::TLM_WRITE_COMMAND, dst + off, buf.data(), n, delay))
            return false;
        done += n;
    }
    return true;
}
