/*
 * The hart: Unicorn RISC-V 64 run in slices that end at block boundaries, following the address space with a
 * MemoryListener, with exceptions entered here because Unicorn does not do it.
 *
 * What Unicorn 2.0.x does and does not do for RISC-V (measured; README.md has the whole list):
 *  - Synchronous exceptions are reported to UC_HOOK_INTR with the QEMU cause number (ebreak excepted: it
 *    ends uc_emu_start with UC_ERR_INSN_INVALID, pc on the ebreak); ecall is always cause 8. Before calling
 *    the hook Unicorn adds 4 to the pc (also for 16-bit instructions), so the faulting pc is pc - 4. No trap
 *    state (xepc, xcause, xtval, xstatus, pc, privilege) is changed: the trap entry is ours.
 *  - Interrupts are entered by Unicorn's own loop, which looks for them after every CSR instruction, mret,
 *    sret and WFI, and at every uc_emu_start: the hub keeps its lines in mip (ucx.h).
 *  - No instruction counter: a block hook counts each block's instructions and stops the slice at the first
 *    block boundary at or after the budget.
 *  - WFI ends uc_emu_start early with the pc after the WFI.
 *  - The pc inside MMIO callbacks is stale unless restored from the host return address (ucx_sync_pc).
 */
#define _GNU_SOURCE
#include "cpu.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <unicorn/unicorn.h>

#include "mmu.h"
#include "ucx.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the MMIO path copies guest (little-endian) values straight into host integers"
#endif

#define PAGE_SIZE 4096ull
#define PAGE_MASK (~(PAGE_SIZE - 1))
#define ADDR_TOP (UINT64_MAX & PAGE_MASK)  /* Unicorn cannot map the last page */
#define UPPER_HALF (1ull << 63)             /* kept as one hole mapping: kernel virtual addresses */
#define HOLE_CHUNK (2ull << 20)             /* unmapping costs ~100 ns per page in Unicorn: keep holes small */
#define HOLE_PIECE (64ull << 20)
#define PHYS_PREMAP_MAX (64ull << 30)
#define LAZY_IO HOLE_PIECE                  /* I/O sections larger than this are mapped as they are used */
#define DEFAULT_SLICE 10000
#define IDLE_POLL_MS 100
#define ICACHE_SIZE 65536                   /* blocks whose instruction count is remembered (a power of 2) */
#define RA_CACHE_SIZE 1024                  /* access sites whose place in their block is remembered */
#define MAX_BREAKPOINTS 64
#define MAX_WATCHPOINTS 16
#define NO_ADDR UINT64_MAX
#define FAULT_CHAIN_BYTES 64                /* a fault this close to the last handler's entry continues a cascade */

enum { PRV_U = 0, PRV_S = 1, PRV_M = 3 };

#define MSTATUS_SIE (1ull << 1)
#define MSTATUS_MIE (1ull << 3)
#define MSTATUS_SPIE (1ull << 5)
#define MSTATUS_MPIE (1ull << 7)
#define MSTATUS_SPP (1ull << 8)
#define MSTATUS_MPP_SHIFT 11
#define MSTATUS_MPP (3ull << MSTATUS_MPP_SHIFT)

#define CAUSE_IRQ (1ull << 63)
#define EXC_INSN_ACCESS 1
#define EXC_ILLEGAL 2
#define EXC_BREAKPOINT 3
#define EXC_LOAD_ACCESS 5
#define EXC_STORE_ACCESS 7
#define EXC_ECALL_U 8

#define INSN_WFI 0x10500073u
#define INSN_RDTIME_MASK 0xfffff07fu    /* csrrs rd, time, x0 */
#define INSN_RDTIME 0xc0102073u
#define COUNTEREN_TM (1u << 1)

#define unlikely(x) __builtin_expect(!!(x), 0)

/* Interrupts the hub drives; the others (SSIP, STIP, and SEIP written by M-mode) belong to the guest. */
#define EXT_IRQ_MASK ((1ull << HUB_IRQ_MSIP) | (1ull << HUB_IRQ_MTIP) | (1ull << HUB_IRQ_SEIP) | \
                      (1ull << HUB_IRQ_MEIP))

typedef struct cpu_section {
    hwaddr base, size;
    MemoryRegion *mr;
    hwaddr offset_within_region;
    bool readonly;
} cpu_section;

/* One Unicorn mapping. */
typedef struct cpu_map {
    hwaddr start, end;
    bool mmio;
    uint8_t *host;          /* direct mappings */
    uint32_t perms;
    struct cpu_mmio *ctx;   /* mmio mappings */
    bool hole;              /* mmio mapping of unassigned addresses, see map_hole() */
} cpu_map;

typedef struct cpu_mmio {
    hub_cpu *cpu;
    hwaddr start;
} cpu_mmio;

typedef struct range {
    hwaddr start, end;
} range;

/* Instructions of the block at pc (tag: pc >> 1, truncated) and of that size. 8 bytes: the table stays in cache. */
typedef struct icount_entry {
    uint32_t tag;
    uint16_t size, insns;
} icount_entry;

/* An MMIO access site in translated code (its host return address) and how many instructions of its block come
 * before the accessing one. */
typedef struct ra_entry {
    uintptr_t ra;
    uint64_t blk_pc;
    uint32_t blk_insns, before;
} ra_entry;

/* What the hart is doing when someone asks for the present (the virtual time of the instruction executing). */
enum where {
    AT_BLOCK,       /* between blocks, or in a hook: every instruction of the blocks entered is done */
    IN_ACCESS,      /* an MMIO access: the accessing instruction (its place found from the host return address) */
    IN_CSR,         /* a CSR access: the last instruction of its block */
    AT_PC,          /* the instruction at at_pc, in the current block (an exception's) */
};

struct hub_cpu {
    hub_cpu_config cfg;
    ucx x;
    uc_hook h_intr, h_unmapped, h_prot, h_block;
    MemoryListener listener;
    bool listening;
    bool closing;

    cpu_section *secs;
    size_t nsecs, capsecs;
    cpu_map *maps;
    size_t nmaps, capmaps;
    size_t last_ram;        /* index in maps of the last RAM mapping found by ram_host() */

    uint64_t mip_ext;       /* levels driven through hub_cpu_set_irq */
    bool running;           /* inside uc_emu_start */
    bool in_access;         /* an MMIO access is being dispatched */
    bool irq_raised;        /* ... and a line rose during it */
    hwaddr last_read;       /* the last MMIO read and its value (the low half of a split 8-byte load) */
    uint64_t last_value;

    bool stop;
    int stop_status;
    bool fatal;
    char fatal_msg[192];

    /* memory fault recorded by a hook, turned into a trap after uc_emu_start returns */
    uc_mem_type fault_type;
    uint64_t fault_addr;
    bool fault_seen;
    bool retry;             /* a hole was mapped for the fetch that stopped the slice: run it again */
    bool deferred;          /* an MMIO access of this slice was deferred (hub_cpu_defer_access): run it again */

    /* the slice being run */
    uint64_t budget;        /* instructions */
    uint64_t executed;      /* instructions of the blocks entered so far */
    bool budget_stop;       /* the block hook ended the slice */
    bool irq_stop;          /* an MMIO access raised an interrupt that is taken at the next block */
    icount_entry *icount;

    /* the block executing, from the block hook: instructions of an access are counted from its start */
    uint64_t blk_pc;
    icount_entry blk;       /* its size and instruction count */

    /* the present during a slice (present()), and the next timer deadline in instructions (plan_deadline()) */
    enum where where;
    uint64_t at_pc;
    bool present_ok;
    uint64_t present_ns;
    bool due_ok;
    uint64_t due_dl;        /* the deadline due_at is for */
    uint64_t due_at;        /* executed count at which it comes due (UINT64_MAX: never) */
    ra_entry *ra_cache;

    /* virtual time: time = base_ns + insns_since_base / insns_per_ns */
    uint64_t base_ns;
    uint64_t insns_since_base;
    uint64_t wall_origin;
    uint64_t slice;
    uint64_t charged_ns;    /* device bus time charged since base_ns (hub_cpu_charge) */

    uint64_t (*read_time)(void *opaque);
    void *time_opaque;

    hub_cpu_stats stats;

    /* the debugger (hooks only while something is set; see "Debugging") */
    struct { uint64_t pc; uc_hook h; } bps[MAX_BREAKPOINTS];
    size_t nbps;
    struct { uint64_t addr, len; hub_watch_kind kind; } wps[MAX_WATCHPOINTS];
    size_t nwps;
    uc_hook h_insn, h_wread, h_wwrite;
    bool insn_hooked, wread_hooked, wwrite_hooked;
    bool dbg_pending;       /* a debug stop to report between slices (dbg_ev) */
    hub_cpu_debug_event dbg_ev;
    bool stepping;          /* one instruction, then stop */
    bool step_started;      /* ... the instruction is under way */
    uint64_t skip_bp;       /* resuming at this breakpoint: do not stop there first */
    bool wp_hit;            /* an access hit a watchpoint: the slice stops, the access is undone */
    uint64_t wp_pc;         /* ... the accessing instruction */
    uint8_t *wp_undo;       /* ... host bytes a store is about to overwrite, and what they held */
    uint8_t wp_old[8];
    size_t wp_len;
    uint64_t skip_watch;    /* resuming at a watched access: let it through once */

    /* diagnostics */
    const hub_cpu_observer *obs;
    unsigned obs_events;    /* obs->events, 0 without an observer */
    bool obs_mmio;          /* every MMIO access is observed: the access path's one extra branch */
    bool obs_errors;        /* refused accesses are (taken on the fault path only) */
    uc_hook h_obs_block;
    uc_context *reset_ctx;  /* the hart as hub_cpu_new() left it (hub_cpu_reset) */
    hub_cpu_trap_info first_fault;
    uint64_t last_vector;   /* where the last exception went */
    bool have_fault;
};

/* ------------------------------------------------------------------------------------------------------ */
/* Registers and privilege                                                                                */
/* ------------------------------------------------------------------------------------------------------ */

static uint64_t reg_get(hub_cpu *cpu, int reg)
{
    uint64_t v = 0;
    uc_reg_read(cpu->x.uc, reg, &v);
    return v;
}

static void reg_set(hub_cpu *cpu, int reg, uint64_t v)
{
    uc_reg_write(cpu->x.uc, reg, &v);
}

/*
 * Make the hart M-mode so that every CSR can be read and written through uc_reg_* (they are checked against
 * the current privilege). Returns the privilege the hart had, for set_priv().
 */
static unsigned m_view_enter(hub_cpu *cpu)
{
    unsigned priv = (unsigned)ucx_get(&cpu->x, UCX_PRIV);
    ucx_set(&cpu->x, UCX_PRIV, PRV_M);
    return priv;
}

static void set_priv(hub_cpu *cpu, unsigned priv)
{
    ucx_set(&cpu->x, UCX_PRIV, priv);
}

static bool map_hole(hub_cpu *cpu, hwaddr addr);
static int observe(hub_cpu *cpu, const hub_cpu_observer *obs);

/*
 * An exception was entered (its handler at @vector): remember the cascade it belongs to, tell the observer.
 * A cascade is a fault inside the first bytes of the handler the previous one entered (a handler that
 * faults at once, e.g. on a bad stack pointer), and so on: its first exception is what led there.
 */
static void note_exception(hub_cpu *cpu, const hub_cpu_trap_info *t, uint64_t vector)
{
    if (!cpu->have_fault || t->epc - cpu->last_vector >= FAULT_CHAIN_BYTES)
        cpu->first_fault = *t;
    cpu->last_vector = vector;
    cpu->have_fault = true;
    if (unlikely(cpu->obs_events & HUB_CPU_OBS_TRAP) && cpu->obs->trap)
        cpu->obs->trap(cpu->cfg.observer_opaque, t);
}

/*
 * Enter an exception as the privileged spec says: to S-mode when the hart is in S or U and the cause is
 * delegated, else to M-mode. The live hart must be in the M view (m_view_enter) with @priv its real privilege.
 */
