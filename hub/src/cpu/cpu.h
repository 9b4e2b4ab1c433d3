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
typedef struct hub_cpu_observer hub_cpu_observer;
typedef struct hub_cpu_debug_event hub_cpu_debug_event;

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
    /*
     * The debugger's stop (hub_cpu_debug_*): called from hub_cpu_run() between slices when the hart stopped
     * for a breakpoint, a watchpoint, a finished step or hub_cpu_debug_break(). It returns when the guest may
     * go on (after hub_cpu_debug_step() for one instruction); meanwhile virtual time stands still. NULL: debug
     * stops are ignored.
     */
    void (*debug_stop)(void *opaque, const hub_cpu_debug_event *ev);
    /* Diagnostics: what the hart does, for logs and traces (NULL: nothing is observed, at no cost). */
    const hub_cpu_observer *observer;
    void *observer_opaque;
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
    uint64_t code_dropped;      /* pages written from outside the hart whose translated code was dropped */
    uint64_t fences;            /* guest fences translated with a host barrier (the whole process) */
} hub_cpu_stats;
void hub_cpu_get_stats(const hub_cpu *cpu, hub_cpu_stats *out);

/*
 * Guest RAM [@pa, @pa + @len) was written by something other than the hart (a device's DMA, by message or through
 * its mapping): the translated code of those pages is dropped, so the hart runs what is there now, as QEMU
 * invalidates on DMA. Cheap for pages that hold no code. Call on the CPU's thread: between slices (a service or
 * idle callback) or from inside a guest access (DMA served while the hub waits on a device).
 */
void hub_cpu_ram_written(hub_cpu *cpu, uint64_t pa, uint64_t len);

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
/* Back to the state after hub_clint_new(): msip 0, mtimecmp all ones, mtime the virtual clock's ticks again
 * (a value written to mtime is forgotten). */
void hub_clint_reset(hub_clint *c);
void hub_clint_free(hub_clint *c);

/* PLIC with @nsources sources (1..nsources; 0 is reserved), one hart with M and S contexts as in QEMU virt. */
typedef struct hub_plic hub_plic;
hub_plic *hub_plic_new(hub_cpu *cpu, unsigned nsources);
MemoryRegion *hub_plic_region(hub_plic *p);      /* 0x4000000 bytes */
/* Back to the state after hub_plic_new(): priorities, enables, thresholds and claims cleared; a source is
 * pending again exactly when its line is high. */
void hub_plic_reset(hub_plic *p);
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

/* ---- Debugging (the GDB stub and the monitor, hub/src/debug) ----------------------------------------- */

/*
 * Registers in the numbering RISC-V debuggers use (GDB's): x0..x31 = 0..31, pc = 32, f0..f31 = 33..64,
 * CSR n = 65 + n, the privilege level (0 U, 1 S, 3 M) = 65 + 4096.
 */
enum { HUB_REG_PC = 32, HUB_REG_F0 = 33, HUB_REG_CSR0 = 65, HUB_REG_PRIV = 65 + 4096 };
/* CSR numbers the hart exposes (a selection: what a debugger wants to see). */
enum {
    HUB_CSR_FFLAGS = 0x001, HUB_CSR_FRM = 0x002, HUB_CSR_FCSR = 0x003,
    HUB_CSR_SSTATUS = 0x100, HUB_CSR_SIE = 0x104, HUB_CSR_STVEC = 0x105, HUB_CSR_SCOUNTEREN = 0x106,
    HUB_CSR_SSCRATCH = 0x140, HUB_CSR_SEPC = 0x141, HUB_CSR_SCAUSE = 0x142, HUB_CSR_STVAL = 0x143,
    HUB_CSR_SIP = 0x144, HUB_CSR_SATP = 0x180,
    HUB_CSR_MSTATUS = 0x300, HUB_CSR_MISA = 0x301, HUB_CSR_MEDELEG = 0x302, HUB_CSR_MIDELEG = 0x303,
    HUB_CSR_MIE = 0x304, HUB_CSR_MTVEC = 0x305, HUB_CSR_MCOUNTEREN = 0x306, HUB_CSR_MSCRATCH = 0x340,
    HUB_CSR_MEPC = 0x341, HUB_CSR_MCAUSE = 0x342, HUB_CSR_MTVAL = 0x343, HUB_CSR_MIP = 0x344,
    HUB_CSR_MHARTID = 0xf14,
};

