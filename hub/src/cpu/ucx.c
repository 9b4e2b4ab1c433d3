/*
 * Unicorn 2.0.1 internals used from outside the library: see ucx.h and README.md.
 *
 * The wrappers below replace functions of libunicorn that the library calls through its PLT (or stores from
 * its GOT): the executable's definitions come first in symbol resolution, and each one calls the library's
 * own function, found with dlsym(RTLD_NEXT), for engines the hub does not own or whenever it cannot be sure.
 */
#define _GNU_SOURCE
#include "ucx.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT __attribute__((visibility("default")))
#define PAGE_SHIFT 12
#define PAGE_SIZE (1ull << PAGE_SHIFT)
#define NO_RAM UINT64_MAX
#define MMU_IDX_U 0
#define MMU_IDX_S 1
#define MSTATUS_MPRV (1ull << 17)
#define CPU_INTERRUPT_HARD 0x2          /* QEMU's include/hw/core/cpu.h */
#define CSR_SIP 0x144                   /* the privileged spec's CSR numbers */
#define CSR_MIP 0x344
#define ENV_SEARCH_MAX (1u << 20)       /* how far into RISCVCPU the CPU state may start */

/* The library's own functions (not in its public API; exported from libunicorn.so.2). */
bool cpu_restore_state_riscv64(void *cpu, uintptr_t host_pc, bool will_exit);
__attribute__((noreturn)) void cpu_loop_exit_noexc_riscv64(void *cpu);
void tlb_set_dirty_riscv64(void *cpu, uint64_t vaddr);
void tlb_reset_dirty_riscv64(void *cpu, uint64_t host_start, uint64_t length);
void *qemu_map_ram_ptr_riscv64(void *uc, void *ram_block, uint64_t ram_addr);
void tb_invalidate_phys_range_riscv64(void *uc, uint64_t start, uint64_t end);
uint64_t qemu_ram_addr_from_host_riscv64(void *uc, void *host);

/* The functions wrapped here, as the library defines them. */
typedef uint32_t update_mip_fn(void *cpu, uint32_t mask, uint32_t value);
typedef bool exec_interrupt_fn(void *cs, int interrupt_request);
typedef void protect_code_fn(void *uc, uint64_t ram_addr);
typedef void *page_lock_fn(void *uc, uint64_t start, uint64_t end);
typedef void page_unlock_fn(void *set);
typedef void invalidate_fast_fn(void *uc, void *pages, uint64_t start, int len, uintptr_t retaddr);
typedef void set_page_fn(void *cpu, uint64_t vaddr, uint64_t paddr, int prot, int mmu_idx, uint64_t size);
typedef int csrrw_fn(void *env, int csrno, uint64_t *ret, uint64_t new_value, uint64_t write_mask);
typedef void gen_mb_fn(void *tcg_ctx, int mb_type);

/* The wrappers: these names are what the library's own calls reach. */
EXPORT update_mip_fn riscv_cpu_update_mip_riscv64;
EXPORT exec_interrupt_fn riscv_cpu_exec_interrupt_riscv64;
EXPORT protect_code_fn tlb_protect_code_riscv64;
EXPORT page_lock_fn page_collection_lock_riscv64;
EXPORT page_unlock_fn page_collection_unlock_riscv64;
EXPORT invalidate_fast_fn tb_invalidate_phys_page_fast_riscv64;
EXPORT set_page_fn tlb_set_page_riscv64;
EXPORT csrrw_fn riscv_csrrw_riscv64;
EXPORT gen_mb_fn tcg_gen_mb_riscv64;

static struct {
    update_mip_fn *update_mip;
    exec_interrupt_fn *exec_interrupt;
    protect_code_fn *protect_code;
    page_lock_fn *page_lock;
    page_unlock_fn *page_unlock;
    invalidate_fast_fn *invalidate_fast;
    set_page_fn *set_page;
    csrrw_fn *csrrw;
    gen_mb_fn *gen_mb;
} real;

static pthread_once_t real_once = PTHREAD_ONCE_INIT;
static void find_real(void);