static void take_trap(hub_cpu *cpu, unsigned priv, uint64_t cause, uint64_t epc, uint64_t tval)
{
    uint64_t deleg = reg_get(cpu, UC_RISCV_REG_MEDELEG);
    uint64_t mstatus = reg_get(cpu, UC_RISCV_REG_MSTATUS);
    uint64_t tvec;
    unsigned target;

    if (priv <= PRV_S && cause < 64 && ((deleg >> cause) & 1)) {
        target = PRV_S;
        mstatus = (mstatus & ~MSTATUS_SPIE) | ((mstatus & MSTATUS_SIE) ? MSTATUS_SPIE : 0);
        mstatus = (mstatus & ~MSTATUS_SPP) | (priv == PRV_S ? MSTATUS_SPP : 0);
        mstatus &= ~MSTATUS_SIE;
        reg_set(cpu, UC_RISCV_REG_SEPC, epc);
        reg_set(cpu, UC_RISCV_REG_SCAUSE, cause);
        reg_set(cpu, UC_RISCV_REG_STVAL, tval);
        tvec = reg_get(cpu, UC_RISCV_REG_STVEC);
    } else {
        target = PRV_M;
        mstatus = (mstatus & ~MSTATUS_MPIE) | ((mstatus & MSTATUS_MIE) ? MSTATUS_MPIE : 0);
        mstatus = (mstatus & ~MSTATUS_MPP) | ((uint64_t)priv << MSTATUS_MPP_SHIFT);
        mstatus &= ~MSTATUS_MIE;
        reg_set(cpu, UC_RISCV_REG_MEPC, epc);
        reg_set(cpu, UC_RISCV_REG_MCAUSE, cause);
        reg_set(cpu, UC_RISCV_REG_MTVAL, tval);
        tvec = reg_get(cpu, UC_RISCV_REG_MTVEC);
    }
    /* in place, as the hart's own trap entry does: writing mstatus as a CSR flushes the TLB when MPP changes */
    ucx_set(&cpu->x, UCX_MSTATUS, mstatus);
    ucx_set(&cpu->x, UCX_PC, tvec & ~3ull);    /* exceptions never use the vectored offset */
    set_priv(cpu, target);
    cpu->stats.traps++;
    note_exception(cpu, &(hub_cpu_trap_info){ false, cause, epc, tval, priv, target, hub_cpu_vtime(cpu) },
                   tvec & ~3ull);
}

static void __attribute__((format(printf, 2, 3))) set_fatal(hub_cpu *cpu, const char *fmt, ...)
{
    if (cpu->fatal)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cpu->fatal_msg, sizeof(cpu->fatal_msg), fmt, ap);
    va_end(ap);
    cpu->fatal = true;
    cpu->stop = true;
    uc_emu_stop(cpu->x.uc);
}

/* Causes whose xtval is the faulting address. */
static bool cause_has_addr(uint32_t cause)
{
    switch (cause) {
    case 0: case 1: case 4: case 5: case 6: case 7: case 12: case 13: case 15:
        return true;
    default:
        return false;
    }
}

/* ------------------------------------------------------------------------------------------------------ */
/* The hub's own reads of guest memory: RAM only, through the hart's translation, never device dispatch    */
/* ------------------------------------------------------------------------------------------------------ */

/* Host address of guest-physical @pa if the CPU maps it as RAM, else NULL. */
static uint8_t *ram_host(hub_cpu *cpu, uint64_t pa)
{
    if (cpu->last_ram < cpu->nmaps) {
        const cpu_map *m = &cpu->maps[cpu->last_ram];
        if (!m->mmio && pa >= m->start && pa < m->end)
            return m->host + (pa - m->start);
    }
    for (size_t i = 0; i < cpu->nmaps; i++) {
        const cpu_map *m = &cpu->maps[i];
        if (!m->mmio && pa >= m->start && pa < m->end) {
            cpu->last_ram = i;
            return m->host + (pa - m->start);
        }
    }
    return NULL;
}

static void *ram_host_cb(void *opaque, uint64_t pa)
{
    return ram_host(opaque, pa);
}

/* Copy [pa, pa + len) out of RAM; false unless all of it is RAM in one mapping. */
static bool ram_read(hub_cpu *cpu, uint64_t pa, void *buf, size_t len)
{
    uint8_t *h = ram_host(cpu, pa);
    if (!h || len > cpu->maps[cpu->last_ram].end - pa)
        return false;
    memcpy(buf, h, len);
    return true;
}

static bool read_pte(void *opaque, uint64_t pa, uint64_t *pte)
{
    return ram_read(opaque, pa, pte, sizeof(*pte));
}

/* The translation state of the hart, @priv being its real privilege. */
static hub_mmu_regs mmu_regs(hub_cpu *cpu, unsigned priv)
{
    return (hub_mmu_regs){ ucx_get(&cpu->x, UCX_SATP), ucx_get(&cpu->x, UCX_MSTATUS), priv };
}

static bool fetch16(hub_cpu *cpu, const hub_mmu_regs *r, uint64_t va, uint16_t *half)
{
    uint64_t pa;
    return hub_mmu_translate(r, va, HUB_MMU_FETCH, read_pte, cpu, &pa) == 0 && ram_read(cpu, pa, half, 2);
}

/*
 * The instruction at virtual @va as the hart would fetch it (16 or 32 bits; a 32-bit instruction may straddle
 * two pages). Returns its length in bytes, or 0 when it is not in RAM or not mapped for execution.
 */
static unsigned fetch_insn(hub_cpu *cpu, const hub_mmu_regs *r, uint64_t va, uint32_t *insn)
{
    uint16_t lo, hi;
    if (!fetch16(cpu, r, va, &lo))
        return 0;
    if ((lo & 3) != 3) {
        *insn = lo;
        return 2;
    }
    if (!fetch16(cpu, r, va + 2, &hi))
        return 0;
    *insn = lo | (uint32_t)hi << 16;
    return 4;
}

/*
 * Instructions in the block of @size bytes at virtual @pc, counted from their encodings (16 or 32 bits), one
 * translation per page. A block the hub cannot read (never the case for a block the hart just fetched) counts
 * one instruction per 4 bytes.
 */
static uint32_t count_insns(hub_cpu *cpu, uint64_t pc, uint32_t size)
{
    hub_mmu_regs r = mmu_regs(cpu, (unsigned)ucx_get(&cpu->x, UCX_PRIV));
    uint64_t va = pc, end = pc + size;
    uint32_t n = 0;
    while (va < end) {
        uint64_t pa;
        uint8_t *h;
        if (hub_mmu_translate(&r, va, HUB_MMU_FETCH, read_pte, cpu, &pa) != 0 || !(h = ram_host(cpu, pa)))
            return n + (uint32_t)((end - va + 3) / 4);
        uint64_t base = va, in_page = PAGE_SIZE - (va & (PAGE_SIZE - 1));
        uint64_t stop = end - va < in_page ? end : va + in_page;
        while (va < stop) {
            n++;
            va += (h[va - base] & 3) == 3 ? 4 : 2;
        }
    }
    return n;
}

static icount_entry *icount_slot(hub_cpu *cpu, uint64_t pc)
{
    return &cpu->icount[(pc >> 1) & (ICACHE_SIZE - 1)];
}

static __attribute__((noinline)) uint32_t icount_miss(hub_cpu *cpu, uint64_t pc, uint32_t size)
{
    icount_entry *e = icount_slot(cpu, pc);
    uint32_t n = count_insns(cpu, pc, size);
    *e = (icount_entry){ (uint32_t)(pc >> 1), (uint16_t)size, (uint16_t)n };
    return n;
}

/* ------------------------------------------------------------------------------------------------------ */
/* The present: the virtual time of the instruction executing                                              */
/* ------------------------------------------------------------------------------------------------------ */

static uint64_t mono_ns(void);

/* Virtual time after @insns instructions since base_ns (what advance_time() computes at the end of a slice). */
static uint64_t time_of(const hub_cpu *cpu, uint64_t insns)
{
    return cpu->base_ns + cpu->charged_ns + (uint64_t)((double)insns / cpu->cfg.insns_per_ns);
}

/* Instructions of the current block before the one at @pc. */
static uint32_t before_in_block(hub_cpu *cpu, uint64_t pc)
{
    if (pc < cpu->blk_pc || pc - cpu->blk_pc >= cpu->blk.size)
        return cpu->blk.insns ? cpu->blk.insns - 1 : 0;     /* not in it (never seen): its last instruction */
    return count_insns(cpu, cpu->blk_pc, (uint32_t)(pc - cpu->blk_pc));
}

/* The same for the instruction making the MMIO access in progress: found from the access's host return address
 * (cpu_restore_state) the first time an access site is seen in a block, then remembered. */
static uint32_t access_before(hub_cpu *cpu)
{
    uintptr_t ra = ucx_access_ra(&cpu->x);
    ra_entry *e = &cpu->ra_cache[(ra >> 2) & (RA_CACHE_SIZE - 1)];
    if (e->ra == ra && e->blk_pc == cpu->blk_pc && e->blk_insns == cpu->blk.insns)
        return e->before;
    if (!ucx_sync_pc(&cpu->x, false))
        return cpu->blk.insns ? cpu->blk.insns - 1 : 0;
    uint32_t n = before_in_block(cpu, ucx_get(&cpu->x, UCX_PC));
    *e = (ra_entry){ ra, cpu->blk_pc, cpu->blk.insns, n };
    return n;
}

/* Instructions of this slice done before the one executing now. */
static uint64_t slice_insns_now(hub_cpu *cpu)
{
    uint64_t before_block = cpu->executed >= cpu->blk.insns ? cpu->executed - cpu->blk.insns : 0;
    switch (cpu->where) {
    case IN_ACCESS:
        return before_block + access_before(cpu);
    case AT_PC:
        return before_block + before_in_block(cpu, cpu->at_pc);
    case IN_CSR:
        return cpu->executed ? cpu->executed - 1 : 0;
    default:
        return cpu->executed;
    }
}

/*
 * The clock's present while a slice runs (vclock.h): the virtual time of the instruction executing, so that an
 * access, what a device does during it (an IRQ, DMA, a timer it arms) and its event-log line carry the time of
 * the instruction that made it. Computed once per access (or CSR access, or interrupt check).
 */
static uint64_t present(void *opaque)
{
    hub_cpu *cpu = opaque;
    if (cpu->cfg.wallclock)
        return mono_ns() - cpu->wall_origin;
    if (!cpu->present_ok) {
        cpu->present_ns = time_of(cpu, cpu->insns_since_base + slice_insns_now(cpu));
        cpu->present_ok = true;
    }
    return cpu->present_ns;
}

static void set_where(hub_cpu *cpu, enum where w)
{
    cpu->where = w;
    cpu->present_ok = false;
}

/* Instructions from the start of this slice until virtual time @t: 0 if it is already reached, UINT64_MAX for
 * VCLOCK_NEVER. */
static uint64_t insns_until(const hub_cpu *cpu, uint64_t t)
{
    if (t == VCLOCK_NEVER)
        return UINT64_MAX;
    uint64_t base = cpu->base_ns + cpu->charged_ns;
    if (t <= base)
        return 0;
    double need = ceil((double)(t - base) * cpu->cfg.insns_per_ns) - (double)cpu->insns_since_base;
    if (need < 1)
        return 0;
    return need >= 0x1p63 ? UINT64_MAX : (uint64_t)need;
}

/*
 * The next timer deadline is new (the slice began, or a device armed a timer from an access): note the
 * instruction count at which it comes due, and end the slice at the first block boundary at or after it.
 */
static void plan_deadline(hub_cpu *cpu)
{
    cpu->due_dl = vclock_next_deadline(cpu->cfg.clock);
    cpu->due_ok = true;
    cpu->due_at = cpu->cfg.wallclock ? UINT64_MAX : insns_until(cpu, cpu->due_dl);
    if (cpu->due_at < cpu->budget)
        cpu->budget = cpu->due_at;
}

static inline void watch_deadline(hub_cpu *cpu)
{
    if (unlikely(!cpu->due_ok || vclock_next_deadline(cpu->cfg.clock) != cpu->due_dl))
        plan_deadline(cpu);
}

static int deliverable_irq(hub_cpu *cpu);

/*
 * An MMIO access in a block that runs past a timer deadline: if the accessing instruction comes at or after
 * it, the timers fire first (the access must not observe a time past a deadline whose timer did not fire), and
 * an interrupt they make deliverable is taken before the instruction: the access is not made, the pc stays on
 * it, and Unicorn's loop enters the interrupt.
 */
static __attribute__((noinline)) void fire_due(hub_cpu *cpu)
{
    uint64_t t = present(cpu);
    if (t < cpu->due_dl)
        return;
    cpu->in_access = true;      /* a stop asked for by a callback waits for the block's end */
    vclock_advance(cpu->cfg.clock, t);
    cpu->in_access = false;
    cpu->irq_raised = false;
    plan_deadline(cpu);
    if (deliverable_irq(cpu) >= 0 && ucx_sync_pc(&cpu->x, true)) {
        set_where(cpu, AT_BLOCK);
        ucx_leave(&cpu->x);
    }
}

/* An MMIO access begins (before the address space dispatches it) and ends. */
static inline void access_begin(hub_cpu *cpu)
{
    set_where(cpu, IN_ACCESS);
    watch_deadline(cpu);
    if (unlikely(cpu->executed >= cpu->due_at))
        fire_due(cpu);
}

static inline void access_end(hub_cpu *cpu)
{
    set_where(cpu, AT_BLOCK);
    watch_deadline(cpu);
}

