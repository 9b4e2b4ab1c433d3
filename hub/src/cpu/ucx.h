/*
 * What the hart needs from inside Unicorn 2.0.1 (Debian's libunicorn2) that its API does not give, done from
 * outside the library. README.md explains each piece and why; in short:
 *
 *  - The live CPU state (CPURISCVState) is read and written in place: privilege, mip/mie/mideleg/mstatus/satp,
 *    pc. Its address is taken from the RISCVCPU pointer Unicorn passes to riscv_cpu_update_mip (called through
 *    the PLT, so the hub's definition sees it first); field offsets are found by diffing uc_context images.
 *  - The precise pc of an MMIO access: Unicorn keeps the host return address of the access in CPUState
 *    (mem_io_pc); cpu_restore_state maps it to the guest pc, as QEMU does for faults. Leaving the instruction
 *    (a precise access fault, an interrupt taken right after a store) is cpu_loop_exit, as in QEMU.
 *  - Interrupts are taken by Unicorn's own loop (after every CSR write, mret/sret, at every slice start) once
 *    the hub's lines are in mip and interrupt_request is raised (riscv_cpu_update_mip does both). The choice
 *    among several pending interrupts follows the privileged spec's priority: riscv_cpu_exec_interrupt (read
 *    from the GOT into the CPU class) is wrapped.
 *  - Stores to RAM: Unicorn 2.0.1 stubs QEMU's dirty bitmap, so every TLB entry of writable RAM keeps
 *    TLB_NOTDIRTY and every store walks the code-invalidation path. The hub keeps its own set of RAM pages
 *    that hold translated code (tlb_protect_code, called for the first block on a page), clears TLB_NOTDIRTY
 *    on TLB entries of the other pages when they are filled (tlb_set_page, tlb_set_dirty), sets it again
 *    on every TLB entry of a page when code appears there (tlb_reset_dirty), and skips page_collection_lock /
 *    tb_invalidate_phys_page_fast for stores to pages without code.
 *
 * Everything is per engine except the layout, which is found once per process.
 */
#ifndef PLEXUS_HUB_CPU_UCX_H
#define PLEXUS_HUB_CPU_UCX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <plexus/memory.h>
#include <unicorn/unicorn.h>

/* Fields of CPURISCVState the hart uses. */
typedef enum ucx_field {
    UCX_PC, UCX_PRIV, UCX_MSTATUS, UCX_MIP, UCX_MIE, UCX_MIDELEG, UCX_SATP, UCX_BADADDR, UCX_NFIELDS
} ucx_field;

typedef struct ucx_code_pages {
    uint64_t *bits;         /* one bit per 4 KiB of Unicorn's ram_addr space: the page holds translated code */
    size_t words;
} ucx_code_pages;

typedef struct ucx_stats {
    uint64_t store_checks;      /* stores to RAM that took the slow path and were checked for code */
    uint64_t store_code;        /* ... that hit a page holding code: the real invalidation ran */
    uint64_t code_pages;        /* pages marked as holding code */
    uint64_t fast_tlb;          /* TLB fills of RAM without code: stores to them take QEMU's fast path */
    uint64_t outside_code;      /* pages written from outside the hart (DMA, debugger) that held code: dropped */
} ucx_stats;

/*
 * Deliverable-interrupt choice: return the interrupt number (mip bit) the hart takes now, or -1. Called by
 * Unicorn's execution loop whenever it looks for interrupts.
 */
typedef int ucx_pick_irq(void *opaque);

typedef struct ucx {
    uc_engine *uc;
    uint8_t *cs;            /* CPUState (== RISCVCPU) */
    uint8_t *env;           /* CPURISCVState */
    ucx_code_pages code;
    ucx_stats stats;
    ucx_pick_irq *pick_irq;
    void *pick_opaque;
    void (*irq_taken)(void *opaque);                /* Unicorn entered an interrupt (NULL: nobody asks) */
    void *(*ram_host)(void *opaque, uint64_t pa);   /* host address of guest-physical RAM, or NULL */
    void *ram_opaque;
    void (*csr_read)(void *opaque);     /* the hart is about to read mip or sip (a CSR instruction), or NULL */
    void *csr_opaque;
    uint64_t interrupts;    /* interrupts Unicorn entered */
    bool registered;
} ucx;

/*
 * Open a RISC-V 64 engine with the U54 model and attach @x to it (find the layout on the first call in the
 * process, register the engine with the wrappers). @x must stay at its address until ucx_close().
 */
int ucx_open(ucx *x, Error **errp);
void ucx_close(ucx *x);

extern size_t ucx_off[UCX_NFIELDS];

static inline uint64_t ucx_get(const ucx *x, ucx_field f)
{
    uint64_t v;
    __builtin_memcpy(&v, x->env + ucx_off[f], sizeof(v));
    return v;
}

static inline void ucx_set(ucx *x, ucx_field f, uint64_t v)
{
    __builtin_memcpy(x->env + ucx_off[f], &v, sizeof(v));
}

/*
 * Guest RAM [@pa, @pa + @len) was written from outside the hart (a device's DMA, the debugger): drop the translated
 * code of the pages in it that hold some (Unicorn's own invalidation, on its RAM addresses, page by page), so the
 * hart translates what is there now. Pages without code cost a bit test each. False if no part of the range is
 * RAM (then nothing was done). Call on the CPU's thread, between slices or from inside an access (the block
 * running then keeps running: its code is freed only when the cache is flushed).
 */
bool ucx_invalidate_code(ucx *x, uint64_t pa, uint64_t len);

/* Guest fences translated with a host barrier so far, in this process (every engine). */
uint64_t ucx_fences_translated(void);

/* mip changed in place: let Unicorn's loop see it (interrupt_request follows mip != 0). */
void ucx_mip_changed(ucx *x);

/*
 * Inside an MMIO callback: move env's pc to the accessing instruction. False if Unicorn cannot tell.
 * @leaving: the caller will ucx_leave() next.
 */
bool ucx_sync_pc(ucx *x, bool leaving);

/* Inside an MMIO callback: the host return address of the access, which identifies its site in translated code. */
uintptr_t ucx_access_ra(const ucx *x);

/* Inside an MMIO callback: abandon the rest of the current block and resume at env's pc (no return). */
__attribute__((noreturn)) void ucx_leave(ucx *x);

#endif
