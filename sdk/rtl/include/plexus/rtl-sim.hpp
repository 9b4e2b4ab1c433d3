/*
 * Cycle-based driver for a Verilated peripheral: clock, reset, register bus, DMA port, IRQ outputs, VCD.
 * Independent of the plexus SDK: unit tests of RTL use it directly; <plexus/sdk-rtl.hpp> builds a plexus
 * device on top of it.
 *
 * Port contract of the Verilog top module (names as written; widths are free unless stated):
 *   required  clk, rst_n (active-low synchronous reset)
 *             psel, penable, pwrite, paddr, pwdata, prdata, pready   APB-like register port (see below)
 *   optional  pslverr                        a transfer error: the access fails with -EIO
 *             dma_req, dma_addr, dma_ack, dma_rdata, dma_err
 *                                            DMA master, one dma_rdata word (4 or 8 bytes) per transfer
 *             dma_we, dma_wdata [, dma_wstrb]
 *                                            with dma_we=1 the request writes dma_wdata (same width as
 *                                            dma_rdata), only the byte lanes set in dma_wstrb if present
 *             irq                            interrupt outputs, bit n = IRQ line n (levels)
 *             active                         1 while the peripheral has work in flight (keep the clock running)
 *
 * One clock cycle is: inputs set, clk=0 and eval (combinational settle; this is where the driver samples
 * pready/prdata/dma_req), then clk=1 and eval (the rising edge). The cycle counter counts rising edges.
 *
 * Register transfer (APB timing): a setup cycle with psel=1 penable=0, then access cycles with penable=1 until
 * a cycle where pready=1 before the edge; prdata and pslverr are sampled in that cycle. A transfer that sees no
 * pready within max_wait access cycles is abandoned (-ETIMEDOUT).
 *
 * DMA port: in a cycle where dma_req=1 and no ack is pending, the request is accepted; after dma_latency more
 * cycles the driver reads the word through the DmaRead callback (or, with dma_we=1, writes dma_wdata's enabled
 * byte lanes through DmaWrite, one call per run of consecutive lanes) and drives dma_ack=1 with dma_rdata (or
 * dma_err=1 if the callback failed) for exactly that one cycle. The peripheral must drop dma_req on the ack edge
 * unless it starts a new request there.
 *
 * VCD time is in picoseconds: cycle n's rising edge is at n * 1e12 / clock_hz ps (the model is verilated with a
 * 1 ps time unit). With clock cycles aligned to virtual time, as <plexus/sdk-rtl.hpp> does, VCD time is the
 * machine's virtual time.
 *
 * Lifetime: Sim owns the VerilatedContext, the model and the VCD file; destroying it finishes the model and
 * closes the trace. Callbacks must stay callable for the Sim's lifetime. Not thread safe.
 */
#ifndef PLEXUS_RTL_SIM_HPP
#define PLEXUS_RTL_SIM_HPP

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include <verilated.h>
#include <verilated_vcd_c.h>

namespace plexus::rtl {

namespace detail {
#define PLEXUS_RTL_HAS_PORT(port)                                                                          \
    template <class T, class = void> struct has_##port : std::false_type {};                               \
    template <class T> struct has_##port<T, std::void_t<decltype(std::declval<T &>().port)>> : std::true_type {};
PLEXUS_RTL_HAS_PORT(pslverr)
PLEXUS_RTL_HAS_PORT(dma_req)
PLEXUS_RTL_HAS_PORT(irq)
PLEXUS_RTL_HAS_PORT(active)
PLEXUS_RTL_HAS_PORT(dma_we)
PLEXUS_RTL_HAS_PORT(dma_wstrb)
#undef PLEXUS_RTL_HAS_PORT
} // namespace detail

struct SimOptions {
    uint64_t clock_hz = 100000000;  /* clock frequency: sets the VCD time scale and virtual-time alignment */
    unsigned dma_latency = 0;       /* cycles between accepting a DMA request and its ack */
    unsigned max_wait = 1000;       /* access cycles a register transfer may wait for pready */
    unsigned reset_cycles = 2;      /* cycles rst_n is held low by reset() */
};

template <class Top>
class Sim {
public:
    static constexpr bool has_dma = detail::has_dma_req<Top>::value;
    static constexpr bool has_irq = detail::has_irq<Top>::value;
    static constexpr bool has_active = detail::has_active<Top>::value;
    static constexpr bool has_pslverr = detail::has_pslverr<Top>::value;
    static constexpr bool has_dma_write = detail::has_dma_we<Top>::value;
    static constexpr bool has_dma_wstrb = detail::has_dma_wstrb<Top>::value;