/*
 * rdtime: Unicorn has no time CSR. In the M view (@priv the real privilege): if @insn (at @epc) reads time
 * and the counter-enable bits allow it at @priv, write the time into rd and step over it.
 */
static bool emulate_rdtime(hub_cpu *cpu, unsigned priv, uint64_t epc, uint32_t insn)
{
    if (!cpu->read_time || (insn & INSN_RDTIME_MASK) != INSN_RDTIME)
        return false;
    if (priv < PRV_M && !(reg_get(cpu, UC_RISCV_REG_MCOUNTEREN) & COUNTEREN_TM))
        return false;
    if (priv == PRV_U && !(reg_get(cpu, UC_RISCV_REG_SCOUNTEREN) & COUNTEREN_TM))
        return false;
    unsigned rd = (insn >> 7) & 31;
    if (rd)
        reg_set(cpu, UC_RISCV_REG_X0 + (int)rd, cpu->read_time(cpu->time_opaque));
    ucx_set(&cpu->x, UCX_PC, epc + 4);
    return true;
}

/* A synchronous exception reported by Unicorn: enter the guest's trap handler right away. */
static void on_exception(uc_engine *uc, uint32_t intno, void *opaque)
{
    hub_cpu *cpu = opaque;
    uint64_t epc = ucx_get(&cpu->x, UCX_PC) - 4;
    unsigned priv = m_view_enter(cpu);
    uint64_t cause = intno;
    uint64_t tval = 0;

    if (cause_has_addr(intno))
        tval = ucx_get(&cpu->x, UCX_BADADDR);
    else if (intno == EXC_BREAKPOINT)
        tval = epc;
    if (cause == EXC_ECALL_U)
        cause = EXC_ECALL_U + priv;     /* 8 from U, 9 from S, 11 from M */
    if (cause == EXC_ILLEGAL) {
        /* xtval = the instruction's encoding, as QEMU does; 0 if the hub cannot read it from RAM */
        hub_mmu_regs r = mmu_regs(cpu, priv);
        uint32_t insn = 0;
        cpu->at_pc = epc;
        set_where(cpu, AT_PC);      /* rdtime reads the time of its own instruction */
        bool emulated = fetch_insn(cpu, &r, epc, &insn) && emulate_rdtime(cpu, priv, epc, insn);
        set_where(cpu, AT_BLOCK);
        if (emulated) {
            set_priv(cpu, priv);
            return;
        }
        tval = insn;
        /* a CSR instruction (SYSTEM opcode, funct3 != 0) the hart refused */
        if (unlikely(cpu->obs_events & HUB_CPU_OBS_UNIMP) && cpu->obs->unimp_csr && (insn & 0x7f) == 0x73 &&
            ((insn >> 12) & 7))
            cpu->obs->unimp_csr(cpu->cfg.observer_opaque, insn >> 20, epc, priv);
    }
    if (cause >= 16) {
        set_fatal(cpu, "unexpected CPU exception %" PRIu64 " at pc 0x%" PRIx64, cause, epc);
        set_priv(cpu, priv);
        return;
    }
    take_trap(cpu, priv, cause, epc, tval);
}

static hub_mmu_access access_kind(uc_mem_type type)
{
    switch (type) {
    case UC_MEM_FETCH_UNMAPPED: case UC_MEM_FETCH_PROT: case UC_MEM_FETCH:
        return HUB_MMU_FETCH;
    case UC_MEM_WRITE_UNMAPPED: case UC_MEM_WRITE_PROT: case UC_MEM_WRITE:
        return HUB_MMU_STORE;
    default:
        return HUB_MMU_LOAD;
    }
}

/*
 * Unicorn 2.0 checks the *virtual* address of an access against its own (physical) map before the MMU
 * translates it (Unicorn issue #1718): with paging on, a virtual address that is not also a mapped physical
 * one lands here, and so does a fetch from a virtual address that is numerically an MMIO page or a store to
 * one that is numerically ROM. For a translated access, let the MMU do the real work (page faults included):
 * answer "handled" to the PROT checks, and map the hole around @addr as MMIO for the UNMAPPED ones. A load or
 * store then proceeds (a physical access to an unassigned address reaches the MMIO callback, which raises a
 * precise access fault); a fetch is refused, because mapping flushes Unicorn's TLB under the fetch in flight:
 * uc_emu_start returns with the pc on the block that was being translated and the run loop retries it.
 * Refusing a load or store leaves the block at that access with the pc on the block's start (imprecise):
 * that only happens where no hole can be mapped (the last page of the address space) and for a physical
 * store to read-only RAM (answering "handled" would let it write).
 */
static bool on_bad_access(uc_engine *uc, uc_mem_type type, uint64_t addr, int size, int64_t value,
                          void *opaque)
{
    hub_cpu *cpu = opaque;
    hub_mmu_regs r = mmu_regs(cpu, (unsigned)ucx_get(&cpu->x, UCX_PRIV));
    bool translated = hub_mmu_translates(&r, access_kind(type));
    bool unmapped = type == UC_MEM_READ_UNMAPPED || type == UC_MEM_WRITE_UNMAPPED || type == UC_MEM_FETCH_UNMAPPED;
    if (translated && !unmapped)
        return true;
    if (unmapped && map_hole(cpu, addr)) {
        if (type != UC_MEM_FETCH_UNMAPPED)
            return true;
        cpu->retry = true;
        return false;
    }
    cpu->fault_seen = true;
    cpu->fault_type = type;
    cpu->fault_addr = addr;
    return false;
}

/* ------------------------------------------------------------------------------------------------------ */
/* Interrupts                                                                                             */
/* ------------------------------------------------------------------------------------------------------ */

/* Interrupts in the order the privileged spec takes them. */
static const uint8_t irq_priority[] = { 11, 3, 7, 9, 1, 5 };

static int highest(uint64_t set)
{
    for (size_t i = 0; i < sizeof(irq_priority); i++)
        if (set & (1ull << irq_priority[i]))
            return irq_priority[i];
    return set ? __builtin_ctzll(set) : -1;
}

/* The interrupt the hart takes now (pending, enabled, globally enabled for its target mode), or -1. */
static int deliverable_irq(hub_cpu *cpu)
{
    uint64_t pending = ucx_get(&cpu->x, UCX_MIP) & ucx_get(&cpu->x, UCX_MIE);
    if (!pending)
        return -1;
    unsigned priv = (unsigned)ucx_get(&cpu->x, UCX_PRIV);
    uint64_t mstatus = ucx_get(&cpu->x, UCX_MSTATUS), mideleg = ucx_get(&cpu->x, UCX_MIDELEG);
    bool m_on = priv < PRV_M || (mstatus & MSTATUS_MIE);
    bool s_on = priv < PRV_S || (priv == PRV_S && (mstatus & MSTATUS_SIE));
    int irq = highest(m_on ? pending & ~mideleg : 0);
    return irq >= 0 ? irq : highest(s_on ? pending & mideleg : 0);
}

/*
 * Unicorn's loop is about to take an interrupt: the guest must not take one that a posted write it made earlier
 * has already lowered, so the devices' lines catch up first (hub_cpu_config.irq_sync).
 */
static int pick_irq_cb(void *opaque)
{
    hub_cpu *cpu = opaque;
    if (cpu->stepping)
        return -1;      /* a debugger's step holds interrupts off */
    int irq = deliverable_irq(cpu);
    if (irq >= 0 && cpu->cfg.irq_sync) {
        set_where(cpu, AT_BLOCK);
        hub_cpu_irq_sync(cpu);
        irq = deliverable_irq(cpu);
    }
    return irq;
}

/* The guest reads mip or sip: the same, before it sees their value. The CSR instruction ends its block. */
static void csr_read_cb(void *opaque)
{
    hub_cpu *cpu = opaque;
    if (!cpu->running || !cpu->cfg.irq_sync)
        return;
    set_where(cpu, IN_CSR);
    hub_cpu_irq_sync(cpu);
    set_where(cpu, AT_BLOCK);
}

/* WFI wakes on any interrupt pending and enabled in mie, whatever the global enables and delegation say. */
static bool irq_pending(hub_cpu *cpu)
{
    return (ucx_get(&cpu->x, UCX_MIP) & ucx_get(&cpu->x, UCX_MIE)) != 0;
}

/* ------------------------------------------------------------------------------------------------------ */
/* Memory map                                                                                             */
/* ------------------------------------------------------------------------------------------------------ */

/*
 * One guest access as the CPU makes it: a single access of @size to the region at @addr with that region's
 * valid rules (a 4-byte load from a byte-wide register is rejected, not split), as QEMU's TCG does.
 * Accesses straddling two regions, or hitting nothing, go through the address space.
 */
static MemTxResult cpu_access(hub_cpu *cpu, hwaddr addr, uint64_t *val, unsigned size, bool is_write)
{
    hwaddr xlat, len = size;
    MemTxResult r;
    memory_rcu_read_lock();
    MemoryRegion *mr = address_space_translate(cpu->cfg.as, addr, &xlat, &len, is_write);
    if (mr && len == size) {
        r = is_write ? memory_region_dispatch_write(mr, xlat, *val, size, MEMTXATTRS_UNSPECIFIED)
                     : memory_region_dispatch_read(mr, xlat, val, size, MEMTXATTRS_UNSPECIFIED);
    } else {
        r = address_space_rw(cpu->cfg.as, addr, MEMTXATTRS_UNSPECIFIED, (uint8_t *)val, (int)size, is_write);
    }
    memory_rcu_read_unlock();
    return r;
}

/*
 * The address space refused an MMIO access (nothing there, or the device does not take that size): a
 * precise access fault. The pc comes from the host return address of the access; leaving through Unicorn's
 * loop abandons the instruction (its destination register is left alone) and the rest of its block.
 */
__attribute__((noreturn)) static void mmio_fault(hub_cpu *cpu, hwaddr addr, bool is_write)
{
    cpu->stats.mmio_errors++;
    cpu->irq_raised = false;
    if (!ucx_sync_pc(&cpu->x, true))
        set_fatal(cpu, "cpu: access fault at 0x%" PRIx64 " from an instruction Unicorn cannot locate", addr);
    uint64_t pc = ucx_get(&cpu->x, UCX_PC);
    unsigned priv = m_view_enter(cpu);
    take_trap(cpu, priv, is_write ? EXC_STORE_ACCESS : EXC_LOAD_ACCESS, pc, addr);
    ucx_leave(&cpu->x);
}

/*
 * End the slice at the next block boundary, from inside a guest access. Unicorn checks for an exit request
 * after every load and store and leaves the block there with the pc at the block's start (instructions
 * before the access already done): uc_emu_stop or cpu_exit inside an access would make them run twice. The
 * block hook stops the slice cleanly instead, before the next block runs.
 */
static void stop_at_next_block(hub_cpu *cpu)
{
    cpu->budget = 0;
}

/* Decoded memory instruction: what after_access() needs to finish it by hand. */
typedef struct mem_insn {
    unsigned len;       /* 2 or 4 */
    unsigned width;     /* bytes accessed */
    bool load, sign;    /* a load into x[rd]; sign-extended */
    unsigned rd;
} mem_insn;

/* Integer loads and all plain stores (not AMOs, not FP loads): false for anything else. */
static bool decode_mem(uint32_t insn, unsigned len, mem_insn *d)
{
    *d = (mem_insn){ .len = len };
    if (len == 4) {
        unsigned op = insn & 0x7f, f3 = (insn >> 12) & 7;
        if (op == 0x03 && f3 != 7) {                    /* LB LH LW LD LBU LHU LWU */
            d->load = true;
            d->width = 1u << (f3 & 3);
            d->sign = f3 < 4;
            d->rd = (insn >> 7) & 31;
            return true;
        }
        if ((op == 0x23 && f3 < 4) || (op == 0x27 && (f3 == 2 || f3 == 3))) {   /* SB SH SW SD FSW FSD */
            d->width = 1u << (f3 & 3);
            return true;
        }
        return false;
    }
    unsigned q = insn & 3, f3 = (insn >> 13) & 7;
    if (q == 0 && (f3 == 2 || f3 == 3)) {               /* C.LW C.LD */
        d->load = d->sign = true;
        d->width = f3 == 2 ? 4 : 8;
        d->rd = 8 + ((insn >> 2) & 7);
        return true;
    }
    if (q == 2 && (f3 == 2 || f3 == 3) && ((insn >> 7) & 31)) {     /* C.LWSP C.LDSP */
        d->load = d->sign = true;
        d->width = f3 == 2 ? 4 : 8;
        d->rd = (insn >> 7) & 31;
        return true;
    }
    if ((q == 0 || q == 2) && f3 >= 5) {                /* C.FSD C.SW C.SD and their SP forms */
        d->width = f3 == 6 ? 4 : 8;
        return true;
    }
    return false;
}