/*
 * Guest fences. Unicorn translates as for one thread (its TCGContext never has CF_PARALLEL), and QEMU's
 * tcg_gen_mb emits a host barrier only with CF_PARALLEL: a RISC-V fence becomes nothing, and the host may let a
 * guest load pass the guest's earlier store. Another process sharing guest RAM (a virtio device's rings) then
 * sees the driver's store to the available index after the driver read the device's avail_event: each thinks
 * the other will act (a lost notification, or a lost interrupt on the used side). For a full fence (what
 * `fence` translates to) the wrapper sets the flag around the library's own function, which then emits the
 * barrier (x86: a locked or). Where the flag is, is read from the first instruction of that function
 * (testb $mask, off(%rdi)); if the code is not that, the CPU does not start (layout()).
 */
#define TCG_BAR_SC 0x30
static struct { unsigned off; uint8_t mask; bool ok; } parallel_flag;
static atomic_uint_fast64_t fences_translated;

static void find_parallel_flag(void)
{
    const uint8_t *p = (const uint8_t *)(uintptr_t)real.gen_mb;
    if (p && p[0] == 0xf6 && p[1] == 0x47 && p[3] && !(p[3] & (p[3] - 1))) {
        parallel_flag.off = p[2];
        parallel_flag.mask = p[3];
        parallel_flag.ok = true;
    }
}

EXPORT void
tcg_gen_mb_riscv64(void *tcg_ctx, int mb_type)
{
    pthread_once(&real_once, find_real);
    if (!parallel_flag.ok || (mb_type & TCG_BAR_SC) != TCG_BAR_SC) {
        real.gen_mb(tcg_ctx, mb_type);
        return;
    }
    uint8_t *flags = (uint8_t *)tcg_ctx + parallel_flag.off;
    uint8_t old = *flags;
    *flags = (uint8_t)(old | parallel_flag.mask);
    real.gen_mb(tcg_ctx, mb_type);
    *flags = old;
    atomic_fetch_add_explicit(&fences_translated, 1, memory_order_relaxed);
}

uint64_t ucx_fences_translated(void)
{
    return atomic_load_explicit(&fences_translated, memory_order_relaxed);
}

static void find_real(void)
{
    real.update_mip = (update_mip_fn *)dlsym(RTLD_NEXT, "riscv_cpu_update_mip_riscv64");
    real.exec_interrupt = (exec_interrupt_fn *)dlsym(RTLD_NEXT, "riscv_cpu_exec_interrupt_riscv64");
    real.protect_code = (protect_code_fn *)dlsym(RTLD_NEXT, "tlb_protect_code_riscv64");
    real.page_lock = (page_lock_fn *)dlsym(RTLD_NEXT, "page_collection_lock_riscv64");
    real.page_unlock = (page_unlock_fn *)dlsym(RTLD_NEXT, "page_collection_unlock_riscv64");
    real.invalidate_fast = (invalidate_fast_fn *)dlsym(RTLD_NEXT, "tb_invalidate_phys_page_fast_riscv64");
    real.set_page = (set_page_fn *)dlsym(RTLD_NEXT, "tlb_set_page_riscv64");
    real.csrrw = (csrrw_fn *)dlsym(RTLD_NEXT, "riscv_csrrw_riscv64");
    real.gen_mb = (gen_mb_fn *)dlsym(RTLD_NEXT, "tcg_gen_mb_riscv64");
    find_parallel_flag();
}

static bool have_real(void)
{
    pthread_once(&real_once, find_real);
    return real.update_mip && real.exec_interrupt && real.protect_code && real.page_lock && real.page_unlock &&
           real.invalidate_fast && real.set_page && real.csrrw;
}

/* ------------------------------------------------------------------------------------------------------ */
/* Engines the hub owns                                                                                   */
/* ------------------------------------------------------------------------------------------------------ */

#define MAX_ENGINES 64
static _Atomic(ucx *) engines[MAX_ENGINES];
static atomic_uint nslots;              /* slots ever used */
static pthread_mutex_t engines_lock = PTHREAD_MUTEX_INITIALIZER;
static _Thread_local ucx *capturing;    /* ucx_open is looking for this engine's CPU */

static ucx *by_uc(const void *uc)
{
    unsigned n = atomic_load_explicit(&nslots, memory_order_acquire);
    for (unsigned i = 0; i < n; i++) {
        ucx *x = atomic_load_explicit(&engines[i], memory_order_acquire);
        if (x && (const void *)x->uc == uc)
            return x;
    }
    return NULL;
}