    /* Read @len bytes of memory at @addr into @buf: 0 or a negative errno. */
    using DmaRead = std::function<int(uint64_t addr, void *buf, size_t len)>;
    /* Write @len bytes of @buf to memory at @addr: 0 or a negative errno. */
    using DmaWrite = std::function<int(uint64_t addr, const void *buf, size_t len)>;
    /* IRQ line @line changed to @level (reported after the edge that changed it). */
    using IrqChanged = std::function<void(unsigned line, int level)>;

    explicit Sim(const SimOptions &opt = SimOptions()) : opt_(opt)
    {
        if (opt_.clock_hz == 0)
            opt_.clock_hz = 1;
        ctx_ = std::make_unique<VerilatedContext>();
        ctx_->traceEverOn(true);
        top_ = std::make_unique<Top>(ctx_.get(), "top");
        top_->clk = 0;
        top_->rst_n = 1;
        top_->psel = 0;
        top_->penable = 0;
        top_->pwrite = 0;
        top_->paddr = 0;
        top_->pwdata = 0;
        if constexpr (has_dma) {
            top_->dma_ack = 0;
            top_->dma_err = 0;
            top_->dma_rdata = 0;
        }
    }

    ~Sim()
    {
        close_vcd();
        if (top_)
            top_->final();
    }

    Sim(const Sim &) = delete;
    Sim &operator=(const Sim &) = delete;

    Top &top() { return *top_; }
    const SimOptions &options() const { return opt_; }
    uint64_t cycles() const { return cycles_; }

    void on_dma_read(DmaRead fn) { dma_read_ = std::move(fn); }
    void on_dma_write(DmaWrite fn) { dma_write_ = std::move(fn); }
    void on_irq(IrqChanged fn) { irq_changed_ = std::move(fn); }

    /* Start writing a VCD of every signal to @path (truncated). Returns 0 or -errno. */
    int open_vcd(const char *path)
    {
        close_vcd();
        auto vcd = std::make_unique<VerilatedVcdC>();
        top_->trace(vcd.get(), 99);
        vcd->open(path);
        if (!vcd->isOpen())
            return errno ? -errno : -EIO;
        vcd_ = std::move(vcd);
        vcd_->dump(edge_ps(cycles_));
        return 0;
    }

    void close_vcd()
    {
        if (vcd_) {
            vcd_->close();
            vcd_.reset();
        }
    }

    void flush_vcd()
    {
        if (vcd_)
            vcd_->flush();
    }

    /* Hold rst_n low for reset_cycles cycles, then release it; abandons a pending DMA ack. */
    void reset()
    {
        top_->psel = 0;
        top_->penable = 0;
        if constexpr (has_dma) {
            dma_pending_ = false;
            top_->dma_ack = 0;
            top_->dma_err = 0;
        }
        top_->rst_n = 0;
        for (unsigned i = 0; i < (opt_.reset_cycles ? opt_.reset_cycles : 1); i++)
            cycle();
        top_->rst_n = 1;
        top_->eval();
    }

    void cycle()
    {
        settle();
        edge();
    }

    void run(uint64_t n)
    {
        while (n--)
            cycle();
    }

    /*
     * Advance the cycle counter by @n without clocking the model: for idle stretches of a peripheral whose state
     * does not change while `active` is low. The VCD shows no change over the gap.
     */
    void skip(uint64_t n)
    {
        cycles_ += n;
        ctx_->time(edge_ps(cycles_));
    }

    /* Run until active drops or @max cycles pass; returns the cycles run. */
    uint64_t run_while_active(uint64_t max)
    {
        uint64_t n = 0;
        while (n < max && active()) {
            cycle();
            n++;
        }
        return n;
    }

    bool active() const
    {
        if constexpr (has_active)
            return top_->active != 0;
        else if constexpr (has_dma)
            return top_->dma_req != 0 || dma_pending_;
        else
            return false;
    }

    uint64_t irq_levels() const { return irq_state_; }

    /* Register read: 0 with *out set, -EIO (pslverr), or -ETIMEDOUT (no pready). */
    int read(uint64_t addr, uint64_t *out)
    {
        uint64_t data = 0;
        int r = transfer(addr, false, 0, &data);
        if (r == 0)
            *out = data;
        return r;
    }

    /* Register write: 0, -EIO (pslverr), or -ETIMEDOUT (no pready). */
    int write(uint64_t addr, uint64_t data) { return transfer(addr, true, data, nullptr); }