/*
 * A line rose while the guest's access was being dispatched (the device's reply, an IRQ message, a write to
 * CLINT or PLIC). If that makes an interrupt deliverable, the spec takes it before the next instruction:
 * finish this one by hand (a load's value into rd; a store is done), put the pc after it and leave the
 * block; Unicorn's loop enters the interrupt with xepc = the next instruction. When the instruction is not
 * a plain load or store (an AMO, a floating-point load) or is split into bytes (misaligned), the slice stops
 * at the next block boundary instead. Unicorn makes an aligned 8-byte MMIO access as two 4-byte ones, low
 * half first: act after the high half.
 */
static void after_access(hub_cpu *cpu, hwaddr addr, unsigned size, uint64_t value, bool is_write)
{
    if (deliverable_irq(cpu) < 0) {
        cpu->irq_raised = false;
        return;
    }
    mem_insn d;
    uint32_t insn;
    unsigned len;
    if (!ucx_sync_pc(&cpu->x, false))
        goto at_block_end;
    uint64_t pc = ucx_get(&cpu->x, UCX_PC);
    hub_mmu_regs r = mmu_regs(cpu, (unsigned)ucx_get(&cpu->x, UCX_PRIV));
    if (!(len = fetch_insn(cpu, &r, pc, &insn)) || !decode_mem(insn, len, &d) || d.load == is_write)
        goto at_block_end;
    if (size == 4 && d.width == 8) {
        if (!(addr & 4))
            return;             /* the high half comes next; irq_raised stays set */
        if (d.load) {
            if (cpu->last_read != addr - 4)
                goto at_block_end;
            value = cpu->last_value | value << 32;
        }
    } else if (size != d.width) {
        goto at_block_end;
    }
    cpu->irq_raised = false;
    if (d.load && d.rd) {
        if (d.sign && d.width < 8)
            value = (uint64_t)((int64_t)(value << (64 - 8 * d.width)) >> (64 - 8 * d.width));
        reg_set(cpu, UC_RISCV_REG_X0 + (int)d.rd, value);
    }
    ucx_set(&cpu->x, UCX_PC, pc + d.len);
    ucx_leave(&cpu->x);

at_block_end:
    cpu->irq_raised = false;
    stop_at_next_block(cpu);
    cpu->irq_stop = true;
}

/* Tell the observer about one MMIO access (only with an observer that asked for accesses). */
static __attribute__((noinline)) void observe_access(hub_cpu *cpu, hwaddr addr, unsigned size, bool is_write,
                                                     uint64_t value, MemTxResult r, uint64_t t0)
{
    unsigned ev = cpu->obs_events;
    if (!cpu->obs->access || (!(ev & HUB_CPU_OBS_MMIO) && r == MEMTX_OK))
        return;
    hub_cpu_access_info a = {
        .addr = addr, .size = size, .write = is_write, .value = r == MEMTX_OK || is_write ? value : 0,
        .error = r != MEMTX_OK, .host_ns = (ev & HUB_CPU_OBS_MMIO_TIME) && t0 ? mono_ns() - t0 : 0,
        .vtime_ns = hub_cpu_vtime(cpu),
    };
    hwaddr xlat, len = size;
    memory_rcu_read_lock();
    MemoryRegion *mr = address_space_translate(cpu->cfg.as, addr, &xlat, &len, is_write);
    a.region = mr ? memory_region_name(mr) : NULL;
    a.unassigned = !mr;
    memory_rcu_read_unlock();
    uint64_t pc = 0;
    if ((ev & HUB_CPU_OBS_PC) || a.error) {
        /* move the pc to the access for the report; the callback's own exits put it where it must be */
        if (ucx_sync_pc(&cpu->x, false))
            pc = ucx_get(&cpu->x, UCX_PC);
    }
    cpu->obs->access(cpu->cfg.observer_opaque, &a, pc, (unsigned)ucx_get(&cpu->x, UCX_PRIV));
}

bool
hub_cpu_defer_access(hub_cpu *cpu)
{
    if (!cpu->in_access)
        return false;
    cpu->deferred = true;
    return true;
}

/*
 * A deferred access: the instruction is abandoned (nothing written back, the second half of a split 8-byte
 * access never made) and the block left with the pc on it, as for an access fault; the block hook then ends the
 * slice before the instruction runs again (stop_at_next_block), so the loop's service call comes first.
 */
static void abandon(hub_cpu *cpu, hwaddr addr)
{
    cpu->stats.mmio_deferred++;
    cpu->irq_raised = false;
    if (!ucx_sync_pc(&cpu->x, true)) {
        set_fatal(cpu, "cpu: deferred access at 0x%" PRIx64 " from an instruction Unicorn cannot locate", addr);
        return;
    }
    stop_at_next_block(cpu);
    ucx_leave(&cpu->x);
}

/* One guest access to I/O space, read or write: timed, observed and faulted alike. */
static inline MemTxResult mmio_access(hub_cpu *cpu, hwaddr addr, uint64_t *v, unsigned size, bool is_write)
{
    access_begin(cpu);
    uint64_t t0 = unlikely(cpu->obs_mmio) ? mono_ns() : 0;
    cpu->in_access = true;
    MemTxResult r = cpu_access(cpu, addr, v, size, is_write);
    cpu->in_access = false;
    access_end(cpu);
    if (unlikely(cpu->deferred))
        abandon(cpu, addr);
    if (unlikely(cpu->obs_mmio || (r != MEMTX_OK && cpu->obs_errors)))
        observe_access(cpu, addr, size, is_write, *v, r, t0);
    if (r != MEMTX_OK)
        mmio_fault(cpu, addr, is_write);
    if (unlikely(cpu->irq_raised))
        after_access(cpu, addr, size, *v, is_write);
    return r;
}

static uint64_t mmio_read(uc_engine *uc, uint64_t offset, unsigned size, void *opaque)
{
    cpu_mmio *m = opaque;
    hub_cpu *cpu = m->cpu;
    hwaddr addr = m->start + offset;
    uint64_t v = 0;
    cpu->stats.mmio_reads++;
    mmio_access(cpu, addr, &v, size, false);
    cpu->last_read = addr;
    cpu->last_value = v;
    return v;
}

static void mmio_write(uc_engine *uc, uint64_t offset, unsigned size, uint64_t value, void *opaque)
{
    cpu_mmio *m = opaque;
    m->cpu->stats.mmio_writes++;
    mmio_access(m->cpu, m->start + offset, &value, size, true);
}

static bool section_direct(const cpu_section *s, uint8_t **host)
{
    MemoryRegion *mr = s->mr;
    if (!memory_region_is_ram(mr) || mr->rom_device || memory_region_is_ram_device(mr))
        return false;
    uint8_t *p = memory_region_get_ram_ptr(mr);
    if (!p)
        return false;
    *host = p + s->offset_within_region;
    /* zero-copy needs the host page boundaries to line up with the guest's */
    return (((uintptr_t)*host ^ s->base) & (PAGE_SIZE - 1)) == 0;
}

static int range_cmp(const void *a, const void *b)
{
    const range *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

static bool push_range(range **v, size_t *n, size_t *cap, hwaddr start, hwaddr end)
{
    if (start >= end)
        return true;
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        range *nv = realloc(*v, nc * sizeof(**v));
        if (!nv)
            return false;
        *v = nv, *cap = nc;
    }
    (*v)[(*n)++] = (range){ start, end };
    return true;
}

static bool push_map(cpu_map **v, size_t *n, size_t *cap, cpu_map m)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        cpu_map *nv = realloc(*v, nc * sizeof(**v));
        if (!nv)
            return false;
        *v = nv, *cap = nc;
    }
    (*v)[(*n)++] = m;
    return true;
}

static bool map_equal(const cpu_map *a, const cpu_map *b)
{
    return a->start == b->start && a->end == b->end && a->mmio == b->mmio &&
           (a->mmio || (a->host == b->host && a->perms == b->perms));
}

static void unmap_one(hub_cpu *cpu, cpu_map *m)
{
    uc_mem_unmap(cpu->x.uc, m->start, m->end - m->start);
    free(m->ctx);
    m->ctx = NULL;
}

static hwaddr page_up(hwaddr a)
{
    return a > UINT64_MAX - (PAGE_SIZE - 1) ? UINT64_MAX & PAGE_MASK : (a + PAGE_SIZE - 1) & PAGE_MASK;
}

/*
 * Bring the Unicorn mappings in line with the sections: RAM page-aligned and zero-copy, everything else
 * (I/O, ROM devices, partial pages) as MMIO pages dispatched through the address space.
 */
static void resync(hub_cpu *cpu)
{
    range *io = NULL, *lazy = NULL;
    size_t nio = 0, capio = 0, nlazy = 0, caplazy = 0;
    cpu_map *want = NULL;
    size_t nwant = 0, capwant = 0;
    bool ok = true;

    /* 1. pages that must go through the address space */
    for (size_t i = 0; i < cpu->nsecs && ok; i++) {
        const cpu_section *s = &cpu->secs[i];
        hwaddr end = s->base + s->size;
        uint8_t *host;
        if (end > UPPER_HALF) {
            set_fatal(cpu, "cpu: [0x%" PRIx64 ", 0x%" PRIx64 ") is in the upper half of the address space, which "
                      "the CPU keeps for virtual addresses (RISC-V physical addresses have at most 56 bits)",
                      s->base, end);
            continue;
        }
        if (section_direct(s, &host)) {
            hwaddr a = page_up(s->base), b = end & PAGE_MASK;
            if (a >= b) {
                ok = push_range(&io, &nio, &capio, s->base & PAGE_MASK, page_up(end));
            } else {
                ok = push_range(&io, &nio, &capio, s->base & PAGE_MASK, a) &&
                     push_range(&io, &nio, &capio, b, page_up(end));
            }
        } else if (s->size > LAZY_IO) {
            /* Large I/O space (a device may declare up to 2^40 bytes): mapped as the guest uses it, a hole's
             * chunk at a time (map_hole), never whole, so what it costs follows what is touched. */
            ok = push_range(&lazy, &nlazy, &caplazy, s->base & PAGE_MASK, page_up(end));
        } else {
            ok = push_range(&io, &nio, &capio, s->base & PAGE_MASK, page_up(end));
        }
    }
    if (nio)
        qsort(io, nio, sizeof(*io), range_cmp);
    size_t merged = 0;
    for (size_t i = 0; i < nio; i++) {
        if (merged && io[i].start <= io[merged - 1].end) {
            if (io[i].end > io[merged - 1].end)
                io[merged - 1].end = io[i].end;
        } else {
            io[merged++] = io[i];
        }
    }
    nio = merged;

    /* 2. direct RAM pieces: aligned RAM minus the MMIO pages */
    for (size_t i = 0; i < cpu->nsecs && ok; i++) {
        const cpu_section *s = &cpu->secs[i];
        uint8_t *host;
        if (!section_direct(s, &host))
            continue;
        hwaddr a = page_up(s->base), b = (s->base + s->size) & PAGE_MASK;
        uint32_t perms = s->readonly ? UC_PROT_READ | UC_PROT_EXEC : UC_PROT_ALL;
        for (size_t j = 0; j < nio && a < b; j++) {
            if (io[j].end <= a || io[j].start >= b)
                continue;
            if (io[j].start > a)
                ok = ok && push_map(&want, &nwant, &capwant, (cpu_map){ .start = a, .end = io[j].start,
                                    .host = host + (a - s->base), .perms = perms });
            a = io[j].end;
        }
        if (a < b)
            ok = ok && push_map(&want, &nwant, &capwant, (cpu_map){ .start = a, .end = b,
                                .host = host + (a - s->base), .perms = perms });
    }
    for (size_t j = 0; j < nio && ok; j++)
        ok = push_map(&want, &nwant, &capwant, (cpu_map){ .start = io[j].start, .end = io[j].end, .mmio = true });
    /*
     * 3. holes. Below phys_top (the last section, rounded up) every hole is mapped as MMIO in aligned pieces,
     * so that a translated access to an unassigned physical address reaches the MMIO callback and faults
     * (Unicorn would answer it with 0). Unicorn unmaps page by page (~100 ns a page): pieces stay small
     * enough that a new section costs a few milliseconds. Above phys_top, holes made by map_hole() for
     * virtual addresses stay while nothing else wants their pages. The upper half of the address space
     * (kernel virtual addresses; no section is ever there) is one hole mapping for good.
     */
    size_t nsec = nwant;
    hwaddr phys_top = 0;
    for (size_t j = 0; j < nsec; j++)
        if (want[j].end > phys_top)
            phys_top = want[j].end;
    phys_top = phys_top > PHYS_PREMAP_MAX - HOLE_PIECE ? PHYS_PREMAP_MAX
                                                        : (phys_top + HOLE_PIECE - 1) & ~(HOLE_PIECE - 1);
    for (size_t i = 0; i < cpu->nmaps && ok; i++) {
        const cpu_map *h = &cpu->maps[i];
        bool clash = h->start < phys_top;
        if (!h->hole || h->start >= UPPER_HALF)
            continue;
        for (size_t j = 0; j < nsec && !clash; j++)
            clash = h->start < want[j].end && want[j].start < h->end;
        if (!clash)
            ok = push_map(&want, &nwant, &capwant, (cpu_map){ .start = h->start, .end = h->end, .mmio = true,
                                                              .hole = true });
    }
    for (hwaddr at = 0; at < phys_top && ok;) {
        hwaddr end = (at & ~(HOLE_PIECE - 1)) + HOLE_PIECE;
        for (size_t j = 0; j < nsec + nlazy; j++) {
            hwaddr ws = j < nsec ? want[j].start : lazy[j - nsec].start, we = j < nsec ? want[j].end : lazy[j - nsec].end;
            if (ws <= at && at < we) {
                end = 0;
                at = we;
                break;
            }
            if (ws > at && ws < end)
                end = ws;
        }
        if (!end)
            continue;
        ok = push_map(&want, &nwant, &capwant, (cpu_map){ .start = at, .end = end, .mmio = true, .hole = true });
        at = end;
    }
    ok = ok && push_map(&want, &nwant, &capwant, (cpu_map){ .start = UPPER_HALF, .end = ADDR_TOP, .mmio = true,
                                                            .hole = true });
    free(io);
    free(lazy);
    if (!ok) {
        free(want);
        set_fatal(cpu, "cpu: out of memory while following the memory map");
        return;
    }

    /* 3. drop what changed, add what is new */
    size_t keep = 0;
    for (size_t i = 0; i < cpu->nmaps; i++) {
        bool found = false;
        for (size_t j = 0; j < nwant && !found; j++)
            found = map_equal(&cpu->maps[i], &want[j]);
        if (found)
            cpu->maps[keep++] = cpu->maps[i];
        else
            unmap_one(cpu, &cpu->maps[i]);
    }
    cpu->nmaps = keep;
    for (size_t j = 0; j < nwant; j++) {
        bool found = false;
        for (size_t i = 0; i < keep && !found; i++)
            found = map_equal(&cpu->maps[i], &want[j]);
        if (found)
            continue;
        cpu_map m = want[j];
        uc_err err;
        if (m.mmio) {
            m.ctx = malloc(sizeof(*m.ctx));
            if (!m.ctx) {
                set_fatal(cpu, "cpu: out of memory while following the memory map");
                break;
            }
            *m.ctx = (cpu_mmio){ cpu, m.start };
            err = uc_mmio_map(cpu->x.uc, m.start, m.end - m.start, mmio_read, m.ctx, mmio_write, m.ctx);
        } else {
            err = uc_mem_map_ptr(cpu->x.uc, m.start, m.end - m.start, m.perms, m.host);
        }
        if (err != UC_ERR_OK) {
            free(m.ctx);
            set_fatal(cpu, "cpu: cannot map [0x%" PRIx64 ", 0x%" PRIx64 ") into the CPU", m.start, m.end);
            continue;
        }
        if (!push_map(&cpu->maps, &cpu->nmaps, &cpu->capmaps, m)) {
            unmap_one(cpu, &m);
            set_fatal(cpu, "cpu: out of memory while following the memory map");
        }
    }
    free(want);
}

