/*
 * The hub's RISC-V 64 CPU (one hart, Unicorn) and the interrupt controllers and poweroff device QEMU's `virt`
 * machine has: CLINT (sifive,clint0), PLIC (sifive,plic-1.0.0) and the sifive,test0 finisher.
 *
 * This header is the contract between the CPU part (src/cpu/) and the machine (src/machine/).
 * Single-threaded: the CPU runs on the hub's main thread; device service happens in the hooks below.
 *
 * Lifetime: every *_new allocates and the matching *_free releases (accepts NULL). The CPU must be freed after
 * the controllers that point at it. The MemoryRegion a controller returns lives until that controller is freed;
 * the machine adds it to the system memory and removes it before freeing.
 */
#ifndef PLEXUS_HUB_CPU_H
#define PLEXUS_HUB_CPU_H

#include <stdbool.h>
#include <stdint.h>

#include <plexus/memory.h>

#include "vclock.h"

/* mip bit numbers */
enum { HUB_IRQ_MSIP = 3, HUB_IRQ_MTIP = 7, HUB_IRQ_SEIP = 9, HUB_IRQ_MEIP = 11 };

typedef struct hub_cpu hub_cpu;

typedef struct hub_cpu_config {
    AddressSpace *as;           /* the CPU follows this address space with a MemoryListener */
    vclock *clock;
    double insns_per_ns;        /* virtual time: executed instructions per virtual nanosecond (e.g. 0.1) */
    bool wallclock;             /* virtual time follows the host's monotonic clock instead */
    /*
     * Virtual time while the hart waits in WFI with nothing pending (ignored with @wallclock). false: it jumps
     * to the next timer deadline at once (fast, and a run is a function of its inputs); true: it follows the
     * host's clock, the hub sleeping until that deadline or an outside event, as QEMU's -icount sleep=on.
     */
    bool idle_sleep;
    uint64_t reset_pc;
    uint64_t a0, a1;            /* hart id and device tree address, as QEMU's virt passes them */
    uint64_t a2;                /* OpenSBI's fw_dynamic_info address when there is a next stage, else 0 */
    /* Called between execution slices: serve devices without blocking. */
    void (*service)(void *opaque);
    /*
     * The hart waits for an interrupt (WFI) and none is pending: block until some outside event (a device
     * message, console input) may have raised one, or @timeout_ms (>= 0) runs out.
     */
    void (*idle)(void *opaque, int timeout_ms);
    /*
     * The guest is about to observe interrupt state: it accesses the PLIC, reads mip or sip, is about to take an
     * interrupt, or waits in WFI (and virtual time may jump). Bring the interrupt lines up to date with every
     * write the guest made before (posted writes applied, the line changes they cause made), so it never sees
     * interrupt state older than its own earlier writes. NULL: nothing to do.
     */
    void (*irq_sync)(void *opaque);
    void *opaque;
    /*
     * Instructions per execution slice (0: 10000). Device messages that arrive on their own (IRQs, DMA) are
     * served between slices; a smaller slice answers faster, a larger one runs faster. Timer deadlines end a
     * slice at the first block boundary at or after them.
     */
    uint64_t slice_insns;
} hub_cpu_config;

hub_cpu *hub_cpu_new(const hub_cpu_config *cfg, Error **errp);
void hub_cpu_free(hub_cpu *cpu);

/* Charge @ns of virtual time to the hart (a device access that took that long): the clock moves on by it when
 * the current slice ends, on top of the instructions executed. Ignored in wallclock mode. */
void hub_cpu_charge(hub_cpu *cpu, uint64_t ns);

/*
 * Drive an interrupt-pending input (mip bit @bit, see HUB_IRQ_*). Raised during a guest's MMIO access (by a
 * device model or a message served meanwhile), a deliverable interrupt is taken before the next instruction;
 * otherwise at the start of the next slice.
 */
void hub_cpu_set_irq(hub_cpu *cpu, unsigned bit, int level);