static ucx *by_cs(const void *cs)
{
    unsigned n = atomic_load_explicit(&nslots, memory_order_acquire);
    for (unsigned i = 0; i < n; i++) {
        ucx *x = atomic_load_explicit(&engines[i], memory_order_acquire);
        if (x && x->cs == cs)
            return x;
    }
    return NULL;
}

static bool register_engine(ucx *x)
{
    bool ok = false;
    pthread_mutex_lock(&engines_lock);
    for (unsigned i = 0; i < MAX_ENGINES && !ok; i++) {
        if (!atomic_load_explicit(&engines[i], memory_order_relaxed)) {
            atomic_store_explicit(&engines[i], x, memory_order_release);
            if (i >= atomic_load_explicit(&nslots, memory_order_relaxed))
                atomic_store_explicit(&nslots, i + 1, memory_order_release);
            ok = true;
        }
    }
    pthread_mutex_unlock(&engines_lock);
    return ok;
}

static void unregister_engine(ucx *x)
{
    pthread_mutex_lock(&engines_lock);
    for (unsigned i = 0; i < MAX_ENGINES; i++)
        if (atomic_load_explicit(&engines[i], memory_order_relaxed) == x)
            atomic_store_explicit(&engines[i], NULL, memory_order_release);
    pthread_mutex_unlock(&engines_lock);
}

/* ------------------------------------------------------------------------------------------------------ */
/* Pages holding translated code                                                                          */
/* ------------------------------------------------------------------------------------------------------ */

static bool code_page(const ucx *x, uint64_t ram_addr)
{
    uint64_t page = ram_addr >> PAGE_SHIFT;
    return page / 64 < x->code.words && ((x->code.bits[page / 64] >> (page % 64)) & 1);
}

/* Mark; false if the map cannot grow (the caller then treats every page as code). */
static bool mark_code_page(ucx *x, uint64_t ram_addr)
{
    uint64_t page = ram_addr >> PAGE_SHIFT;
    if (page / 64 >= x->code.words) {
        size_t words = x->code.words ? x->code.words : 1024;
        while (words <= page / 64)
            words *= 2;
        uint64_t *bits = realloc(x->code.bits, words * sizeof(*bits));
        if (!bits)
            return false;
        memset(bits + x->code.words, 0, (words - x->code.words) * sizeof(*bits));
        x->code.bits = bits;
        x->code.words = words;
    }
    if (!code_page(x, ram_addr))
        x->stats.code_pages++;
    x->code.bits[page / 64] |= 1ull << (page % 64);
    return true;
}

static bool any_code_page(const ucx *x, uint64_t start, uint64_t end)
{
    for (uint64_t p = start >> PAGE_SHIFT; p <= end >> PAGE_SHIFT; p++)
        if (code_page(x, p << PAGE_SHIFT))
            return true;
    return false;
}

/* Stands for "no page of this range holds code": page_collection_lock's answer for such stores. */
static char no_code;

EXPORT void
tlb_protect_code_riscv64(void *uc, uint64_t ram_addr)
{
    ucx *x = by_uc(uc);
    real.protect_code(uc, ram_addr);
    if (!x)
        return;
    if (x->registered && !mark_code_page(x, ram_addr))
        x->registered = false;      /* cannot track any more: every store takes the library's own path */
    /* stores to this page must take the slow path again, through every TLB entry that maps it */
    uint8_t *host = qemu_map_ram_ptr_riscv64(uc, NULL, ram_addr & ~(PAGE_SIZE - 1));
    tlb_reset_dirty_riscv64(x->cs, (uint64_t)(uintptr_t)host, PAGE_SIZE);
}

EXPORT void *
page_collection_lock_riscv64(void *uc, uint64_t start, uint64_t end)
{
    ucx *x = by_uc(uc);
    if (x && x->registered) {
        x->stats.store_checks++;
        if (!any_code_page(x, start, end))
            return &no_code;
        x->stats.store_code++;
    }
    return real.page_lock(uc, start, end);
}

EXPORT void
page_collection_unlock_riscv64(void *set)
{
    if (set != &no_code)
        real.page_unlock(set);
}

EXPORT void
tb_invalidate_phys_page_fast_riscv64(void *uc, void *pages, uint64_t start, int len, uintptr_t retaddr)
{
    if (pages != &no_code)
        real.invalidate_fast(uc, pages, start, len, retaddr);
}