/*
 * Map the unmapped part of the HOLE_CHUNK around @addr as MMIO (see on_bad_access). Returns whether a new
 * mapping now covers @addr.
 */
static bool map_hole(hub_cpu *cpu, hwaddr addr)
{
    if (addr >= ADDR_TOP)
        return false;
    hwaddr start = addr & ~(HOLE_CHUNK - 1), end = start + HOLE_CHUNK;
    if (end > ADDR_TOP || end < start)
        end = ADDR_TOP;
    for (size_t i = 0; i < cpu->nmaps; i++) {
        const cpu_map *m = &cpu->maps[i];
        if (m->end <= addr && m->end > start)
            start = m->end;
        if (m->start > addr && m->start < end)
            end = m->start;
        if (m->start <= addr && addr < m->end)
            return false;   /* mapped already: this is a real fault */
    }
    cpu_map m = { .start = start, .end = end, .mmio = true, .hole = true };
    m.ctx = malloc(sizeof(*m.ctx));
    if (!m.ctx)
        return false;
    *m.ctx = (cpu_mmio){ cpu, m.start };
    if (uc_mmio_map(cpu->x.uc, m.start, m.end - m.start, mmio_read, m.ctx, mmio_write, m.ctx) != UC_ERR_OK) {
        free(m.ctx);
        return false;
    }
    if (!push_map(&cpu->maps, &cpu->nmaps, &cpu->capmaps, m)) {
        unmap_one(cpu, &m);
        return false;
    }
    return true;
}

static hub_cpu *listener_cpu(MemoryListener *l)
{
    return (hub_cpu *)((char *)l - offsetof(hub_cpu, listener));
}

static void on_region_add(MemoryListener *l, MemoryRegionSection *sec)
{
    hub_cpu *cpu = listener_cpu(l);
    uint64_t size = int128_get64(int128_min(sec->size, int128_make64(UINT64_MAX)));
    hwaddr base = sec->offset_within_address_space;
    if (size > (UINT64_MAX & PAGE_MASK) - base)
        size = base < (UINT64_MAX & PAGE_MASK) ? (UINT64_MAX & PAGE_MASK) - base : 0;    /* the top page */
    if (!sec->mr || !size)
        return;
    if (cpu->nsecs == cpu->capsecs) {
        size_t nc = cpu->capsecs ? cpu->capsecs * 2 : 16;
        cpu_section *nv = realloc(cpu->secs, nc * sizeof(*nv));
        if (!nv) {
            set_fatal(cpu, "cpu: out of memory while following the memory map");
            return;
        }
        cpu->secs = nv, cpu->capsecs = nc;
    }
    cpu->secs[cpu->nsecs++] = (cpu_section){
        .base = sec->offset_within_address_space, .size = size, .mr = sec->mr,
        .offset_within_region = sec->offset_within_region, .readonly = sec->readonly,
    };
}

static void on_region_del(MemoryListener *l, MemoryRegionSection *sec)
{
    hub_cpu *cpu = listener_cpu(l);
    for (size_t i = 0; i < cpu->nsecs; i++) {
        cpu_section *s = &cpu->secs[i];
        if (s->base == sec->offset_within_address_space && s->mr == sec->mr &&
            s->offset_within_region == sec->offset_within_region) {
            *s = cpu->secs[--cpu->nsecs];
            return;
        }
    }
}

static void on_commit(MemoryListener *l)
{
    hub_cpu *cpu = listener_cpu(l);
    if (!cpu->closing)
        resync(cpu);
}


/* ------------------------------------------------------------------------------------------------------ */
/* Slices                                                                                                 */
/* ------------------------------------------------------------------------------------------------------ */

/* The block at @pc (its count in @e) runs now: counted to the slice, remembered for the time of its accesses. */
static inline void enter_block(hub_cpu *cpu, uint64_t pc, const icount_entry *e)
{
    cpu->blk_pc = pc;
    cpu->blk = *e;
    cpu->executed += e->insns;
}

/* Out of line, so that the block hook's common path saves no registers. */
static __attribute__((noinline)) void block_miss(hub_cpu *cpu, uint64_t pc, uint32_t size)
{
    icount_miss(cpu, pc, size);
    enter_block(cpu, pc, icount_slot(cpu, pc));
}

/*
 * At the start of every block: count its instructions, and end the slice (before the block runs) once the
 * budget is spent. The slice thus ends at the first block boundary at or after the budget.
 */
static void on_block(uc_engine *uc, uint64_t address, uint32_t size, void *opaque)
{
    hub_cpu *cpu = opaque;
    if (unlikely(cpu->executed >= cpu->budget)) {
        cpu->budget_stop = true;
        ucx_set(&cpu->x, UCX_PC, address);     /* Unicorn does it only while no code hook exists */
        uc_emu_stop(uc);
        return;
    }
    const icount_entry *e = icount_slot(cpu, address);
    if (unlikely(e->tag != (uint32_t)(address >> 1) || e->size != size)) {
        block_miss(cpu, address, size);
        return;
    }
    enter_block(cpu, address, e);
}

/* ------------------------------------------------------------------------------------------------------ */
/* Life cycle                                                                                             */
/* ------------------------------------------------------------------------------------------------------ */

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

hub_cpu *
hub_cpu_new(const hub_cpu_config *cfg, Error **errp)
{
    if (!cfg || !cfg->as || !cfg->clock) {
        error_setg(errp, "cpu: the configuration needs an address space and a clock");
        return NULL;
    }
    if (!cfg->wallclock && !(cfg->insns_per_ns > 0 && isfinite(cfg->insns_per_ns))) {
        error_setg(errp, "cpu: insns_per_ns must be a positive number (got %g)", cfg->insns_per_ns);
        return NULL;
    }

    hub_cpu *cpu = calloc(1, sizeof(*cpu));
    if (!cpu) {
        error_setg(errp, "cpu: out of memory");
        return NULL;
    }
    cpu->cfg = *cfg;
    cpu->slice = cfg->slice_insns ? cfg->slice_insns : DEFAULT_SLICE;
    cpu->icount = calloc(ICACHE_SIZE, sizeof(*cpu->icount));
    cpu->ra_cache = calloc(RA_CACHE_SIZE, sizeof(*cpu->ra_cache));
    if (!cpu->icount || !cpu->ra_cache) {
        error_setg(errp, "cpu: out of memory");
        goto fail;
    }
    if (ucx_open(&cpu->x, errp) < 0)
        goto fail;
    cpu->x.pick_irq = pick_irq_cb;
    cpu->x.pick_opaque = cpu;
    cpu->x.ram_host = ram_host_cb;
    cpu->x.ram_opaque = cpu;
    cpu->x.csr_read = csr_read_cb;
    cpu->x.csr_opaque = cpu;
    cpu->skip_bp = cpu->skip_watch = NO_ADDR;
    uc_engine *uc = cpu->x.uc;
    if (uc_hook_add(uc, &cpu->h_intr, UC_HOOK_INTR, on_exception, cpu, 1, 0) != UC_ERR_OK ||
        uc_hook_add(uc, &cpu->h_unmapped, UC_HOOK_MEM_UNMAPPED, on_bad_access, cpu, 1, 0) != UC_ERR_OK ||
        uc_hook_add(uc, &cpu->h_prot, UC_HOOK_MEM_PROT, on_bad_access, cpu, 1, 0) != UC_ERR_OK ||
        uc_hook_add(uc, &cpu->h_block, UC_HOOK_BLOCK, on_block, cpu, 1, 0) != UC_ERR_OK) {
        error_setg(errp, "cpu: cannot install the Unicorn hooks");
        goto fail;
    }
    if (observe(cpu, cfg->observer) < 0) {
        error_setg(errp, "cpu: cannot install the observer's hooks");
        goto fail;
    }

    reg_set(cpu, UC_RISCV_REG_PC, cfg->reset_pc);
    reg_set(cpu, UC_RISCV_REG_A0, cfg->a0);
    reg_set(cpu, UC_RISCV_REG_A1, cfg->a1);
    reg_set(cpu, UC_RISCV_REG_A2, cfg->a2);
    reg_set(cpu, UC_RISCV_REG_MHARTID, cfg->a0);
    if (uc_context_alloc(uc, &cpu->reset_ctx) != UC_ERR_OK || uc_context_save(uc, cpu->reset_ctx) != UC_ERR_OK) {
        error_setg(errp, "cpu: cannot save the reset state");
        goto fail;
    }

    cpu->listener = (MemoryListener){
        .region_add = on_region_add,
        .region_del = on_region_del,
        .commit = on_commit,
        .priority = 10,
    };
    memory_listener_register(&cpu->listener, cfg->as);
    cpu->listening = true;
    resync(cpu);
    if (cpu->fatal) {
        error_setg(errp, "%s", cpu->fatal_msg);
        goto fail;
    }
    cpu->base_ns = vclock_now(cfg->clock);
    cpu->wall_origin = mono_ns() - vclock_now(cfg->clock);
    cfg->clock->present = present;
    cfg->clock->present_opaque = cpu;
    return cpu;

fail:
    hub_cpu_free(cpu);
    return NULL;
}