/* For the interrupt controllers (the PLIC before every access the guest makes to it): call the configuration's
 * irq_sync. */
void hub_cpu_irq_sync(hub_cpu *cpu);

/*
 * Run until hub_cpu_stop() (from a device model, the poweroff device, or a hook) or a fatal CPU error.
 * Returns the stop status, or a negative errno with @errp set on a fatal error (e.g. an instruction fetch
 * from unmapped memory with no trap vector). A stop requested while the CPU is not running makes the next
 * hub_cpu_run() return its status at once. Each stop is consumed by the run it ends; running again resumes.
 */
int hub_cpu_run(hub_cpu *cpu, Error **errp);
void hub_cpu_stop(hub_cpu *cpu, int status);

/*
 * From inside a memory access the CPU makes (a MemoryRegionOps callback reached from a guest load or store):
 * abandon that access and make it again after the run loop's next service call, which can do what the access
 * needs first (restart its device). The instruction's result is not written back; virtual time goes on by the
 * slice. Returns false, and changes nothing, outside such an access (DMA, the loader, a debugger).
 */
bool hub_cpu_defer_access(hub_cpu *cpu);

typedef struct hub_cpu_stats {
    uint64_t instructions;      /* instructions charged to virtual time (of the blocks entered; one a trap cut
                                   short counts whole) */
    uint64_t traps;             /* exceptions and interrupts taken */
    uint64_t mmio_reads, mmio_writes;
    uint64_t mmio_errors;       /* accesses the address space answered with an error (reads gave 0) */
    uint64_t mmio_deferred;     /* accesses abandoned and made again (hub_cpu_defer_access) */
    uint64_t slices;            /* uc_emu_start calls */
    uint64_t wfi_waits;         /* WFIs that found nothing pending */
    uint64_t idle_ns;           /* host time slept in WFI (idle_sleep) */
} hub_cpu_stats;
void hub_cpu_get_stats(const hub_cpu *cpu, hub_cpu_stats *out);

/*
 * The `time` CSR (rdtime): Unicorn has none, so the hart emulates it with @read_time (counter value at the
 * current virtual time), honouring mcounteren/scounteren. Without a source rdtime is an illegal instruction.
 * hub_clint_new() installs the CLINT's mtime as the source.
 */
void hub_cpu_set_time_source(hub_cpu *cpu, uint64_t (*read_time)(void *opaque), void *opaque);

/* CLINT: msip at 0x0, mtimecmp at 0x4000, mtime at 0xbff8; mtime counts at @timebase_hz of virtual time.
 * Also the hart's time CSR source (hub_cpu_set_time_source); hub_clint_free() removes it. */
typedef struct hub_clint hub_clint;
hub_clint *hub_clint_new(hub_cpu *cpu, vclock *clock, uint64_t timebase_hz);
MemoryRegion *hub_clint_region(hub_clint *c);    /* 0x10000 bytes */
void hub_clint_free(hub_clint *c);

/* PLIC with @nsources sources (1..nsources; 0 is reserved), one hart with M and S contexts as in QEMU virt. */
typedef struct hub_plic hub_plic;
hub_plic *hub_plic_new(hub_cpu *cpu, unsigned nsources);
MemoryRegion *hub_plic_region(hub_plic *p);      /* 0x4000000 bytes */
void hub_plic_set_irq(hub_plic *p, unsigned source, int level);
void hub_plic_free(hub_plic *p);

/*
 * sifive,test0 at its base: writing 0x5555 powers off with status 0, 0x3333 | (code << 16) with status code,
 * 0x7777 resets (treated as poweroff with status 0 unless the machine handles reset). Stops @cpu.
 */
typedef struct hub_poweroff hub_poweroff;
hub_poweroff *hub_poweroff_new(hub_cpu *cpu);
MemoryRegion *hub_poweroff_region(hub_poweroff *p);   /* 0x1000 bytes */
void hub_poweroff_free(hub_poweroff *p);

#endif