/* Host address of guest-physical @pa if it is RAM, through the map the TLB was just filled from. */
static uint64_t ram_addr_of(ucx *x, uint64_t pa)
{
    if (!x->ram_host)
        return NO_RAM;
    void *host = x->ram_host(x->ram_opaque, pa);
    return host ? qemu_ram_addr_from_host_riscv64(x->uc, host) : NO_RAM;
}

bool ucx_invalidate_code(ucx *x, uint64_t pa, uint64_t len)
{
    bool ram = false;
    if (!len || pa + len < pa)
        return false;
    uint64_t end = pa + len;
    for (uint64_t page = pa & ~(PAGE_SIZE - 1); page < end; page += PAGE_SIZE) {
        uint64_t ra = ram_addr_of(x, page);
        if (ra == NO_RAM)
            continue;
        ram = true;
        if (!x->registered || code_page(x, ra)) {
            uint64_t from = page < pa ? pa - page : 0, to = end - page < PAGE_SIZE ? end - page : PAGE_SIZE;
            tb_invalidate_phys_range_riscv64(x->uc, ra + from, ra + to);
            x->stats.outside_code++;
        }
        if (page + PAGE_SIZE < page)
            break;
    }
    return ram;
}

/*
 * A TLB entry was filled. Unicorn marks every writable RAM entry "not dirty" (its dirty bitmap is a stub), so
 * that stores to it take the slow path; drop the mark when the page holds no code. tlb_set_dirty acts on the
 * entries of every privilege for this virtual page: only S and U entries are cleared (they share the
 * translation), and only when the identity view (M-mode's entry for the same number) holds no code either.
 */
EXPORT void
tlb_set_page_riscv64(void *cpu, uint64_t vaddr, uint64_t paddr, int prot, int mmu_idx, uint64_t size)
{
    real.set_page(cpu, vaddr, paddr, prot, mmu_idx, size);
    ucx *x = by_cs(cpu);
    if (!x || !x->registered || (mmu_idx != MMU_IDX_S && mmu_idx != MMU_IDX_U) ||
        (ucx_get(x, UCX_MSTATUS) & MSTATUS_MPRV))
        return;
    uint64_t ra = ram_addr_of(x, paddr);
    if (ra == NO_RAM || code_page(x, ra))
        return;
    uint64_t ra_identity = ram_addr_of(x, vaddr);
    if (ra_identity != NO_RAM && code_page(x, ra_identity))
        return;
    tlb_set_dirty_riscv64(cpu, vaddr);
    x->stats.fast_tlb++;
}

/* ------------------------------------------------------------------------------------------------------ */
/* Interrupts                                                                                             */
/* ------------------------------------------------------------------------------------------------------ */

EXPORT uint32_t
riscv_cpu_update_mip_riscv64(void *cpu, uint32_t mask, uint32_t value)
{
    if (capturing && !capturing->cs)
        capturing->cs = cpu;
    return real.update_mip(cpu, mask, value);
}

/*
 * Unicorn's loop asks whether to take an interrupt now. Its own choice is the lowest pending bit; the spec's
 * is MEI, MSI, MTI, SEI, SSI, STI. Let Unicorn enter the trap (it does so as the spec says) but let it see
 * only the interrupt the hart's owner picked.
 */
EXPORT bool
riscv_cpu_exec_interrupt_riscv64(void *cs, int interrupt_request)
{
    ucx *x = by_cs(cs);
    if (!x || !x->pick_irq || !(interrupt_request & CPU_INTERRUPT_HARD))
        return real.exec_interrupt(cs, interrupt_request);
    int irq = x->pick_irq(x->pick_opaque);
    if (irq < 0)
        return false;
    uint64_t mie = ucx_get(x, UCX_MIE);
    ucx_set(x, UCX_MIE, 1ull << irq);
    bool taken = real.exec_interrupt(cs, interrupt_request);
    ucx_set(x, UCX_MIE, mie);
    if (taken) {
        x->interrupts++;
        if (x->irq_taken)
            x->irq_taken(x->pick_opaque);
    }
    return taken;
}

void ucx_mip_changed(ucx *x)
{
    real.update_mip(x->cs, 0, 0);
}

static ucx *by_env(const void *env)
{
    unsigned n = atomic_load_explicit(&nslots, memory_order_acquire);
    for (unsigned i = 0; i < n; i++) {
        ucx *x = atomic_load_explicit(&engines[i], memory_order_acquire);
        if (x && x->env == env)
            return x;
    }
    return NULL;
}