void
hub_cpu_free(hub_cpu *cpu)
{
    if (!cpu)
        return;
    /* uc_close drops every mapping at once; unmapping one by one first would take Unicorn ages */
    cpu->closing = true;
    if (cpu->listening)
        memory_listener_unregister(&cpu->listener);
    if (cpu->reset_ctx)
        uc_context_free(cpu->reset_ctx);
    ucx_close(&cpu->x);
    for (size_t i = 0; i < cpu->nmaps; i++)
        free(cpu->maps[i].ctx);
    free(cpu->maps);
    free(cpu->secs);
    free(cpu->icount);
    free(cpu->ra_cache);
    if (cpu->cfg.clock->present_opaque == cpu) {
        cpu->cfg.clock->present = NULL;
        cpu->cfg.clock->present_opaque = NULL;
    }
    free(cpu);
}

void
hub_cpu_set_irq(hub_cpu *cpu, unsigned bit, int level)
{
    if (bit >= 64 || !((EXT_IRQ_MASK >> bit) & 1))
        return;
    uint64_t old = cpu->mip_ext;
    if (level)
        cpu->mip_ext |= 1ull << bit;
    else
        cpu->mip_ext &= ~(1ull << bit);
    if (cpu->mip_ext == old)
        return;
    ucx_set(&cpu->x, UCX_MIP, (ucx_get(&cpu->x, UCX_MIP) & ~EXT_IRQ_MASK) | cpu->mip_ext);
    ucx_mip_changed(&cpu->x);
    if (cpu->in_access && level)
        cpu->irq_raised = true;
}

void
hub_cpu_irq_sync(hub_cpu *cpu)
{
    if (!cpu->cfg.irq_sync)
        return;
    if (cpu->in_access) {
        cpu->cfg.irq_sync(cpu->cfg.opaque);
        return;
    }
    /* As inside an access: a stop asked for meanwhile waits for the block's end, never abandons it. */
    cpu->in_access = true;
    cpu->cfg.irq_sync(cpu->cfg.opaque);
    cpu->in_access = false;
    cpu->irq_raised = false;
    if (cpu->running)
        watch_deadline(cpu);
}

void
hub_cpu_set_time_source(hub_cpu *cpu, uint64_t (*read_time)(void *opaque), void *opaque)
{
    cpu->read_time = read_time;
    cpu->time_opaque = opaque;
}

void
hub_cpu_stop(hub_cpu *cpu, int status)
{
    cpu->stop = true;
    cpu->stop_status = status;
    if (cpu->in_access)
        stop_at_next_block(cpu);    /* the access completes; see stop_at_next_block() */
    else
        uc_emu_stop(cpu->x.uc);
}

void
hub_cpu_get_stats(const hub_cpu *cpu, hub_cpu_stats *out)
{
    *out = cpu->stats;
    out->traps += cpu->x.interrupts;
    out->code_dropped = cpu->x.stats.outside_code;
    out->fences = ucx_fences_translated();
}

void
hub_cpu_ram_written(hub_cpu *cpu, uint64_t pa, uint64_t len)
{
    ucx_invalidate_code(&cpu->x, pa, len);
}

/* ------------------------------------------------------------------------------------------------------ */
/* Debugging                                                                                              */
/* ------------------------------------------------------------------------------------------------------ */

/*
 * Unicorn calls UC_HOOK_CODE hooks only from code translated while they exist, and only for the addresses of
 * their range; its TCG backend also decides at translation time whether loads and stores go through the slow
 * path that calls UC_HOOK_MEM_READ/WRITE hooks (all of them do while one exists, including stores the CPU
 * would otherwise let run inline). So every change of these hooks drops the translated code. A code hook
 * keeps the pc up to date before its instruction, and uc_emu_stop in it stops before that instruction runs:
 * a stop there is precise. With any code hook present Unicorn no longer puts the pc back to the block's
 * start when a block hook stops the slice; on_block() writes it itself.
 */

static void flush_code(hub_cpu *cpu)
{
    uc_ctl(cpu->x.uc, UC_CTL_WRITE(UC_CTL_TB_FLUSH, 0));     /* (2.0.1 names its macro uc_ctl_flush_tlb) */
}

/*
 * Drop the code translated for the instruction at virtual @pc (a breakpoint came or went). A whole flush
 * costs ~30 ms here (Unicorn resets its 1 GiB code buffer's bookkeeping), so only the blocks on that
 * physical page go when the translation is the same in every address space: no translation (M-mode, Bare)
 * or a kernel address (the upper half). Elsewhere (a user address, which another process may map to other
 * code that was already translated) everything goes.
 */
static void drop_code_at(hub_cpu *cpu, uint64_t pc)
{
    hub_mmu_regs r = mmu_regs(cpu, (unsigned)ucx_get(&cpu->x, UCX_PRIV));
    uint64_t pa;
    bool global = !hub_mmu_translates(&r, HUB_MMU_FETCH) || (pc >> 63);
    if (global && hub_cpu_debug_translate(cpu, pc, true, &pa) == 0 && ucx_invalidate_code(&cpu->x, pa, 1))
        return;
    flush_code(cpu);
}


static void debug_event(hub_cpu *cpu, hub_cpu_stop_reason why, uint64_t pc)
{
    cpu->dbg_pending = true;
    cpu->dbg_ev = (hub_cpu_debug_event){ .reason = why, .pc = pc, .watch_kind = cpu->dbg_ev.watch_kind,
                                         .watch_addr = cpu->dbg_ev.watch_addr };
}

static void on_breakpoint(uc_engine *uc, uint64_t address, uint32_t size, void *opaque)
{
    hub_cpu *cpu = opaque;
    if (address == cpu->skip_bp) {
        cpu->skip_bp = NO_ADDR;
        return;
    }
    if (cpu->stepping && !cpu->step_started)
        return;                 /* the step hook decides for the stepped instruction */
    debug_event(cpu, HUB_CPU_STOP_BREAKPOINT, address);
    uc_emu_stop(uc);
}

/* Before every instruction while stepping or watching (the hook keeps the pc exact for on_watch()). */
static void on_insn(uc_engine *uc, uint64_t address, uint32_t size, void *opaque)
{
    hub_cpu *cpu = opaque;
    if (address != cpu->skip_watch)
        cpu->skip_watch = NO_ADDR;
    if (cpu->stepping) {
        if (!cpu->step_started) {
            cpu->step_started = true;
            cpu->skip_bp = NO_ADDR;
            return;
        }
        debug_event(cpu, HUB_CPU_STOP_STEP, address);
        uc_emu_stop(uc);
    }
}

/*
 * A load or store, before it is made (virtual @addr). RISC-V debuggers expect a watchpoint to stop *before*
 * the access (GDB then steps over it and compares values), but Unicorn completes the access after this hook
 * and only then leaves the block. So: remember the accessing instruction (the per-instruction hook keeps the
 * pc exact) and, for a store to RAM, the bytes it overwrites; the run loop puts both back (undo_watched()).
 * A store to a device register cannot be undone: it happens once more when the guest goes on.
 */
static void on_watch(uc_engine *uc, uc_mem_type type, uint64_t addr, int size, int64_t value, void *opaque)
{
    hub_cpu *cpu = opaque;
    hub_watch_kind k = type == UC_MEM_WRITE ? HUB_WATCH_WRITE : HUB_WATCH_READ;
    if (cpu->wp_hit || ucx_get(&cpu->x, UCX_PC) == cpu->skip_watch)
        return;
    for (size_t i = 0; i < cpu->nwps; i++) {
        if (!(cpu->wps[i].kind & k) || addr >= cpu->wps[i].addr + cpu->wps[i].len ||
            cpu->wps[i].addr >= addr + (uint64_t)size)
            continue;
        cpu->wp_hit = true;
        cpu->wp_pc = ucx_get(&cpu->x, UCX_PC);
        cpu->dbg_ev.watch_kind = cpu->wps[i].kind == HUB_WATCH_ACCESS ? HUB_WATCH_ACCESS : k;
        cpu->dbg_ev.watch_addr = addr > cpu->wps[i].addr ? addr : cpu->wps[i].addr;
        cpu->wp_undo = NULL;
        uint64_t pa;
        hub_mmu_regs r = mmu_regs(cpu, (unsigned)ucx_get(&cpu->x, UCX_PRIV));
        if (k == HUB_WATCH_WRITE && size > 0 && size <= 8 &&
            hub_mmu_translate(&r, addr, HUB_MMU_STORE, read_pte, cpu, &pa) == 0 &&
            (cpu->wp_undo = ram_host(cpu, pa)) && (uint64_t)size <= cpu->maps[cpu->last_ram].end - pa) {
            cpu->wp_len = (size_t)size;
            memcpy(cpu->wp_old, cpu->wp_undo, cpu->wp_len);
        } else {
            cpu->wp_undo = NULL;
        }
        uc_emu_stop(uc);
        return;
    }
}

/* The slice stopped on a watched access: back to before it, and report. */
static void undo_watched(hub_cpu *cpu)
{
    cpu->wp_hit = false;
    if (cpu->wp_undo)
        memcpy(cpu->wp_undo, cpu->wp_old, cpu->wp_len);
    cpu->wp_undo = NULL;
    ucx_set(&cpu->x, UCX_PC, cpu->wp_pc);
    debug_event(cpu, HUB_CPU_STOP_WATCH, cpu->wp_pc);
}

/* Add or remove a hook on every address so that it is there exactly when @want says. */
static int hook_state(hub_cpu *cpu, bool want, bool *have, uc_hook *h, int type, void *cb)
{
    if (want == *have)
        return 0;
    if (want) {
        if (uc_hook_add(cpu->x.uc, h, type, cb, cpu, 1, 0) != UC_ERR_OK)
            return -ENOMEM;
    } else {
        uc_hook_del(cpu->x.uc, *h);
    }
    *have = want;
    flush_code(cpu);
    return 0;
}

/* The per-instruction and memory hooks as the breakpoints, watchpoints and stepping need them. */
static int update_debug_hooks(hub_cpu *cpu)
{
    bool rd = false, wr = false;
    for (size_t i = 0; i < cpu->nwps; i++) {
        rd |= (cpu->wps[i].kind & HUB_WATCH_READ) != 0;
        wr |= (cpu->wps[i].kind & HUB_WATCH_WRITE) != 0;
    }
    int r = hook_state(cpu, cpu->stepping || cpu->nwps, &cpu->insn_hooked, &cpu->h_insn, UC_HOOK_CODE, on_insn);
    if (!r)
        r = hook_state(cpu, rd, &cpu->wread_hooked, &cpu->h_wread, UC_HOOK_MEM_READ, on_watch);
    if (!r)
        r = hook_state(cpu, wr, &cpu->wwrite_hooked, &cpu->h_wwrite, UC_HOOK_MEM_WRITE, on_watch);
    return r;
}

int
hub_cpu_breakpoint_insert(hub_cpu *cpu, uint64_t pc)
{
    for (size_t i = 0; i < cpu->nbps; i++)
        if (cpu->bps[i].pc == pc)
            return -EEXIST;
    if (cpu->nbps == MAX_BREAKPOINTS)
        return -ENOSPC;
    uc_hook h;
    if (uc_hook_add(cpu->x.uc, &h, UC_HOOK_CODE, on_breakpoint, cpu, pc, pc) != UC_ERR_OK)
        return -ENOMEM;
    cpu->bps[cpu->nbps].pc = pc;
    cpu->bps[cpu->nbps++].h = h;
    drop_code_at(cpu, pc);
    return 0;
}

int
hub_cpu_breakpoint_remove(hub_cpu *cpu, uint64_t pc)
{
    for (size_t i = 0; i < cpu->nbps; i++) {
        if (cpu->bps[i].pc != pc)
            continue;
        uc_hook_del(cpu->x.uc, cpu->bps[i].h);
        cpu->bps[i] = cpu->bps[--cpu->nbps];
        drop_code_at(cpu, pc);
        return 0;
    }
    return -ENOENT;
}

int
hub_cpu_watchpoint_insert(hub_cpu *cpu, uint64_t addr, uint64_t len, hub_watch_kind kind)
{
    if (!len || !kind || addr + len < addr)
        return -EINVAL;
    for (size_t i = 0; i < cpu->nwps; i++)
        if (cpu->wps[i].addr == addr && cpu->wps[i].len == len && cpu->wps[i].kind == kind)
            return -EEXIST;
    if (cpu->nwps == MAX_WATCHPOINTS)
        return -ENOSPC;
    cpu->wps[cpu->nwps].addr = addr;
    cpu->wps[cpu->nwps].len = len;
    cpu->wps[cpu->nwps++].kind = kind;
    int r = update_debug_hooks(cpu);
    if (r < 0)
        cpu->nwps--;
    return r;
}

int
hub_cpu_watchpoint_remove(hub_cpu *cpu, uint64_t addr, uint64_t len, hub_watch_kind kind)
{
    for (size_t i = 0; i < cpu->nwps; i++) {
        if (cpu->wps[i].addr == addr && cpu->wps[i].len == len && cpu->wps[i].kind == kind) {
            cpu->wps[i] = cpu->wps[--cpu->nwps];
            return update_debug_hooks(cpu);
        }
    }
    return -ENOENT;
}

