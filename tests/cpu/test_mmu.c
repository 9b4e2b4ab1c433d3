/* The hub's page-table walker (hub/src/cpu/mmu.c): Sv39, Sv48 and Sv57 as the privileged spec defines them. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "mmu.h"

/* Guest "RAM" for page tables: 64 pages at 0x80000000. */
#define MEM_BASE 0x80000000ull
#define MEM_PAGES 64
static uint64_t mem[MEM_PAGES * 512];
static unsigned next_page;

static bool rd(void *opaque, uint64_t pa, uint64_t *pte)
{
    (void)opaque;
    if (pa < MEM_BASE || pa + 8 > MEM_BASE + sizeof(mem) || (pa & 7))
        return false;
    *pte = mem[(pa - MEM_BASE) / 8];
    return true;
}

static uint64_t new_table(void)
{
    cr_assert_lt(next_page, MEM_PAGES);
    return MEM_BASE + 4096ull * next_page++;
}

static void reset(void)
{
    memset(mem, 0, sizeof(mem));
    next_page = 0;
}

#define V 0x01
#define R 0x02
#define W 0x04
#define X 0x08
#define U 0x10
#define A 0x40
#define D 0x80

static void set_pte(uint64_t table, unsigned index, uint64_t pte)
{
    mem[(table - MEM_BASE) / 8 + index] = pte;
}

static uint64_t vpn(uint64_t va, int level)
{
    return (va >> (12 + 9 * level)) & 511;
}

/* Map @va to @pa with a leaf at @leaf_level (0 = 4 KiB) under @root for a @levels-level scheme. */
static void map(uint64_t root, int levels, uint64_t va, uint64_t pa, int leaf_level, unsigned flags)
{
    uint64_t table = root;
    for (int l = levels - 1; l > leaf_level; l--) {
        uint64_t e = mem[(table - MEM_BASE) / 8 + vpn(va, l)];
        if (!(e & V)) {
            uint64_t t = new_table();
            e = ((t >> 12) << 10) | V;
            set_pte(table, (unsigned)vpn(va, l), e);
        }
        table = ((e >> 10) & ((1ull << 44) - 1)) << 12;
    }
    set_pte(table, (unsigned)vpn(va, leaf_level), ((pa >> 12) << 10) | flags | V | A | D);
}

static hub_mmu_regs regs(unsigned mode, uint64_t root, unsigned priv, uint64_t mstatus)
{
    return (hub_mmu_regs){ .satp = ((uint64_t)mode << 60) | (root >> 12), .mstatus = mstatus, .priv = priv };
}

static int tr(const hub_mmu_regs *r, uint64_t va, hub_mmu_access acc, uint64_t *pa)
{
    return hub_mmu_translate(r, va, acc, rd, NULL, pa);
}

#define SV39 8
#define SV48 9
#define SV57 10
#define SUM (1ull << 18)
#define MXR (1ull << 19)
#define MPRV (1ull << 17)
#define MPP_S (1ull << 11)

TestSuite(mmu, .init = reset);

Test(mmu, bare_and_m_mode_do_not_translate)
{
    uint64_t pa;
    hub_mmu_regs r = regs(0, 0, MMU_PRV_S, 0);
    cr_assert_eq(tr(&r, 0xffffffff80001234ull, HUB_MMU_FETCH, &pa), 0);
    cr_assert_eq(pa, 0xffffffff80001234ull);
    cr_assert_not(hub_mmu_translates(&r, HUB_MMU_LOAD));
    r = regs(SV39, MEM_BASE, MMU_PRV_M, 0);
    cr_assert_eq(tr(&r, 0x1234, HUB_MMU_LOAD, &pa), 0);
    cr_assert_eq(pa, 0x1234);
    cr_assert_not(hub_mmu_translates(&r, HUB_MMU_FETCH));
}

Test(mmu, sv39_4k_mega_and_giga_pages)
{
    uint64_t root = new_table(), pa;
    map(root, 3, 0xffffffff80001000ull, 0x80201000ull, 0, R | X);
    map(root, 3, 0xffffffffc0200000ull, 0x80400000ull, 1, R | W);
    map(root, 3, 0x0000003f80000000ull, 0xc0000000ull, 2, R | W | U);
    hub_mmu_regs r = regs(SV39, root, MMU_PRV_S, 0);
    cr_assert_eq(tr(&r, 0xffffffff80001abcull, HUB_MMU_FETCH, &pa), 0);
    cr_assert_eq(pa, 0x80201abcull, "pa 0x%lx", pa);
    cr_assert_eq(tr(&r, 0xffffffffc02fedcbull, HUB_MMU_STORE, &pa), 0);
    cr_assert_eq(pa, 0x804fedcbull, "megapage pa 0x%lx", pa);
    r.priv = MMU_PRV_U;
    cr_assert_eq(tr(&r, 0x0000003f9234abcdull, HUB_MMU_LOAD, &pa), 0);
    cr_assert_eq(pa, 0xd234abcdull, "gigapage pa 0x%lx", pa);
}