/*
 * Every CSR access of the hart (helper_csrrw/csrrs/csrrc) and of uc_reg_read/write goes through here. Before a
 * read of mip or sip the hart's owner may bring the interrupt lines up to date (it writes mip in place).
 */
EXPORT int
riscv_csrrw_riscv64(void *env, int csrno, uint64_t *ret, uint64_t new_value, uint64_t write_mask)
{
    if (csrno == CSR_MIP || csrno == CSR_SIP) {
        ucx *x = by_env(env);
        if (x && x->csr_read)
            x->csr_read(x->csr_opaque);
    }
    return real.csrrw(env, csrno, ret, new_value, write_mask);
}

/* ------------------------------------------------------------------------------------------------------ */
/* Precise state inside MMIO callbacks                                                                    */
/* ------------------------------------------------------------------------------------------------------ */

static size_t off_env, off_mem_io_pc;
size_t ucx_off[UCX_NFIELDS];

uintptr_t ucx_access_ra(const ucx *x)
{
    uintptr_t host_pc;
    memcpy(&host_pc, x->cs + off_mem_io_pc, sizeof(host_pc));
    return host_pc;
}

bool ucx_sync_pc(ucx *x, bool leaving)
{
    return cpu_restore_state_riscv64(x->cs, ucx_access_ra(x), leaving);
}

void ucx_leave(ucx *x)
{
    cpu_loop_exit_noexc_riscv64(x->cs);
}

/* ------------------------------------------------------------------------------------------------------ */
/* Finding the layout (once per process, on a scratch engine)                                            */
/* ------------------------------------------------------------------------------------------------------ */

typedef struct snap {
    uint8_t *bytes;
    size_t n;
} snap;

static int take_snap(uc_engine *uc, uc_context *ctx, size_t hdr, snap *s)
{
    if (uc_context_save(uc, ctx) != UC_ERR_OK)
        return -1;
    memcpy(s->bytes, (uint8_t *)ctx + hdr, s->n);
    return 0;
}

/* The one 8-byte word at which snapshot i holds vals[i] for every i; -1 unless exactly one. */
static long find_word(const snap *s, const uint64_t *vals, int n)
{
    long found = -1;
    for (size_t w = 0; w + 8 <= s[0].n; w += 8) {
        int i;
        for (i = 0; i < n; i++) {
            uint64_t v;
            memcpy(&v, s[i].bytes + w, 8);
            if (v != vals[i])
                break;
        }
        if (i == n) {
            if (found >= 0)
                return -1;
            found = (long)w;
        }
    }
    return found;
}

typedef struct probe {
    ucx x;
    uint64_t want_pc[2];
    unsigned calls;
    size_t hits[2][256];
    unsigned nhits[2];
} probe;

/* MMIO read on the scratch engine: which CPUState word restores the pc of the accessing instruction? */
static uint64_t probe_read(uc_engine *uc, uint64_t offset, unsigned size, void *opaque)
{
    probe *p = opaque;
    unsigned c = p->calls++;
    if (c >= 2)
        return 0;
    for (size_t k = 0; k + 8 <= off_env && p->nhits[c] < 256; k += 8) {
        uintptr_t w;
        memcpy(&w, p->x.cs + k, sizeof(w));
        ucx_set(&p->x, UCX_PC, 0);
        if (w && cpu_restore_state_riscv64(p->x.cs, w, false) && ucx_get(&p->x, UCX_PC) == p->want_pc[c])
            p->hits[c][p->nhits[c]++] = k;
    }
    return 0;
}

#define SCRATCH_CODE 0x1000
#define SCRATCH_DEV 0x10000
static const uint32_t scratch_code[] = {
    0x30200073,     /* 0x1000: mret                   M -> S */
    0x10200073,     /* 0x1004: sret                   S -> U */
    0x0007a02f,     /* 0x1008: amoadd.w zero, zero, (a5): misaligned, sets the bad address */
    0x00000013,     /* 0x100c: nop */
    0x00160613,     /* 0x1010: addi a2, a2, 1 */
    0x00160613,     /* 0x1014: addi a2, a2, 1 */
    0x0005a503,     /* 0x1018: lw a0, 0(a1)           MMIO */
    0x00160613,     /* 0x101c: addi a2, a2, 1 */
    0x0045a503,     /* 0x1020: lw a0, 4(a1)           MMIO */
    0x00160613,     /* 0x1024: addi a2, a2, 1 */
};