void
hub_cpu_debug_clear(hub_cpu *cpu)
{
    while (cpu->nbps)
        hub_cpu_breakpoint_remove(cpu, cpu->bps[0].pc);
    cpu->nwps = 0;
    cpu->wp_hit = false;
    update_debug_hooks(cpu);
}

void
hub_cpu_reset(hub_cpu *cpu)
{
    uc_context_restore(cpu->x.uc, cpu->reset_ctx);
    ucx_set(&cpu->x, UCX_MIP, (ucx_get(&cpu->x, UCX_MIP) & ~EXT_IRQ_MASK) | cpu->mip_ext);
    ucx_mip_changed(&cpu->x);
    unsigned priv = m_view_enter(cpu);
    reg_set(cpu, UC_RISCV_REG_SATP, 0);     /* a satp write drops the TLB */
    set_priv(cpu, priv);
    flush_code(cpu);
    cpu->have_fault = false;
}

void
hub_cpu_debug_step(hub_cpu *cpu)
{
    cpu->stepping = true;
    cpu->step_started = false;
}

void
hub_cpu_debug_break(hub_cpu *cpu)
{
    if (cpu->dbg_pending)
        return;
    debug_event(cpu, HUB_CPU_STOP_BREAK, 0);
    if (cpu->in_access)
        stop_at_next_block(cpu);
}

/* Report a debug stop and wait (in cfg->debug_stop) until the debugger lets the guest go on. */
static void debug_stop(hub_cpu *cpu)
{
    cpu->dbg_pending = false;
    cpu->stepping = cpu->step_started = false;
    cpu->wp_hit = false;
    cpu->dbg_ev.pc = ucx_get(&cpu->x, UCX_PC);
    if (cpu->cfg.debug_stop) {
        uint64_t t0 = mono_ns();
        cpu->cfg.debug_stop(cpu->cfg.opaque, &cpu->dbg_ev);
        if (cpu->cfg.wallclock)
            cpu->wall_origin += mono_ns() - t0;     /* time stood still while the guest was stopped */
    }
    cpu->skip_watch = cpu->dbg_ev.reason == HUB_CPU_STOP_WATCH ? ucx_get(&cpu->x, UCX_PC) : NO_ADDR;
    cpu->dbg_ev = (hub_cpu_debug_event){ 0 };
    cpu->skip_bp = NO_ADDR;
    uint64_t pc = ucx_get(&cpu->x, UCX_PC);
    for (size_t i = 0; i < cpu->nbps; i++)
        if (cpu->bps[i].pc == pc)
            cpu->skip_bp = pc;
    if (update_debug_hooks(cpu) < 0)
        set_fatal(cpu, "cpu: cannot install the debugger's hooks");
}

/* The CSRs a debugger sees, with the Unicorn register that holds each. */
static const struct { hub_csr_name n; int uc; } csr_table[] = {
    { { HUB_CSR_FFLAGS, "fflags" }, UC_RISCV_REG_FFLAGS },
    { { HUB_CSR_FRM, "frm" }, UC_RISCV_REG_FRM },
    { { HUB_CSR_FCSR, "fcsr" }, UC_RISCV_REG_FCSR },
    { { HUB_CSR_SSTATUS, "sstatus" }, UC_RISCV_REG_SSTATUS },
    { { HUB_CSR_SIE, "sie" }, UC_RISCV_REG_SIE },
    { { HUB_CSR_STVEC, "stvec" }, UC_RISCV_REG_STVEC },
    { { HUB_CSR_SCOUNTEREN, "scounteren" }, UC_RISCV_REG_SCOUNTEREN },
    { { HUB_CSR_SSCRATCH, "sscratch" }, UC_RISCV_REG_SSCRATCH },
    { { HUB_CSR_SEPC, "sepc" }, UC_RISCV_REG_SEPC },
    { { HUB_CSR_SCAUSE, "scause" }, UC_RISCV_REG_SCAUSE },
    { { HUB_CSR_STVAL, "stval" }, UC_RISCV_REG_STVAL },
    { { HUB_CSR_SIP, "sip" }, UC_RISCV_REG_SIP },
    { { HUB_CSR_SATP, "satp" }, UC_RISCV_REG_SATP },
    { { HUB_CSR_MSTATUS, "mstatus" }, UC_RISCV_REG_MSTATUS },
    { { HUB_CSR_MISA, "misa" }, UC_RISCV_REG_MISA },
    { { HUB_CSR_MEDELEG, "medeleg" }, UC_RISCV_REG_MEDELEG },
    { { HUB_CSR_MIDELEG, "mideleg" }, UC_RISCV_REG_MIDELEG },
    { { HUB_CSR_MIE, "mie" }, UC_RISCV_REG_MIE },
    { { HUB_CSR_MTVEC, "mtvec" }, UC_RISCV_REG_MTVEC },
    { { HUB_CSR_MCOUNTEREN, "mcounteren" }, UC_RISCV_REG_MCOUNTEREN },
    { { HUB_CSR_MSCRATCH, "mscratch" }, UC_RISCV_REG_MSCRATCH },
    { { HUB_CSR_MEPC, "mepc" }, UC_RISCV_REG_MEPC },
    { { HUB_CSR_MCAUSE, "mcause" }, UC_RISCV_REG_MCAUSE },
    { { HUB_CSR_MTVAL, "mtval" }, UC_RISCV_REG_MTVAL },
    { { HUB_CSR_MIP, "mip" }, UC_RISCV_REG_MIP },
    { { HUB_CSR_MHARTID, "mhartid" }, UC_RISCV_REG_MHARTID },
};
#define N_CSRS (sizeof(csr_table) / sizeof(csr_table[0]))

const hub_csr_name *
hub_cpu_csrs(size_t *n)
{
    static hub_csr_name names[N_CSRS];
    for (size_t i = 0; i < N_CSRS; i++)
        names[i] = csr_table[i].n;
    *n = N_CSRS;
    return names;
}

static int csr_uc_reg(unsigned csr)
{
    for (size_t i = 0; i < N_CSRS; i++)
        if (csr_table[i].n.csr == csr)
            return csr_table[i].uc;
    return -1;
}

static int access_reg(hub_cpu *cpu, unsigned reg, uint64_t *value, bool write)
{
    if (reg < 32) {
        if (write && reg)
            reg_set(cpu, UC_RISCV_REG_X0 + (int)reg, *value);
        else if (!write)
            *value = reg ? reg_get(cpu, UC_RISCV_REG_X0 + (int)reg) : 0;
        return 0;
    }
    if (reg == HUB_REG_PC) {
        if (write)
            ucx_set(&cpu->x, UCX_PC, *value);
        else
            *value = ucx_get(&cpu->x, UCX_PC);
        return 0;
    }
    if (reg >= HUB_REG_F0 && reg < HUB_REG_F0 + 32) {
        if (write)
            reg_set(cpu, UC_RISCV_REG_F0 + (int)(reg - HUB_REG_F0), *value);
        else
            *value = reg_get(cpu, UC_RISCV_REG_F0 + (int)(reg - HUB_REG_F0));
        return 0;
    }
    if (reg == HUB_REG_PRIV) {
        if (write && *value != PRV_U && *value != PRV_S && *value != PRV_M)
            return -EINVAL;
        if (write)
            set_priv(cpu, (unsigned)*value);
        else
            *value = ucx_get(&cpu->x, UCX_PRIV);
        return 0;
    }
    int uc = reg >= HUB_REG_CSR0 && reg < HUB_REG_PRIV ? csr_uc_reg(reg - HUB_REG_CSR0) : -1;
    if (uc < 0)
        return -ENOENT;
    /* CSRs are checked against the current privilege; mstatus may have FS off: look in the M view */
    unsigned priv = m_view_enter(cpu);
    if (write)
        reg_set(cpu, uc, *value);
    else
        *value = reg_get(cpu, uc);
    set_priv(cpu, priv);
    return 0;
}

int
hub_cpu_get_reg(hub_cpu *cpu, unsigned reg, uint64_t *value)
{
    return access_reg(cpu, reg, value, false);
}

int
hub_cpu_set_reg(hub_cpu *cpu, unsigned reg, uint64_t value)
{
    return access_reg(cpu, reg, &value, true);
}

int
hub_cpu_debug_translate(hub_cpu *cpu, uint64_t va, bool fetch, uint64_t *pa)
{
    hub_mmu_regs r = mmu_regs(cpu, (unsigned)ucx_get(&cpu->x, UCX_PRIV));
    if (!fetch && hub_mmu_translate(&r, va, HUB_MMU_LOAD, read_pte, cpu, pa) == 0)
        return 0;
    /* code a debugger disassembles may be execute-only */
    return hub_mmu_translate(&r, va, HUB_MMU_FETCH, read_pte, cpu, pa) == 0 ? 0 : -EFAULT;
}

/* One piece of a debugger access that stays in one page and one region. */
static int debug_piece(hub_cpu *cpu, uint64_t pa, uint8_t *buf, size_t len, unsigned flags, bool write)
{
    uint8_t *h = ram_host(cpu, pa);
    if (h && len <= cpu->maps[cpu->last_ram].end - pa) {
        if (write) {
            memcpy(h, buf, len);
            ucx_invalidate_code(&cpu->x, pa, len);     /* the debugger may have written code */
        } else {
            memcpy(buf, h, len);
        }
        return 0;
    }
    hwaddr xlat, l = len;
    int ret = -EFAULT;
    memory_rcu_read_lock();
    MemoryRegion *mr = address_space_translate(cpu->cfg.as, pa, &xlat, &l, write);
    if (mr && l == len && memory_region_is_ram(mr) && memory_region_get_ram_ptr(mr)) {
        uint8_t *p = (uint8_t *)memory_region_get_ram_ptr(mr) + xlat;
        if (write)
            memcpy(p, buf, len);
        else
            memcpy(buf, p, len);
        ret = 0;
    } else if (mr && !(flags & HUB_DBG_IO)) {
        ret = -EPERM;
    } else if (mr && l == len && (len == 1 || len == 2 || len == 4 || len == 8) && !(pa & (len - 1))) {
        uint64_t v = 0;
        memcpy(&v, buf, len);
        MemTxResult r = write ? memory_region_dispatch_write(mr, xlat, v, (unsigned)len, MEMTXATTRS_UNSPECIFIED)
                              : memory_region_dispatch_read(mr, xlat, &v, (unsigned)len, MEMTXATTRS_UNSPECIFIED);
        if (r == MEMTX_OK && !write)
            memcpy(buf, &v, len);
        ret = r == MEMTX_OK ? 0 : -EFAULT;
    } else if (mr) {
        ret = -EPERM;       /* a device register, but not as one access of its natural size */
    }
    memory_rcu_read_unlock();
    return ret;
}

static int debug_access(hub_cpu *cpu, uint64_t addr, uint8_t *buf, size_t len, unsigned flags, bool write)
{
    bool wrote = false;     /* ... to RAM the CPU does not map directly (its code is not tracked by page) */
    int r = 0;
    while (len && !r) {
        size_t n = PAGE_SIZE - (addr & (PAGE_SIZE - 1));
        n = n < len ? n : len;
        uint64_t pa = addr;
        if (!(flags & HUB_DBG_PHYS) && hub_cpu_debug_translate(cpu, addr, false, &pa) < 0)
            return -EFAULT;
        r = debug_piece(cpu, pa, buf, n, flags, write);
        wrote |= write && !r && !ram_host(cpu, pa);
        addr += n, buf += n, len -= n;
    }
    if (wrote)
        flush_code(cpu);
    return r;
}

int
hub_cpu_debug_read(hub_cpu *cpu, uint64_t addr, void *buf, size_t len, unsigned flags)
{
    return debug_access(cpu, addr, buf, len, flags, false);
}

int
hub_cpu_debug_write(hub_cpu *cpu, uint64_t addr, const void *buf, size_t len, unsigned flags)
{
    return debug_access(cpu, addr, (uint8_t *)buf, len, flags, true);
}

/* ------------------------------------------------------------------------------------------------------ */
/* Diagnostics                                                                                            */
/* ------------------------------------------------------------------------------------------------------ */

static void on_observed_block(uc_engine *uc, uint64_t address, uint32_t size, void *opaque)
{
    hub_cpu *cpu = opaque;
    cpu->obs->block(cpu->cfg.observer_opaque, address, size, (unsigned)ucx_get(&cpu->x, UCX_PRIV));
}