Test(mmu, sv39_non_canonical_and_unmapped_addresses_fault)
{
    uint64_t root = new_table(), pa = 0;
    map(root, 3, 0xffffffff80001000ull, 0x80201000ull, 0, R | X);
    hub_mmu_regs r = regs(SV39, root, MMU_PRV_S, 0);
    cr_assert_eq(tr(&r, 0x0000ffff80001000ull, HUB_MMU_FETCH, &pa), -EFAULT, "bits 63..39 must equal bit 38");
    cr_assert_eq(tr(&r, 0xffffffff80002000ull, HUB_MMU_FETCH, &pa), -EFAULT, "no leaf");
    cr_assert_eq(tr(&r, 0x40000000ull, HUB_MMU_LOAD, &pa), -EFAULT, "invalid root entry");
    cr_assert_eq(pa, 0, "nothing written on failure");
}

Test(mmu, sv48_high_address)
{
    uint64_t root = new_table(), pa;
    map(root, 4, 0xffff800012345000ull, 0x80abc000ull, 0, R | W | X);
    map(root, 4, 0x00007ffffffff000ull, 0x80def000ull, 0, R | W | U);
    hub_mmu_regs r = regs(SV48, root, MMU_PRV_S, 0);
    cr_assert_eq(tr(&r, 0xffff800012345678ull, HUB_MMU_FETCH, &pa), 0);
    cr_assert_eq(pa, 0x80abc678ull);
    cr_assert_eq(tr(&r, 0xff00800012345678ull, HUB_MMU_FETCH, &pa), -EFAULT, "not sign-extended from bit 47");
    r.priv = MMU_PRV_U;
    cr_assert_eq(tr(&r, 0x00007ffffffff008ull, HUB_MMU_STORE, &pa), 0);
    cr_assert_eq(pa, 0x80def008ull);
    /* the same entry under Sv39 would be a different walk: one level fewer */
    hub_mmu_regs r39 = regs(SV39, root, MMU_PRV_S, 0);
    cr_assert_neq(tr(&r39, 0xffffffff92345678ull, HUB_MMU_FETCH, &pa), 0);
}

Test(mmu, sv57_high_address_and_superpage)
{
    uint64_t root = new_table(), pa;
    map(root, 5, 0xff60000000001000ull, 0x80300000ull, 0, R | X);
    map(root, 5, 0xff70000000000000ull, 0x80000000ull, 2, R | W);     /* 1 GiB */
    map(root, 5, 0x00ff000000000000ull, 0xc0000000ull, 3, R | U);     /* 512 GiB terapage at PPN 0xc0000 */
    hub_mmu_regs r = regs(SV57, root, MMU_PRV_S, 0);
    cr_assert_eq(tr(&r, 0xff60000000001ffeull, HUB_MMU_FETCH, &pa), 0);
    cr_assert_eq(pa, 0x80300ffeull);
    cr_assert_eq(tr(&r, 0xff7000003ffffff8ull, HUB_MMU_LOAD, &pa), 0);
    cr_assert_eq(pa, 0xbffffff8ull);
    cr_assert_eq(tr(&r, 0xfe60000000001000ull, HUB_MMU_FETCH, &pa), -EFAULT, "not sign-extended from bit 56");
    /* a terapage whose PPN is not 512 GiB aligned is a misaligned superpage */
    r.priv = MMU_PRV_U;
    cr_assert_eq(tr(&r, 0x00ff000000000000ull, HUB_MMU_LOAD, &pa), -EFAULT);
}

Test(mmu, misaligned_superpage_faults)
{
    uint64_t root = new_table(), pa;
    map(root, 3, 0xffffffffc0200000ull, 0x80401000ull, 1, R | W);     /* 2 MiB leaf, PPN not 2 MiB aligned */
    hub_mmu_regs r = regs(SV39, root, MMU_PRV_S, 0);
    cr_assert_eq(tr(&r, 0xffffffffc0200000ull, HUB_MMU_LOAD, &pa), -EFAULT);
}