static int layout_error(Error **errp, const char *what)
{
    error_setg(errp, "cpu: this Unicorn build is not the one the hub knows (Debian's 2.0.1): %s", what);
    return -EIO;
}

static int find_layout(probe *p, uc_context *ctx, snap *s, size_t hdr, Error **errp)
{
    static const struct { ucx_field f; int reg; uint64_t v[3]; } regs[] = {
        { UCX_PC, UC_RISCV_REG_PC, { 0x1000, 0x2468, 0x13570 } },
        { UCX_MSTATUS, UC_RISCV_REG_MSTATUS, { 0x8, 0x1888, 0x80 } },
        { UCX_MIE, UC_RISCV_REG_MIE, { 0x888, 0x222, 0x80 } },
        { UCX_MIDELEG, UC_RISCV_REG_MIDELEG, { 0x222, 0x20, 0x200 } },
        { UCX_SATP, UC_RISCV_REG_SATP, { 8ull << 60 | 0x80000, 8ull << 60 | 0x12345, 0 } },
        { UCX_MIP, UC_RISCV_REG_MIP, { 0x222, 0x2, 0x20 } },       /* the bits M-mode software may write */
    };
    uc_engine *uc = p->x.uc;
    uint64_t v;

    /* 1. registers: write distinct values, read back what the hart kept, find the one word holding them */
    capturing = &p->x;      /* writing mip hands the CPU object to riscv_cpu_update_mip */
    for (size_t r = 0; r < sizeof(regs) / sizeof(regs[0]); r++) {
        uint64_t got[3];
        for (int i = 0; i < 3; i++) {
            uc_reg_write(uc, regs[r].reg, &regs[r].v[i]);
            uc_reg_read(uc, regs[r].reg, &got[i]);
            if (take_snap(uc, ctx, hdr, &s[i]) < 0)
                return layout_error(errp, "uc_context_save failed");
        }
        long w = find_word(s, got, 3);
        if (w < 0 || got[0] == got[1])
            return layout_error(errp, "a CSR is not where expected");
        ucx_off[regs[r].f] = (size_t)w;
    }
    capturing = NULL;
    v = 0;
    uc_reg_write(uc, UC_RISCV_REG_MIP, &v);
    uc_reg_write(uc, UC_RISCV_REG_MIE, &v);
    if (!p->x.cs) {
        error_setg(errp, "cpu: the hub's wrappers of Unicorn functions are not in effect");
        return -EIO;
    }

    /* 2. the CPU state inside the CPU object: the bytes uc_context_save copies */
    for (unsigned i = 1; i < 32; i++) {
        v = 0x5a5a0000c0de0000ull + i * 0x10001ull;
        uc_reg_write(uc, UC_RISCV_REG_X0 + (int)i, &v);
    }
    if (take_snap(uc, ctx, hdr, &s[0]) < 0)
        return layout_error(errp, "uc_context_save failed");
    size_t k;
    for (k = 0; k < ENV_SEARCH_MAX; k += 8)
        if (!memcmp(p->x.cs + k, s[0].bytes, s[0].n))
            break;
    if (k >= ENV_SEARCH_MAX)
        return layout_error(errp, "no RISC-V state inside the CPU object");
    off_env = k;
    p->x.env = p->x.cs + off_env;
    v = 0x4444;
    uc_reg_write(uc, UC_RISCV_REG_PC, &v);
    if (ucx_get(&p->x, UCX_PC) != v)
        return layout_error(errp, "the RISC-V state found does not follow the registers");

    /* 3. privilege: M, then S after mret, then U after sret */
    if (uc_mem_map(uc, SCRATCH_CODE, PAGE_SIZE, UC_PROT_ALL) != UC_ERR_OK ||
        uc_mem_write(uc, SCRATCH_CODE, scratch_code, sizeof(scratch_code)) != UC_ERR_OK)
        return layout_error(errp, "cannot map the scratch engine's memory");
    if (take_snap(uc, ctx, hdr, &s[0]) < 0)
        return layout_error(errp, "uc_context_save failed");
    v = 1ull << 11, uc_reg_write(uc, UC_RISCV_REG_MSTATUS, &v);     /* MPP = S, SPP = U */
    v = SCRATCH_CODE + 4, uc_reg_write(uc, UC_RISCV_REG_MEPC, &v);
    v = SCRATCH_CODE + 8, uc_reg_write(uc, UC_RISCV_REG_SEPC, &v);
    uc_emu_start(uc, SCRATCH_CODE, SCRATCH_CODE + 4, 0, 0);
    if (take_snap(uc, ctx, hdr, &s[1]) < 0)
        return layout_error(errp, "uc_context_save failed");
    uc_emu_start(uc, SCRATCH_CODE + 4, SCRATCH_CODE + 8, 0, 0);
    if (take_snap(uc, ctx, hdr, &s[2]) < 0)
        return layout_error(errp, "uc_context_save failed");
    static const uint64_t privs[3] = { 3, 1, 0 };
    long w = find_word(s, privs, 3);
    if (w < 0)
        return layout_error(errp, "the privilege level is not where expected");
    ucx_off[UCX_PRIV] = (size_t)w;

    /* 4. the bad address of the last exception: two misaligned AMOs */
    static const uint64_t bad[2] = { 0x1ab3, 0x1c15 };
    for (int i = 0; i < 2; i++) {
        uc_reg_write(uc, UC_RISCV_REG_A5, &bad[i]);
        uc_emu_start(uc, SCRATCH_CODE + 8, SCRATCH_CODE + 12, 0, 0);
        v = 0;
        uc_reg_write(uc, UC_RISCV_REG_A5, &v);     /* only the bad-address word may hold the address */
        if (take_snap(uc, ctx, hdr, &s[i]) < 0)
            return layout_error(errp, "uc_context_save failed");
    }
    w = find_word(s, bad, 2);
    if (w < 0)
        return layout_error(errp, "the bad address is not where expected");
    ucx_off[UCX_BADADDR] = (size_t)w;

    /* 5. the host return address of an MMIO access: the CPUState word that restores that access's pc */
    ucx_set(&p->x, UCX_PRIV, 3);
    p->want_pc[0] = SCRATCH_CODE + 0x18;
    p->want_pc[1] = SCRATCH_CODE + 0x20;
    v = SCRATCH_DEV;
    if (uc_mmio_map(uc, SCRATCH_DEV, PAGE_SIZE, probe_read, p, NULL, NULL) != UC_ERR_OK ||
        uc_reg_write(uc, UC_RISCV_REG_A1, &v) != UC_ERR_OK)
        return layout_error(errp, "cannot map the scratch engine's device");
    uc_emu_start(uc, SCRATCH_CODE + 0x10, SCRATCH_CODE + 0x28, 0, 0);
    long found = -1;
    for (unsigned i = 0; i < p->nhits[0]; i++)
        for (unsigned j = 0; j < p->nhits[1]; j++)
            if (p->hits[0][i] == p->hits[1][j])
                found = found == -1 ? (long)p->hits[0][i] : -2;
    if (p->calls != 2 || found < 0)
        return layout_error(errp, "the host pc of an MMIO access is not where expected");
    off_mem_io_pc = (size_t)found;
    return 0;
}

