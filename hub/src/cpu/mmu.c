#include "mmu.h"

#include <errno.h>

#define SATP_MODE_SHIFT 60
#define SATP_PPN_MASK ((1ull << 44) - 1)
#define SATP_BARE 0
#define SATP_SV39 8
#define SATP_SV48 9
#define SATP_SV57 10

#define MSTATUS_MPP_SHIFT 11
#define MSTATUS_MPRV (1ull << 17)
#define MSTATUS_SUM (1ull << 18)
#define MSTATUS_MXR (1ull << 19)

#define PTE_V (1u << 0)
#define PTE_R (1u << 1)
#define PTE_W (1u << 2)
#define PTE_X (1u << 3)
#define PTE_U (1u << 4)
#define PTE_PPN_SHIFT 10
#define PTE_PPN_MASK ((1ull << 44) - 1)
#define PTE_RESERVED (~0ull << 54)      /* N, PBMT and reserved bits: zero without Svnapot/Svpbmt */

#define PAGE_SHIFT 12
#define VPN_BITS 9

static unsigned effective_priv(const hub_mmu_regs *r, hub_mmu_access acc)
{
    if (acc != HUB_MMU_FETCH && r->priv == MMU_PRV_M && (r->mstatus & MSTATUS_MPRV))
        return (unsigned)((r->mstatus >> MSTATUS_MPP_SHIFT) & 3);
    return r->priv;
}

bool hub_mmu_translates(const hub_mmu_regs *r, hub_mmu_access acc)
{
    return effective_priv(r, acc) != MMU_PRV_M && (r->satp >> SATP_MODE_SHIFT) != SATP_BARE;
}

static bool leaf_allows(const hub_mmu_regs *r, unsigned priv, uint64_t pte, hub_mmu_access acc)
{
    if (pte & PTE_U) {
        if (priv == MMU_PRV_S && (acc == HUB_MMU_FETCH || !(r->mstatus & MSTATUS_SUM)))
            return false;
    } else if (priv == MMU_PRV_U) {
        return false;
    }
    switch (acc) {
    case HUB_MMU_FETCH:
        return pte & PTE_X;
    case HUB_MMU_LOAD:
        return (pte & PTE_R) || ((r->mstatus & MSTATUS_MXR) && (pte & PTE_X));
    default:
        return pte & PTE_W;
    }
}

int hub_mmu_translate(const hub_mmu_regs *r, uint64_t va, hub_mmu_access acc, hub_mmu_read_pte *read_pte,
                      void *opaque, uint64_t *pa)
{
    unsigned priv = effective_priv(r, acc);
    unsigned mode = (unsigned)(r->satp >> SATP_MODE_SHIFT);
    int levels;

    if (priv == MMU_PRV_M || mode == SATP_BARE) {
        *pa = va;
        return 0;
    }
    switch (mode) {
    case SATP_SV39: levels = 3; break;
    case SATP_SV48: levels = 4; break;
    case SATP_SV57: levels = 5; break;
    default: return -ENOTSUP;
    }
    /* bits above the top VPN bit must all equal it */
    unsigned va_bits = PAGE_SHIFT + VPN_BITS * (unsigned)levels;
    int64_t top = (int64_t)(va << (64 - va_bits)) >> (64 - va_bits);
    if ((uint64_t)top != va)
        return -EFAULT;

    uint64_t table = (r->satp & SATP_PPN_MASK) << PAGE_SHIFT;
    for (int i = levels - 1; i >= 0; i--) {
        unsigned shift = PAGE_SHIFT + VPN_BITS * (unsigned)i;
        uint64_t pte;
        if (!read_pte(opaque, table + ((va >> shift) & ((1u << VPN_BITS) - 1)) * 8, &pte))
            return -EIO;
        if (!(pte & PTE_V) || (!(pte & PTE_R) && (pte & PTE_W)) || (pte & PTE_RESERVED))
            return -EFAULT;
        uint64_t ppn = (pte >> PTE_PPN_SHIFT) & PTE_PPN_MASK;
        if (!(pte & (PTE_R | PTE_X))) {
            table = ppn << PAGE_SHIFT;
            continue;
        }
        if (!leaf_allows(r, priv, pte, acc))
            return -EFAULT;
        uint64_t low = (1ull << (shift - PAGE_SHIFT)) - 1;  /* PPN bits the superpage takes from va */
        if (ppn & low)
            return -EFAULT;
        *pa = ((ppn | ((va >> PAGE_SHIFT) & low)) << PAGE_SHIFT) | (va & ((1u << PAGE_SHIFT) - 1));
        return 0;
    }
    return -EFAULT;     /* no leaf at level 0 */
}