/* The CSRs hub_cpu_get_reg() knows, in a fixed order, with their names; *@n gets the count. */
typedef struct hub_csr_name { unsigned csr; const char *name; } hub_csr_name;
const hub_csr_name *hub_cpu_csrs(size_t *n);

/* Read or write register @reg (HUB_REG_* numbering). Returns 0, or -ENOENT for a register the hart does not
 * have. Only while the hart is not running (from debug_stop, or before/after hub_cpu_run). */
int hub_cpu_get_reg(hub_cpu *cpu, unsigned reg, uint64_t *value);
int hub_cpu_set_reg(hub_cpu *cpu, unsigned reg, uint64_t value);

/*
 * Guest memory as the debugger sees it. Without HUB_DBG_PHYS, @addr is virtual: translated as the hart's
 * loads are (its privilege, satp, MPRV, SUM), through page tables in RAM. RAM and ROM are read and written
 * directly (a write invalidates translated code). Anything else is a device register, which has side
 * effects: refused (-EPERM) unless HUB_DBG_IO, then dispatched as a guest access of the access's natural
 * size (1, 2, 4 or 8 bytes; other lengths are refused). Returns 0, -EFAULT (no translation, or nothing
 * there; nothing copied), -EPERM.
 */
enum { HUB_DBG_PHYS = 1, HUB_DBG_IO = 2 };
int hub_cpu_debug_read(hub_cpu *cpu, uint64_t addr, void *buf, size_t len, unsigned flags);
int hub_cpu_debug_write(hub_cpu *cpu, uint64_t addr, const void *buf, size_t len, unsigned flags);
/* Virtual @va to physical as the hart's loads (or fetches, @fetch) translate it: 0 or -EFAULT. */
int hub_cpu_debug_translate(hub_cpu *cpu, uint64_t va, bool fetch, uint64_t *pa);

typedef enum hub_cpu_stop_reason {
    HUB_CPU_STOP_BREAK,         /* hub_cpu_debug_break() (the debugger's interrupt, the monitor's stop) */
    HUB_CPU_STOP_BREAKPOINT,    /* at a breakpoint: the instruction there has not run */
    HUB_CPU_STOP_STEP,          /* one instruction done (or a trap entered) */
    HUB_CPU_STOP_WATCH,         /* after the access that hit a watchpoint */
} hub_cpu_stop_reason;

typedef enum hub_watch_kind { HUB_WATCH_WRITE = 1, HUB_WATCH_READ = 2, HUB_WATCH_ACCESS = 3 } hub_watch_kind;

struct hub_cpu_debug_event {
    hub_cpu_stop_reason reason;
    uint64_t pc;
    hub_watch_kind watch_kind;  /* HUB_CPU_STOP_WATCH: what the access was, and its (virtual) address */
    uint64_t watch_addr;
};

/*
 * Breakpoints (at a virtual pc) and watchpoints (on [addr, addr + len) virtual, the access that overlaps it):
 * hooks are in place only while one is set, and code translated before is dropped when they change. A
 * watchpoint makes every instruction report to the hub while it is set (slow). Returns 0, -EEXIST, -ENOENT,
 * -ENOSPC (too many).
 */