/* Are the wrappers above the definitions the library's own calls reach? */
static bool wrappers_in_effect(void)
{
    static const struct { const char *name; void *fn; } w[] = {
        { "riscv_cpu_update_mip_riscv64", (void *)riscv_cpu_update_mip_riscv64 },
        { "riscv_cpu_exec_interrupt_riscv64", (void *)riscv_cpu_exec_interrupt_riscv64 },
        { "tlb_protect_code_riscv64", (void *)tlb_protect_code_riscv64 },
        { "page_collection_lock_riscv64", (void *)page_collection_lock_riscv64 },
        { "page_collection_unlock_riscv64", (void *)page_collection_unlock_riscv64 },
        { "tb_invalidate_phys_page_fast_riscv64", (void *)tb_invalidate_phys_page_fast_riscv64 },
        { "tlb_set_page_riscv64", (void *)tlb_set_page_riscv64 },
        { "riscv_csrrw_riscv64", (void *)riscv_csrrw_riscv64 },
        { "tcg_gen_mb_riscv64", (void *)tcg_gen_mb_riscv64 },
    };
    for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++)
        if (dlsym(RTLD_DEFAULT, w[i].name) != w[i].fn)
            return false;
    return true;
}

static pthread_mutex_t layout_lock = PTHREAD_MUTEX_INITIALIZER;
static bool layout_done;