/* Unicorn entered an interrupt: the target's cause and epc registers say which. */
static void on_irq_taken(void *opaque)
{
    hub_cpu *cpu = opaque;
    if (!(cpu->obs_events & HUB_CPU_OBS_TRAP) || !cpu->obs->trap)
        return;
    unsigned target = (unsigned)ucx_get(&cpu->x, UCX_PRIV);
    unsigned priv = m_view_enter(cpu);
    uint64_t mstatus = ucx_get(&cpu->x, UCX_MSTATUS);
    bool to_s = target == PRV_S;
    hub_cpu_trap_info t = {
        .interrupt = true,
        .cause = reg_get(cpu, to_s ? UC_RISCV_REG_SCAUSE : UC_RISCV_REG_MCAUSE) & ~CAUSE_IRQ,
        .epc = reg_get(cpu, to_s ? UC_RISCV_REG_SEPC : UC_RISCV_REG_MEPC),
        .from_priv = to_s ? ((mstatus & MSTATUS_SPP) ? PRV_S : PRV_U)
                          : (unsigned)((mstatus & MSTATUS_MPP) >> MSTATUS_MPP_SHIFT),
        .to_priv = target,
        .vtime_ns = hub_cpu_vtime(cpu),
    };
    set_priv(cpu, priv);
    cpu->obs->trap(cpu->cfg.observer_opaque, &t);
}

static int observe(hub_cpu *cpu, const hub_cpu_observer *obs)
{
    cpu->obs = obs;
    cpu->obs_events = obs ? obs->events : 0;
    cpu->obs_mmio = (cpu->obs_events & HUB_CPU_OBS_MMIO) != 0;
    cpu->obs_errors = (cpu->obs_events & HUB_CPU_OBS_MMIO_ERROR) != 0;
    cpu->x.irq_taken = (cpu->obs_events & HUB_CPU_OBS_TRAP) ? on_irq_taken : NULL;
    if ((cpu->obs_events & HUB_CPU_OBS_BLOCK) && obs->block &&
        uc_hook_add(cpu->x.uc, &cpu->h_obs_block, UC_HOOK_BLOCK, on_observed_block, cpu, 1, 0) != UC_ERR_OK)
        return -ENOMEM;
    return 0;
}

bool
hub_cpu_first_fault(const hub_cpu *cpu, hub_cpu_trap_info *out)
{
    if (cpu->have_fault)
        *out = cpu->first_fault;
    return cpu->have_fault;
}

uint64_t
hub_cpu_vtime(hub_cpu *cpu)
{
    if (cpu->cfg.wallclock)
        return mono_ns() - cpu->wall_origin;
    uint64_t t = time_of(cpu, cpu->insns_since_base + cpu->executed);
    uint64_t now = vclock_now(cpu->cfg.clock);
    return t > now ? t : now;
}

/* ------------------------------------------------------------------------------------------------------ */
/* Running                                                                                                */
/* ------------------------------------------------------------------------------------------------------ */

static uint64_t slice_budget(hub_cpu *cpu)
{
    if (cpu->cfg.wallclock)
        return cpu->slice;
    uint64_t need = insns_until(cpu, vclock_next_deadline(cpu->cfg.clock));
    return need == 0 ? 1 : need < cpu->slice ? need : cpu->slice;
}

static void advance_time(hub_cpu *cpu, uint64_t insns)
{
    vclock *c = cpu->cfg.clock;
    if (cpu->cfg.wallclock) {
        vclock_advance(c, mono_ns() - cpu->wall_origin);
        return;
    }
    cpu->insns_since_base += insns;
    vclock_advance(c, time_of(cpu, cpu->insns_since_base));
}

void
hub_cpu_charge(hub_cpu *cpu, uint64_t ns)
{
    if (!cpu->cfg.wallclock) {
        cpu->charged_ns += ns;
        cpu->present_ok = false;
        cpu->due_ok = false;
    }
}

/* Time jumps (WFI): instruction counting restarts from the new time. */
static void rebase_time(hub_cpu *cpu)
{
    cpu->base_ns = vclock_now(cpu->cfg.clock);
    cpu->insns_since_base = 0;
    cpu->charged_ns = 0;
}

/* A host wait for @ns: whole milliseconds, rounded up (never 0 for a wait, so an idle hart never spins), at
 * most IDLE_POLL_MS so that the caller looks around now and then. */
static int wait_ms(uint64_t ns)
{
    return ns >= (uint64_t)IDLE_POLL_MS * 1000000 ? IDLE_POLL_MS : (int)((ns + 999999) / 1000000);
}

static void wait_outside(hub_cpu *cpu, int ms)
{
    if (cpu->cfg.idle) {
        cpu->cfg.idle(cpu->cfg.opaque, ms);
    } else if (ms > 0) {
        struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
    }
    if (cpu->cfg.service)
        cpu->cfg.service(cpu->cfg.opaque);
}

/* Did the instruction before @pc, which Unicorn stopped after, be a WFI? Read through the hart's translation. */
static bool after_wfi(hub_cpu *cpu, uint64_t pc)
{
    uint32_t insn = 0;
    hub_mmu_regs r = mmu_regs(cpu, (unsigned)ucx_get(&cpu->x, UCX_PRIV));
    return fetch_insn(cpu, &r, pc - 4, &insn) == 4 && insn == INSN_WFI;
}

/*
 * The hart executed WFI. Resume as soon as an interrupt is pending (enabled in mie, whatever the global
 * enables); until then let time run to the next timer, or wait for the outside world:
 *  - wallclock: virtual time is the host's; sleep until the deadline or an outside event;
 *  - virtual, idle_sleep: virtual time follows the host's clock while the hart waits (QEMU's icount
 *    sleep=on): sleep until the deadline (then time is the deadline) or an outside event (then time moved on
 *    by the host time slept);
 *  - virtual, jump: time jumps to the next deadline at once; with none, one idle wait, then the guest
 *    resumes (a spurious wake-up is allowed by the spec: its WFI loop comes straight back here).
 */
static void wait_for_interrupt(hub_cpu *cpu)
{
    vclock *c = cpu->cfg.clock;
    bool counted = false;
    /* Neither time nor the hart goes on before the lines reflect what the guest wrote */
    hub_cpu_irq_sync(cpu);
    for (;;) {
        if (cpu->stop || cpu->dbg_pending || irq_pending(cpu))
            return;
        if (!counted) {
            cpu->stats.wfi_waits++;
            counted = true;
        }
        uint64_t dl = vclock_next_deadline(c);
        if (cpu->cfg.wallclock) {
            uint64_t now = mono_ns() - cpu->wall_origin;
            if (dl != VCLOCK_NEVER && dl <= now) {
                vclock_advance(c, now);
                continue;
            }
            wait_outside(cpu, wait_ms(dl == VCLOCK_NEVER ? VCLOCK_NEVER : dl - now));
            vclock_advance(c, mono_ns() - cpu->wall_origin);
            if (dl == VCLOCK_NEVER)
                return;
        } else if (cpu->cfg.idle_sleep) {
            uint64_t now = vclock_now(c), t0 = mono_ns();
            if (dl <= now) {
                vclock_advance(c, now);     /* a timer armed in the past fires now */
                continue;
            }
            uint64_t want = dl == VCLOCK_NEVER ? VCLOCK_NEVER : dl - now;
            wait_outside(cpu, wait_ms(want));
            uint64_t slept = mono_ns() - t0;
            cpu->stats.idle_ns += slept;
            vclock_advance(c, slept >= want ? dl : now + slept);
            rebase_time(cpu);
        } else {
            if (dl != VCLOCK_NEVER) {
                vclock_advance(c, dl);
                rebase_time(cpu);
                continue;
            }
            if (cpu->cfg.idle)
                wait_outside(cpu, IDLE_POLL_MS);
            return;
        }
    }
}

/* uc_emu_start stopped on a fetch fault (pc on the block being translated): an access fault. */
static void memory_fault(hub_cpu *cpu, uc_err err)
{
    uint64_t pc = ucx_get(&cpu->x, UCX_PC);
    uint64_t addr = cpu->fault_seen ? cpu->fault_addr : pc;
    uint64_t cause;
    switch (err) {
    case UC_ERR_FETCH_UNMAPPED:
    case UC_ERR_FETCH_PROT:
        cause = EXC_INSN_ACCESS;
        break;
    case UC_ERR_WRITE_UNMAPPED:
    case UC_ERR_WRITE_PROT:
        cause = EXC_STORE_ACCESS;
        break;
    default:
        cause = EXC_LOAD_ACCESS;
        break;
    }
    cpu->fault_seen = false;
    unsigned priv = m_view_enter(cpu);
    uint64_t deleg = reg_get(cpu, UC_RISCV_REG_MEDELEG);
    bool to_s = priv <= PRV_S && ((deleg >> cause) & 1);
    uint64_t tvec = reg_get(cpu, to_s ? UC_RISCV_REG_STVEC : UC_RISCV_REG_MTVEC) & ~3ull;
    if (cause == EXC_INSN_ACCESS && tvec == addr) {
        set_priv(cpu, priv);
        set_fatal(cpu, "instruction fetch from 0x%" PRIx64 " failed and the trap vector is that same address",
                  addr);
        return;
    }
    take_trap(cpu, priv, cause, pc, addr);
}

/* Unicorn stops uc_emu_start on ebreak (and c.ebreak) with UC_ERR_INSN_INVALID, pc at the instruction. */
static void breakpoint(hub_cpu *cpu)
{
    uint64_t pc = ucx_get(&cpu->x, UCX_PC);
    unsigned priv = m_view_enter(cpu);
    take_trap(cpu, priv, EXC_BREAKPOINT, pc, pc);
}

int
hub_cpu_run(hub_cpu *cpu, Error **errp)
{
    if (cpu->stop) {
        /* stopped before it ran (e.g. from a signal while devices started): consume the request */
        cpu->stop = false;
        return cpu->stop_status;
    }
    cpu->fatal = false;
    if (cpu->cfg.wallclock)
        cpu->wall_origin = mono_ns() - vclock_now(cpu->cfg.clock);
    rebase_time(cpu);

    while (!cpu->stop) {
        if (unlikely(cpu->dbg_pending)) {
            debug_stop(cpu);
            if (cpu->stop || cpu->fatal)
                break;
        }
        uint64_t pc0 = ucx_get(&cpu->x, UCX_PC);
        cpu->budget = slice_budget(cpu);
        cpu->executed = 0;
        cpu->budget_stop = cpu->irq_stop = false;
        cpu->fault_seen = false;
        cpu->retry = false;
        cpu->deferred = false;
        cpu->blk = (icount_entry){ 0 };
        cpu->due_ok = false;
        set_where(cpu, AT_BLOCK);
        /* Unicorn's loop enters a pending, enabled interrupt before the first block (ucx.h) */
        cpu->running = true;
        cpu->cfg.clock->lagging = true;
        uc_err err = uc_emu_start(cpu->x.uc, ucx_get(&cpu->x, UCX_PC), 0, 0, 0);
        cpu->cfg.clock->lagging = false;
        cpu->running = false;
        cpu->stats.slices++;
        cpu->stats.instructions += cpu->executed;
        if (cpu->fatal)
            break;
        if (err != UC_ERR_OK) {
            switch (err) {
            case UC_ERR_READ_UNMAPPED: case UC_ERR_WRITE_UNMAPPED: case UC_ERR_FETCH_UNMAPPED:
            case UC_ERR_READ_PROT: case UC_ERR_WRITE_PROT: case UC_ERR_FETCH_PROT:
                if (!cpu->retry)
                    memory_fault(cpu, err);
                break;
            case UC_ERR_INSN_INVALID:
                breakpoint(cpu);
                break;
            default:
                set_fatal(cpu, "CPU stopped at pc 0x%" PRIx64 ": Unicorn error %" PRIu64,
                          ucx_get(&cpu->x, UCX_PC), (uint64_t)err);
                break;
            }
            if (cpu->fatal)
                break;
        }
        if (unlikely(cpu->wp_hit))
            undo_watched(cpu);
        /* a step ends when its instruction ran, however the slice ended (WFI, a trap the hub entered) */
        if (unlikely(cpu->stepping) && !cpu->dbg_pending &&
            (cpu->step_started || ucx_get(&cpu->x, UCX_PC) != pc0))
            debug_event(cpu, HUB_CPU_STOP_STEP, ucx_get(&cpu->x, UCX_PC));
        if (cpu->cfg.service)
            cpu->cfg.service(cpu->cfg.opaque);
        advance_time(cpu, cpu->executed);
        /* nothing else ends a slice early without an error: the hart is in WFI */
        if (err == UC_ERR_OK && !cpu->budget_stop && !cpu->irq_stop && !cpu->deferred && !cpu->stop &&
            !cpu->dbg_pending &&
            after_wfi(cpu, ucx_get(&cpu->x, UCX_PC)))
            wait_for_interrupt(cpu);
    }
    cpu->stop = false;
    if (cpu->fatal) {
        error_setg(errp, "%s", cpu->fatal_msg);
        return -EFAULT;
    }
    return cpu->stop_status;
}