    /* Rising-edge time of cycle @n in picoseconds. */
    uint64_t edge_ps(uint64_t n) const
    {
        return (uint64_t)(((unsigned __int128)n * 1000000000000ull) / opt_.clock_hz);
    }

private:
    int transfer(uint64_t addr, bool write, uint64_t wdata, uint64_t *rdata)
    {
        top_->psel = 1;
        top_->penable = 0;
        top_->pwrite = write;
        top_->paddr = addr;
        top_->pwdata = write ? wdata : 0;
        cycle();                                    /* setup phase */
        top_->penable = 1;
        int r = -ETIMEDOUT;
        for (unsigned n = 0; n <= opt_.max_wait; n++) {
            settle();
            bool ready = top_->pready != 0;
            bool err = false;
            if constexpr (has_pslverr)
                err = top_->pslverr != 0;
            uint64_t data = top_->prdata;
            edge();
            if (ready) {
                if (rdata)
                    *rdata = data;
                r = err ? -EIO : 0;
                break;
            }
        }
        top_->psel = 0;
        top_->penable = 0;
        top_->pwrite = 0;
        return r;
    }

    void settle()
    {
        top_->clk = 0;
        top_->eval();
        if constexpr (has_dma)
            serve_dma();
        if (vcd_)
            vcd_->dump(edge_ps(cycles_) + edge_ps(1) / 2);
    }

    void edge()
    {
        top_->clk = 1;
        top_->eval();
        cycles_++;
        ctx_->time(edge_ps(cycles_));
        if (vcd_)
            vcd_->dump(edge_ps(cycles_));
        if constexpr (has_dma) {
            if (top_->dma_ack) {
                top_->dma_ack = 0;
                top_->dma_err = 0;
            }
        }
        if constexpr (has_irq) {
            uint64_t now = top_->irq;
            uint64_t changed = now ^ irq_state_;
            irq_state_ = now;
            for (unsigned line = 0; changed; line++, changed >>= 1)
                if ((changed & 1) && irq_changed_)
                    irq_changed_(line, (int)((now >> line) & 1));
        }
    }

    void serve_dma()
    {
        if (!top_->dma_req) {
            dma_pending_ = false;
            return;
        }
        if (!dma_pending_) {
            dma_pending_ = true;
            dma_wait_ = opt_.dma_latency;
        }
        if (dma_wait_ > 0) {
            dma_wait_--;
            return;
        }
        using Word = std::remove_reference_t<decltype(top_->dma_rdata)>;
        static_assert(sizeof(Word) <= 8, "dma_rdata wider than 64 bits is not supported");
        constexpr size_t bytes = sizeof(Word) == 8 ? 8 : 4;
        uint8_t buf[8] = {0};
        uint64_t word = 0;
        int r;
        if (dma_write_request()) {
            r = dma_write_word(bytes);
        } else {
            r = dma_read_ ? dma_read_(top_->dma_addr, buf, bytes) : -ENODEV;
            for (size_t i = 0; i < bytes; i++)      /* the DMA port is little-endian */
                word |= (uint64_t)buf[i] << (8 * i);
        }
        top_->dma_rdata = r == 0 ? (Word)word : 0;
        top_->dma_err = r != 0;
        top_->dma_ack = 1;
        dma_pending_ = false;
        top_->eval();
    }

    bool dma_write_request() const
    {
        if constexpr (has_dma_write)
            return top_->dma_we != 0;
        else
            return false;
    }

    /* Write the enabled byte lanes of dma_wdata, one callback per run of consecutive lanes. */
    int dma_write_word(size_t bytes)
    {
        if constexpr (has_dma_write) {
            uint64_t data = top_->dma_wdata;
            uint64_t strb = ~0ull;
            if constexpr (has_dma_wstrb)
                strb = top_->dma_wstrb;
            uint8_t buf[8];
            for (size_t i = 0; i < bytes; i++)
                buf[i] = (uint8_t)(data >> (8 * i));
            for (size_t i = 0; i < bytes;) {
                if (!((strb >> i) & 1)) {
                    i++;
                    continue;
                }
                size_t j = i;
                while (j < bytes && ((strb >> j) & 1))
                    j++;
                int r = dma_write_ ? dma_write_(top_->dma_addr + i, buf + i, j - i) : -ENODEV;
                if (r < 0)
                    return r;
                i = j;
            }
            return 0;
        } else {
            return -ENODEV;
        }
    }

    SimOptions opt_;
    std::unique_ptr<VerilatedContext> ctx_;
    std::unique_ptr<Top> top_;
    std::unique_ptr<VerilatedVcdC> vcd_;
    uint64_t cycles_ = 0;
    uint64_t irq_state_ = 0;
    bool dma_pending_ = false;
    unsigned dma_wait_ = 0;
    DmaRead dma_read_;
    DmaWrite dma_write_;
    IrqChanged irq_changed_;
};

} // namespace plexus::rtl

#endif