static int layout(Error **errp)
{
    int ret = 0;
    pthread_mutex_lock(&layout_lock);
    if (layout_done)
        goto out;
    if (!have_real()) {
        error_setg(errp, "cpu: libunicorn lacks functions the hub wraps (is it Debian's Unicorn 2.0.1?)");
        ret = -EIO;
        goto out;
    }
    if (!wrappers_in_effect()) {
        error_setg(errp, "cpu: the hub's wrappers of Unicorn functions are not what the library calls: the "
                   "executable must export them (link plexus-hub-cpu into the executable, not a library)");
        ret = -EIO;
        goto out;
    }
    if (!parallel_flag.ok) {
        error_setg(errp, "cpu: cannot make guest fences host barriers with this libunicorn (tcg_gen_mb does not "
                   "start as Unicorn 2.0.1's does): devices sharing guest RAM would miss the guest's ordering");
        ret = -EIO;
        goto out;
    }
    probe *p = calloc(1, sizeof(*p));
    uc_context *ctx = NULL;
    snap s[3] = { 0 };
    ret = -EIO;
    if (!p || uc_open(UC_ARCH_RISCV, UC_MODE_RISCV64, &p->x.uc) != UC_ERR_OK ||
        uc_ctl_set_cpu_model(p->x.uc, UC_CPU_RISCV64_SIFIVE_U54) != UC_ERR_OK ||
        uc_context_alloc(p->x.uc, &ctx) != UC_ERR_OK) {
        error_setg(errp, "cpu: cannot open a scratch Unicorn engine");
    } else {
        size_t data;
        memcpy(&data, ctx, sizeof(data));      /* uc_context starts with the size of the state it holds */
        size_t hdr = uc_context_size(p->x.uc) - data;
        bool ok = true;
        for (int i = 0; i < 3; i++) {
            s[i].n = data;
            ok = ok && (s[i].bytes = malloc(data)) != NULL;
        }
        if (ok)
            ret = find_layout(p, ctx, s, hdr, errp);
        else
            error_setg(errp, "cpu: out of memory");
    }
    capturing = NULL;
    for (int i = 0; i < 3; i++)
        free(s[i].bytes);
    if (ctx)
        uc_context_free(ctx);
    if (p && p->x.uc)
        uc_close(p->x.uc);
    free(p);
    layout_done = ret == 0;
out:
    pthread_mutex_unlock(&layout_lock);
    return ret;
}

int ucx_open(ucx *x, Error **errp)
{
    memset(x, 0, sizeof(*x));
    int ret = layout(errp);
    if (ret < 0)
        return ret;
    if (uc_open(UC_ARCH_RISCV, UC_MODE_RISCV64, &x->uc) != UC_ERR_OK) {
        error_setg(errp, "cpu: cannot open a Unicorn RISC-V 64 engine");
        return -EIO;
    }
    /* rv64imafdc with S and U modes and paging: what U-Boot, OpenSBI and Linux expect */
    uint64_t mip = 0;
    if (uc_ctl_set_cpu_model(x->uc, UC_CPU_RISCV64_SIFIVE_U54) != UC_ERR_OK ||
        uc_ctl_exits_enable(x->uc) != UC_ERR_OK) {
        error_setg(errp, "cpu: cannot set up the Unicorn CPU");
        goto fail;
    }
    capturing = x;
    uc_reg_write(x->uc, UC_RISCV_REG_MIP, &mip);
    capturing = NULL;
    if (!x->cs) {
        error_setg(errp, "cpu: cannot find the Unicorn CPU object");
        goto fail;
    }
    x->env = x->cs + off_env;
    x->registered = true;
    if (!register_engine(x)) {
        error_setg(errp, "cpu: too many CPUs in one process");
        goto fail;
    }
    return 0;
fail:
    uc_close(x->uc);
    x->uc = NULL;
    return -EIO;
}

void ucx_close(ucx *x)
{
    if (!x->uc)
        return;
    unregister_engine(x);
    uc_close(x->uc);
    x->uc = NULL;
    free(x->code.bits);
    x->code.bits = NULL;
    x->code.words = 0;
}