Test(mmu, permissions_user_supervisor_sum_mxr)
{
    uint64_t root = new_table(), pa;
    map(root, 3, 0x10000ull, 0x80010000ull, 0, R | W | X | U);
    map(root, 3, 0x20000ull, 0x80020000ull, 0, X);
    map(root, 3, 0x30000ull, 0x80030000ull, 0, R);
    map(root, 3, 0x40000ull, 0x80040000ull, 0, R | W | X);
    hub_mmu_regs s = regs(SV39, root, MMU_PRV_S, 0), u = regs(SV39, root, MMU_PRV_U, 0);
    cr_assert_eq(tr(&s, 0x10000, HUB_MMU_FETCH, &pa), -EFAULT, "S never executes a U page");
    cr_assert_eq(tr(&s, 0x10000, HUB_MMU_LOAD, &pa), -EFAULT, "S loads a U page only with SUM");
    s.mstatus = SUM;
    cr_assert_eq(tr(&s, 0x10000, HUB_MMU_LOAD, &pa), 0);
    cr_assert_eq(tr(&s, 0x10000, HUB_MMU_FETCH, &pa), -EFAULT, "SUM does not allow fetches");
    cr_assert_eq(tr(&u, 0x10000, HUB_MMU_FETCH, &pa), 0);
    cr_assert_eq(tr(&u, 0x40000, HUB_MMU_LOAD, &pa), -EFAULT, "U cannot touch an S page");
    cr_assert_eq(tr(&s, 0x20000, HUB_MMU_LOAD, &pa), -EFAULT, "execute-only without MXR");
    s.mstatus = MXR;
    cr_assert_eq(tr(&s, 0x20000, HUB_MMU_LOAD, &pa), 0);
    cr_assert_eq(tr(&s, 0x30000, HUB_MMU_STORE, &pa), -EFAULT, "read-only");
    cr_assert_eq(tr(&s, 0x30000, HUB_MMU_FETCH, &pa), -EFAULT, "not executable");
    cr_assert_eq(tr(&s, 0x40000, HUB_MMU_STORE, &pa), 0);
}

Test(mmu, invalid_entries_fault)
{
    uint64_t root = new_table(), pa;
    map(root, 3, 0x10000ull, 0x80010000ull, 0, W);          /* W without R is reserved */
    map(root, 3, 0x20000ull, 0x80020000ull, 0, R);
    hub_mmu_regs s = regs(SV39, root, MMU_PRV_S, 0);
    cr_assert_eq(tr(&s, 0x10000, HUB_MMU_STORE, &pa), -EFAULT);
    cr_assert_eq(tr(&s, 0x20000, HUB_MMU_LOAD, &pa), 0);
    /* the same leaf with a reserved high bit (PBMT/N without those extensions) */
    uint64_t l1 = ((mem[(root - MEM_BASE) / 8] >> 10) << 12);
    uint64_t l0 = ((mem[(l1 - MEM_BASE) / 8] >> 10) << 12);
    mem[(l0 - MEM_BASE) / 8 + 0x20] |= 1ull << 61;
    cr_assert_eq(tr(&s, 0x20000, HUB_MMU_LOAD, &pa), -EFAULT);
}

Test(mmu, mprv_translates_m_mode_loads_and_stores_as_mpp)
{
    uint64_t root = new_table(), pa;
    map(root, 3, 0xffffffff80000000ull, 0x80000000ull, 2, R | W | X);
    hub_mmu_regs m = regs(SV39, root, MMU_PRV_M, MPRV | MPP_S);
    cr_assert(hub_mmu_translates(&m, HUB_MMU_LOAD));
    cr_assert_eq(tr(&m, 0xffffffff80000010ull, HUB_MMU_LOAD, &pa), 0);
    cr_assert_eq(pa, 0x80000010ull);
    cr_assert_eq(tr(&m, 0xffffffff80000010ull, HUB_MMU_STORE, &pa), 0);
    cr_assert_not(hub_mmu_translates(&m, HUB_MMU_FETCH), "MPRV does not apply to fetches");
    cr_assert_eq(tr(&m, 0x80000010ull, HUB_MMU_FETCH, &pa), 0);
    cr_assert_eq(pa, 0x80000010ull);
    m.mstatus = MPRV | (3ull << 11);       /* MPP = M: no translation */
    cr_assert_not(hub_mmu_translates(&m, HUB_MMU_LOAD));
}

Test(mmu, table_outside_ram_and_unknown_mode)
{
    uint64_t pa;
    hub_mmu_regs r = regs(SV39, 0x10000000ull, MMU_PRV_S, 0);
    cr_assert_eq(tr(&r, 0x1000, HUB_MMU_FETCH, &pa), -EIO);
    r = regs(11, MEM_BASE, MMU_PRV_S, 0);
    cr_assert_eq(tr(&r, 0x1000, HUB_MMU_FETCH, &pa), -ENOTSUP);
}
