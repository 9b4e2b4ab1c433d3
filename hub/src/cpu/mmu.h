/*
 * RISC-V virtual memory as the privileged spec defines it (Sv39, Sv48, Sv57), for the hub's own look-ups:
 * the instruction bytes it needs (illegal instruction tval, rdtime, block sizes) are read by translating the
 * virtual pc here and reading RAM only, never through device dispatch.
 *
 * A look-up is a probe: it neither requires nor sets the A and D bits and never writes guest memory; PMP is
 * not applied (the hart already fetched or accessed what the hub looks at).
 */
#ifndef PLEXUS_HUB_CPU_MMU_H
#define PLEXUS_HUB_CPU_MMU_H

#include <stdbool.h>
#include <stdint.h>

enum { MMU_PRV_U = 0, MMU_PRV_S = 1, MMU_PRV_M = 3 };

typedef enum hub_mmu_access { HUB_MMU_FETCH, HUB_MMU_LOAD, HUB_MMU_STORE } hub_mmu_access;

/* The hart state a translation depends on. */
typedef struct hub_mmu_regs {
    uint64_t satp;
    uint64_t mstatus;       /* MPRV, MPP, SUM, MXR */
    unsigned priv;          /* MMU_PRV_* */
} hub_mmu_regs;

/* Read the 8-byte page table entry at physical @pa from RAM; false if @pa is not RAM. */
typedef bool hub_mmu_read_pte(void *opaque, uint64_t pa, uint64_t *pte);

/*
 * Translate @va for an access of kind @acc. The effective privilege is @r->priv, or MPP for loads and stores
 * in M-mode with MPRV set; M-mode and satp.MODE = Bare do not translate.
 * Returns 0 with *@pa set, -EFAULT for what the hart raises as a page fault (invalid or non-canonical
 * address, reserved or missing permission bits, misaligned superpage), -EIO when a page table entry is not
 * in RAM (an access fault), -ENOTSUP for a satp mode other than Bare/Sv39/Sv48/Sv57.
 */
int hub_mmu_translate(const hub_mmu_regs *r, uint64_t va, hub_mmu_access acc, hub_mmu_read_pte *read_pte,
                      void *opaque, uint64_t *pa);

/* Does an access of kind @acc go through satp at all (privilege, MPRV/MPP, satp.MODE)? */
bool hub_mmu_translates(const hub_mmu_regs *r, hub_mmu_access acc);

#endif