int hub_cpu_breakpoint_insert(hub_cpu *cpu, uint64_t pc);
int hub_cpu_breakpoint_remove(hub_cpu *cpu, uint64_t pc);
int hub_cpu_watchpoint_insert(hub_cpu *cpu, uint64_t addr, uint64_t len, hub_watch_kind kind);
int hub_cpu_watchpoint_remove(hub_cpu *cpu, uint64_t addr, uint64_t len, hub_watch_kind kind);
void hub_cpu_debug_clear(hub_cpu *cpu);     /* every breakpoint and watchpoint */

/* Put the hart back in its reset state (registers, CSRs, privilege, pc as hub_cpu_new() left them); the
 * interrupt lines keep their levels. Not while it runs. */
void hub_cpu_reset(hub_cpu *cpu);

/* From debug_stop: the next run executes one instruction (interrupts held off), then stops again. */
void hub_cpu_debug_step(hub_cpu *cpu);
/* Stop for the debugger at the next block boundary (async: from a service or idle callback, or before
 * hub_cpu_run() to stop before the first instruction). */
void hub_cpu_debug_break(hub_cpu *cpu);

/* ---- Diagnostics ------------------------------------------------------------------------------------ */

typedef struct hub_cpu_trap_info {
    bool interrupt;
    uint64_t cause;             /* without the interrupt bit */
    uint64_t epc, tval;
    unsigned from_priv, to_priv;
    uint64_t vtime_ns;          /* virtual time (hub_cpu_vtime) */
} hub_cpu_trap_info;

typedef struct hub_cpu_access_info {
    uint64_t addr;              /* physical */
    unsigned size;
    bool write;
    uint64_t value;             /* written, or read (0 when refused) */
    const char *region;         /* name of the region that served it, or NULL where nothing is */
    bool error;                 /* refused: nothing there, or a size the region does not take */
    bool unassigned;            /* ... nothing there */
    uint64_t host_ns;           /* host time the access took (set when HUB_CPU_OBS_MMIO_TIME was asked) */
    uint64_t vtime_ns;          /* virtual time of the access (hub_cpu_vtime) */
} hub_cpu_access_info;

enum {
    HUB_CPU_OBS_TRAP = 1,       /* exceptions and interrupts taken */
    HUB_CPU_OBS_MMIO = 2,       /* every MMIO access */
    HUB_CPU_OBS_MMIO_ERROR = 4, /* MMIO accesses refused (guest errors) */
    HUB_CPU_OBS_BLOCK = 8,      /* every block executed (slow) */
    HUB_CPU_OBS_MMIO_TIME = 16, /* measure each MMIO access's host time */
    HUB_CPU_OBS_PC = 32,        /* give MMIO observations the guest pc (costs a look-up per access) */
    HUB_CPU_OBS_UNIMP = 64,     /* CSR instructions the hart refused */
};

/* What the hart tells an observer; each callback may be NULL. */
struct hub_cpu_observer {
    unsigned events;            /* HUB_CPU_OBS_* */
    void (*trap)(void *opaque, const hub_cpu_trap_info *t);
    /* @pc is the accessing instruction's (0 unless HUB_CPU_OBS_PC), @priv the privilege */
    void (*access)(void *opaque, const hub_cpu_access_info *a, uint64_t pc, unsigned priv);
    void (*block)(void *opaque, uint64_t pc, uint32_t size, unsigned priv);
    /* a CSR instruction was refused, @csr unimplemented or not allowed at @priv (the guest gets an
     * illegal-instruction trap) */
    void (*unimp_csr)(void *opaque, unsigned csr, uint64_t pc, unsigned priv);
};

/*
 * The first exception of the last cascade (each next one taken in the first instructions of the handler the
 * one before entered, as when a trap handler itself faults): what led to a fatal stop. False if none.
 */
bool hub_cpu_first_fault(const hub_cpu *cpu, hub_cpu_trap_info *out);

/* The hart's virtual time now: the clock plus the instructions of the current slice's blocks entered so far
 * (a block counts whole from its start). */
uint64_t hub_cpu_vtime(hub_cpu *cpu);

#endif
