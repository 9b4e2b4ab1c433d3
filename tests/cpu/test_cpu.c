/* The hub's CPU, CLINT, PLIC and finisher, driven by small RISC-V programs (progs/) and by direct accesses. */
#include <criterion/criterion.h>
#include <string.h>
#include <time.h>

#include "harness.h"

static test_machine M;

static void fini(void)
{
    tm_fini(&M);
}

Test(cpu, arithmetic_results_reach_ram, .fini = fini)
{
    tm_init(&M, "arith.bin", NULL);
    cr_assert_eq(tm_run(&M), 0);
    cr_assert_eq(tm_result(&M, 0), 5050);
    cr_assert_eq(tm_result(&M, 1), 1307674368000ull);
    cr_assert_eq((int64_t)tm_result(&M, 2), -1000000007ll / 97);
    cr_assert_eq((int64_t)tm_result(&M, 3), -1000000007ll % 97);
    cr_assert_eq(tm_result(&M, 4), 40);
}

Test(cpu, stop_before_run_is_returned_then_run_resumes, .fini = fini)
{
    tm_init(&M, "arith.bin", NULL);
    hub_cpu_stop(M.cpu, 7);
    cr_assert_eq(tm_run(&M), 7);
    cr_assert_eq(tm_result(&M, 0), 0, "the program must not have run yet");
    cr_assert_eq(tm_run(&M), 0);
    cr_assert_eq(tm_result(&M, 0), 5050);
}

static uint64_t pattern(uint64_t addr, unsigned size)
{
    uint64_t v = 0x1122334455667788ull ^ (addr * 0x0101010101010101ull);
    return size < 8 ? v & ((1ull << (size * 8)) - 1) : v;
}

Test(cpu, mmio_reaches_io_region_with_address_size_and_data, .fini = fini)
{
    tm_init(&M, "mmio.bin", NULL);
    cr_assert_eq(tm_run(&M), 0);
    /* Unicorn hands 8-byte MMIO accesses over as two 4-byte halves, low address first */
    static const struct { uint64_t addr; unsigned size; uint64_t data; int is_write; } want[] = {
        { 0x01, 1, 0xab, 1 }, { 0x12, 2, 0xbeef, 1 }, { 0x24, 4, 0xdeadbeef, 1 },
        { 0x38, 4, 0x89abcdef, 1 }, { 0x3c, 4, 0x01234567, 1 },
        { 0x40, 1, 0, 0 }, { 0x42, 2, 0, 0 }, { 0x44, 4, 0, 0 }, { 0x48, 4, 0, 0 }, { 0x4c, 4, 0, 0 },
    };
    for (unsigned i = 0; i < M.nlog; i++)
        cr_log_info("access %u: %s 0x%lx size %u data 0x%lx", i, M.log[i].is_write ? "write" : "read",
                    M.log[i].addr, M.log[i].size, M.log[i].data);
    cr_assert_eq(M.nlog, 10, "%u accesses", M.nlog);
    for (unsigned i = 0; i < 10; i++) {
        uint64_t data = want[i].is_write ? want[i].data : pattern(want[i].addr, want[i].size);
        cr_assert_eq(M.log[i].addr, want[i].addr, "access %u addr 0x%lx", i, M.log[i].addr);
        cr_assert_eq(M.log[i].size, want[i].size, "access %u size %u", i, M.log[i].size);
        cr_assert_eq(M.log[i].is_write, want[i].is_write, "access %u", i);
        cr_assert_eq(M.log[i].data, data, "access %u data 0x%lx", i, M.log[i].data);
    }
    for (unsigned i = 0; i < 3; i++)
        cr_assert_eq(tm_result(&M, i), pattern(want[5 + i].addr, want[5 + i].size), "load %u", i);
    cr_assert_eq(tm_result(&M, 3), pattern(0x48, 4) | pattern(0x4c, 4) << 32);
    hub_cpu_stats st;
    hub_cpu_get_stats(M.cpu, &st);
    cr_assert_eq(st.mmio_reads, 5);
    cr_assert_geq(st.mmio_writes, 6);   /* 5 to the test device, 1 to the finisher */
}

/* Every access carries the virtual time of its own instruction, not its slice's; a deadline inside a block fires
 * before the access after it, whose instruction then waits for the interrupt. */
Test(cpu, accesses_carry_the_time_of_their_instruction, .fini = fini)
{
    tm_init(&M, "vtime.bin", NULL);
    cr_assert_eq(tm_run(&M), 0);
    static const struct { uint64_t addr, t; } want[] = {
        { 0x10, 10 }, { 0x14, 40 }, { 0x18, 50 }, { 0x18, 60 }, { 0x20, 70 }, { 0x24, 70 }, { 0x28, 90 },
    };
    cr_assert_geq(M.nlog, 8, "%u accesses", M.nlog);
    for (unsigned i = 0; i < 7; i++) {
        cr_assert_eq(M.log[i].addr, want[i].addr, "access %u", i);
        cr_assert_eq(M.log[i].t, want[i].t, "access %u at 0x%lx: %lu ns", i, M.log[i].addr, M.log[i].t);
    }
    cr_assert_eq(tm_result(&M, 1), (1ull << 63) | 7, "a machine timer interrupt");
    cr_assert_eq(tm_result(&M, 0), tm_result(&M, 2), "taken before the access past the deadline (mepc 0x%lx)",
                 tm_result(&M, 0));
    cr_assert_eq(M.log[7].addr, 0x30);
    cr_assert_eq(M.nlog, 8, "the access was made once, after the handler");
}

/* A deferred access is abandoned and made again in the next slice: what came before it in its block ran once,
 * the load returns the device's value, the store reaches the device once. */
Test(cpu, deferred_access_is_made_again_and_nothing_runs_twice, .fini = fini)
{
    tm_init(&M, "defer.bin", NULL);
    M.defer_reads = 1;
    M.defer_writes = 1;
    cr_assert_eq(tm_run(&M), 0);
    cr_assert_eq(M.defer_reads, 0, "the read was deferred");
    cr_assert_eq(M.defer_writes, 0, "the write was deferred");
    cr_assert_eq(tm_result(&M, 0), 1, "the addition before the load ran once");
    cr_assert_eq(tm_result(&M, 1), pattern(0x200, 4) | pattern(0x204, 4) << 32, "the load has the device's value");
    cr_assert_eq(tm_result(&M, 2), 1, "the addition between them ran once");
    unsigned writes = 0;
    for (unsigned i = 0; i < M.nlog; i++)
        if (M.log[i].is_write && M.log[i].addr == 0x208) {
            writes++;
            cr_assert_eq(M.log[i].data, 0x5a5a);
        }
    cr_assert_eq(writes, 1, "the store reached the device once");
    hub_cpu_stats st;
    hub_cpu_get_stats(M.cpu, &st);
    cr_assert_eq(st.mmio_deferred, 2);
}

Test(cpu, ecall_and_ebreak_trap_with_mcause_and_mepc, .fini = fini)
{
    tm_init(&M, "ecall.bin", NULL);
    cr_assert_eq(tm_run(&M), 0);
    cr_assert_eq(tm_result(&M, 0), 11, "ecall from M: mcause %lu", tm_result(&M, 0));
    cr_assert_eq(tm_result(&M, 1), tm_result(&M, 6));
    cr_assert_eq(tm_result(&M, 2), 3, "ebreak: mcause %lu", tm_result(&M, 2));
    cr_assert_eq(tm_result(&M, 3), tm_result(&M, 7));
    cr_assert_eq(tm_result(&M, 4), 3);
    cr_assert_eq(tm_result(&M, 5), tm_result(&M, 8), "c.ebreak mepc 0x%lx", tm_result(&M, 5));
}

Test(cpu, csr_probe_traps_illegal_instruction_and_resumes, .fini = fini)
{
    tm_init(&M, "csrprobe.bin", NULL);
    cr_assert_eq(tm_run(&M), 0);
    cr_assert_eq(tm_result(&M, 0), 2);
    cr_assert_eq(tm_result(&M, 1), tm_result(&M, 5));
    cr_assert_eq(tm_result(&M, 2), 2);
    cr_assert_eq(tm_result(&M, 3), tm_result(&M, 6));
    cr_assert_eq(tm_result(&M, 4), 0x77, "the probed CSR's destination changed: 0x%lx", tm_result(&M, 4));
    cr_assert_eq(tm_result(&M, 7), 0x600d);
    cr_assert_leq(tm_result(&M, 8), tm_result(&M, 9), "rdtime %lu before mtime %lu", tm_result(&M, 9),
                  tm_result(&M, 8));
    cr_assert_leq(tm_result(&M, 9), tm_result(&M, 10));
    cr_assert_gt(tm_result(&M, 9), 0);
    cr_assert_eq(tm_result(&M, 11), 2, "rdtime must not reach the trap handler");
}

Test(cpu, s_mode_ecall_reaches_m_mode_and_delegated_trap_reaches_s_mode, .fini = fini)
{
    tm_init(&M, "smode.bin", NULL);
    cr_assert_eq(tm_run(&M), 0);
    cr_assert_eq(tm_result(&M, 0), 9, "ecall from S: mcause %lu", tm_result(&M, 0));
    cr_assert_eq((tm_result(&M, 1) >> 11) & 3, 1, "MPP after the S ecall: mstatus 0x%lx", tm_result(&M, 1));
    cr_assert_eq(tm_result(&M, 7), tm_result(&M, 2));
    cr_assert_eq(tm_result(&M, 3), 2, "delegated illegal instruction: scause %lu", tm_result(&M, 3));
    cr_assert_eq(tm_result(&M, 4), tm_result(&M, 6));
    cr_assert(tm_result(&M, 5) & (1 << 8), "SPP should say S: sstatus 0x%lx", tm_result(&M, 5));
    cr_assert_eq(tm_result(&M, 8), 9);
}

Test(cpu, sv39_translation_faults_devices_and_u_mode_ecall, .fini = fini)
{
    tm_init(&M, "paging.bin", NULL);
    cr_assert_eq(tm_run(&M), 0);
    cr_assert_eq(tm_result(&M, 0), 13, "page fault: scause %lu", tm_result(&M, 0));
    cr_assert_eq(tm_result(&M, 1), 0x40000018, "page fault: stval 0x%lx", tm_result(&M, 1));
    cr_assert_eq(tm_result(&M, 2), tm_result(&M, 8), "page fault: sepc 0x%lx", tm_result(&M, 2));
    cr_assert_eq(tm_result(&M, 7), pattern(0x40, 1), "device load through a page: 0x%lx", tm_result(&M, 7));
    cr_assert_eq(tm_result(&M, 3), 5, "unassigned: scause %lu", tm_result(&M, 3));
    /* the MMIO path only knows the physical address (see README.md) */
    cr_assert_eq(tm_result(&M, 4), 0x20000008ull, "unassigned: stval 0x%lx", tm_result(&M, 4));
    cr_assert_eq(tm_result(&M, 5), tm_result(&M, 9), "unassigned: sepc 0x%lx", tm_result(&M, 5));
    cr_assert_eq(tm_result(&M, 10), 8, "ecall from U: mcause %lu", tm_result(&M, 10));
    cr_assert_geq(tm_result(&M, 11), 0xC0000000ull, "mepc 0x%lx is the user alias", tm_result(&M, 11));
}

Test(cpu, hub_reads_instructions_through_the_page_tables_never_through_devices, .fini = fini)
{
    tm_init(&M, "hubread.bin", NULL);
    cr_assert_eq(tm_run(&M), 0);
    for (unsigned i = 0; i < M.nlog; i++)
        cr_log_error("device access %u: %s 0x%lx size %u", i, M.log[i].is_write ? "write" : "read", M.log[i].addr,
                     M.log[i].size);
    cr_assert_eq(M.nlog, 0, "the test device at the virtual pc's number was accessed %u times", M.nlog);
    cr_assert_geq(tm_result(&M, 0), 0x100000, "rdtime in S-mode under Sv39 reads the CLINT: 0x%lx",
                  tm_result(&M, 0));
    cr_assert_eq(tm_result(&M, 1), 0x7c0025f3, "32-bit illegal instruction: mtval 0x%lx", tm_result(&M, 1));
    cr_assert_eq(tm_result(&M, 2), tm_result(&M, 8), "mepc 0x%lx", tm_result(&M, 2));
    cr_assert_eq(tm_result(&M, 3), 0x6101, "16-bit illegal instruction: mtval 0x%lx", tm_result(&M, 3));
    cr_assert_eq(tm_result(&M, 4), tm_result(&M, 9), "mepc 0x%lx", tm_result(&M, 4));
    cr_assert_eq(tm_result(&M, 7), 2, "illegal instructions trapped: %lu (rdtime must not)", tm_result(&M, 7));
    cr_assert_eq(tm_result(&M, 5), 0x8000000000000007ull, "mcause 0x%lx", tm_result(&M, 5));
    cr_assert_eq(tm_result(&M, 6), tm_result(&M, 10) + 4, "timer taken after the WFI: mepc 0x%lx", tm_result(&M, 6));
    cr_assert_lt(tm_result(&M, 8), 0x10001000ull, "the S code runs at its virtual address 0x%lx", tm_result(&M, 8));
    hub_cpu_stats st;
    hub_cpu_get_stats(M.cpu, &st);
    cr_assert_geq(st.wfi_waits, 1);
}

Test(cpu, interrupt_is_taken_right_after_what_makes_it_deliverable, .fini = fini)
{
    static const struct { uint64_t cause; const char *what; } want[] = {
        { 0x8000000000000007ull, "csrs mstatus.MIE, MTIP pending" },
        { 0x8000000000000003ull, "csrs mie.MSIE, MSIP pending" },
        { 0x8000000000000003ull, "store to CLINT msip" },
        { 0x8000000000000007ull, "8-byte store to CLINT mtimecmp" },
        { 0x800000000000000bull, "store to a PLIC enable" },
        { 0x800000000000000bull, "store to the PLIC threshold" },
        { 0x800000000000000bull, "store to a PLIC priority" },
        { 0x800000000000000bull, "device store raising its line" },
        { 0x800000000000000bull, "c.sw to the device" },
        { 0x800000000000000bull, "device store, claimed not completed" },
        { 0x800000000000000bull, "PLIC complete with the line still high" },
        { 0x800000000000000bull, "lw whose read raises a line" },
        { 0x800000000000000bull, "c.lw whose read raises a line" },
        { 0x800000000000000bull, "ld (two MMIO halves) whose read raises a line" },
        { 0x8000000000000003ull, "mret restoring MIE, MSIP pending" },
        { 0x800000000000000bull, "flw whose read raises a line (next block)" },
        { 0x8000000000000001ull, "csrc mideleg: a pending SSI becomes M's" },
        { 0x8000000000000005ull, "S: csrs sstatus.SIE, STIP pending" },
        { 0x8000000000000009ull, "S: device store raising SEIP" },
        { 0x8000000000000005ull, "S: csrs sie.STIE, STIP pending" },
        { 0x8000000000000001ull, "S: csrs sip.SSIP, SSIE on" },
    };
    tm_init(&M, "irqexact.bin", NULL);
    cr_assert_eq(tm_run(&M), 0, "the program failed");
    unsigned n = sizeof(want) / sizeof(want[0]);
    cr_assert_eq(tm_result(&M, 90), n, "%lu traps", tm_result(&M, 90));
    for (unsigned k = 0; k < n; k++) {
        cr_expect_eq(tm_result(&M, 2 * k), want[k].cause, "%u (%s): cause 0x%lx", k, want[k].what,
                     tm_result(&M, 2 * k));
        cr_expect_eq(tm_result(&M, 2 * k + 1), tm_result(&M, 50 + k), "%u (%s): epc 0x%lx, expected 0x%lx", k,
                     want[k].what, tm_result(&M, 2 * k + 1), tm_result(&M, 50 + k));
    }
    uint64_t word = (uint64_t)(int64_t)(int32_t)pattern(0x180, 4);     /* lw sign-extends */
    cr_assert_eq(tm_result(&M, 80), word, "lw value 0x%lx", tm_result(&M, 80));
    cr_assert_eq(tm_result(&M, 81), word, "c.lw value 0x%lx", tm_result(&M, 81));
    cr_assert_eq(tm_result(&M, 82), pattern(0x180, 4) | pattern(0x184, 4) << 32, "ld value 0x%lx",
                 tm_result(&M, 82));
    cr_assert_eq(tm_result(&M, 83), word, "flw value 0x%lx", tm_result(&M, 83));
}

Test(cpu, m_mode_idle_idiom_wakes_with_mie_off_and_takes_the_interrupt_at_the_enable, .fini = fini)
{
    tm_init(&M, "idle.bin", NULL);
    cr_assert_eq(tm_run(&M), 0);
    cr_assert_eq(tm_result(&M, 0), 0x8000000000000007ull, "mcause 0x%lx", tm_result(&M, 0));
    cr_assert_eq(tm_result(&M, 1), tm_result(&M, 2), "mepc 0x%lx, the enable is followed by 0x%lx",
                 tm_result(&M, 1), tm_result(&M, 2));
    cr_assert_eq(tm_result(&M, 3), 1, "%lu interrupts", tm_result(&M, 3));
    cr_assert_eq(tm_result(&M, 4), 2, "%lu rounds: the WFI must not return before the timer", tm_result(&M, 4));
    cr_assert_geq(vclock_now(&M.clock), 5000000ull, "virtual time %lu ns", vclock_now(&M.clock));
}

Test(cpu, self_modifying_code_and_code_written_over_old_code_run_as_written, .fini = fini)
{
    static const struct { uint64_t v; const char *what; } want[] = {
        { 1, "M's routine before" }, { 2, "an instruction patched later in the same block" },
        { 10, "a routine before it is copied over" }, { 20, "the routine copied over it" },
        { 30, "code written to a fresh page" }, { 31, "the same page rewritten" },
        { 40, "code written through an alias" }, { 41, "rewritten through the alias" },
        { 2, "M's routine rewritten by M after S stored to the same number" },
    };
    tm_init(&M, "smc.bin", NULL);
    cr_assert_eq(tm_run(&M), 0);
    for (unsigned i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        cr_expect_eq(tm_result(&M, i), want[i].v, "slot %u (%s): %lu", i, want[i].what, tm_result(&M, i));
}

Test(cpu, code_a_device_writes_over_code_that_ran_is_run_as_written, .fini = fini)
{
    static const struct { uint64_t v; const char *what; } want[] = {
        { 10, "M's routine before" }, { 11, "rewritten by DMA inside an access" },
        { 20, "a second routine before" }, { 21, "rewritten by DMA at a slice boundary" },
        { 30, "S's routine before, through a virtual address" }, { 31, "rewritten by physical address" },
    };
    tm_init(&M, "dmacode.bin", NULL);
    cr_assert_eq(tm_run(&M), 0);
    for (unsigned i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        cr_expect_eq(tm_result(&M, i), want[i].v, "slot %u (%s): %lu", i, want[i].what, tm_result(&M, i));
    hub_cpu_stats st;
    hub_cpu_get_stats(M.cpu, &st);
    cr_expect_eq(st.code_dropped, 3, "three pages with code were written from outside: %lu", st.code_dropped);
    cr_expect_geq(st.fences, 1, "the fence was translated with a host barrier");
}

/* The S-mode program of hivirt.S under Sv39 or Sv57: see the program for the slots. */
static void check_high_virtual(const char *prog, uint64_t sva)
{
    tm_init(&M, prog, NULL);
    cr_assert_eq(tm_run(&M), 0, "the program failed (poweroff code)");
    cr_assert_geq(tm_result(&M, 0), 0x100000, "rdtime 0x%lx", tm_result(&M, 0));
    cr_assert_eq(tm_result(&M, 1), 0x5e5e1234abcdull, "high user-half address: 0x%lx", tm_result(&M, 1));
    cr_assert_eq(tm_result(&M, 2), 0x8000000000000005ull, "timer: scause 0x%lx", tm_result(&M, 2));
    cr_assert_eq(tm_result(&M, 3), tm_result(&M, 4), "timer: sepc 0x%lx, the enable is followed by 0x%lx",
                 tm_result(&M, 3), tm_result(&M, 4));
    cr_assert_eq(tm_result(&M, 5), 0x8000000000000009ull, "external: scause 0x%lx", tm_result(&M, 5));
    cr_assert_eq(tm_result(&M, 6), tm_result(&M, 7), "external: sepc 0x%lx, the enable is followed by 0x%lx",
                 tm_result(&M, 6), tm_result(&M, 7));
    cr_assert_eq(tm_result(&M, 8), 5, "claimed %lu", tm_result(&M, 8));
    cr_assert_geq(tm_result(&M, 9), sva, "the WFI ran at 0x%lx", tm_result(&M, 9));
    cr_assert_lt(tm_result(&M, 9), sva + 0x3000);
    cr_assert_eq(tm_result(&M, 10), 4, "M traps: %lu", tm_result(&M, 10));
    hub_cpu_stats st;
    hub_cpu_get_stats(M.cpu, &st);
    cr_assert_geq(st.wfi_waits, 2);
}

Test(cpu, sv39_s_mode_at_a_high_address_waits_and_takes_timer_and_external_interrupts, .fini = fini)
{
    check_high_virtual("hivirt39.bin", 0xffffffff80000000ull);
}

Test(cpu, sv57_s_mode_at_a_high_address_waits_and_takes_timer_and_external_interrupts, .fini = fini)
{
    check_high_virtual("hivirt57.bin", 0xff60000000000000ull);
}

Test(cpu, clint_timer_interrupt_at_mtimecmp, .fini = fini)
{
    tm_init(&M, "timer.bin", NULL);
    cr_assert_eq(tm_run(&M), 0);
    uint64_t cmp = tm_result(&M, 0), seen = tm_result(&M, 1);
    cr_assert_eq(tm_result(&M, 2), 0x8000000000000007ull, "mcause 0x%lx", tm_result(&M, 2));
    cr_assert_geq(seen, cmp);
    /* deadlines end a slice on time: the handler runs within a tick (100 ns = 10 instructions) or two */
    cr_assert_leq(seen - cmp, 2, "interrupt taken %lu ticks late", seen - cmp);
    cr_assert(tm_result(&M, 4) & (1 << 7), "mip.MTIP 0x%lx", tm_result(&M, 4));
    cr_assert_gt(tm_result(&M, 3), 100);
}

Test(cpu, wfi_jumps_virtual_time_to_the_timer, .fini = fini)
{
    tm_init(&M, "wfi.bin", NULL);
    cr_assert_eq(tm_run(&M), 0);
    cr_assert_geq(tm_result(&M, 1), tm_result(&M, 0));
    cr_assert_geq(vclock_now(&M.clock), 1000000000ull);
    hub_cpu_stats st;
    hub_cpu_get_stats(M.cpu, &st);
    /* one second of virtual time at 0.1 instructions/ns would be 1e8 instructions without the jump */
    cr_assert_lt(st.instructions, 1000000, "%lu instructions", st.instructions);
    cr_assert_geq(st.wfi_waits, 1);
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

Test(cpu, idle_sleep_makes_wfi_take_the_timers_host_time, .fini = fini)
{
    hub_cpu_config cfg = { .idle_sleep = true };
    tm_init(&M, "wfishort.bin", &cfg);
    double t0 = mono_s();
    cr_assert_eq(tm_run(&M), 0);
    double wall = mono_s() - t0;
    cr_assert_geq(tm_result(&M, 1), tm_result(&M, 0));
    cr_assert_geq(vclock_now(&M.clock), 20000000ull, "virtual time %lu ns", vclock_now(&M.clock));
    /* the hart slept through 20 ms of virtual time: at least that much host time passed (no upper bound) */
    cr_assert_geq(wall, 0.019, "%.3f s", wall);
    hub_cpu_stats st;
    hub_cpu_get_stats(M.cpu, &st);
    cr_assert_geq(st.idle_ns, 15000000ull, "slept %lu ns", st.idle_ns);
}

Test(cpu, plic_external_interrupt_claim_and_complete, .fini = fini)
{
    tm_init(&M, "plic.bin", NULL);
    cr_assert_eq(tm_run(&M), 0);
    cr_assert_eq(tm_result(&M, 0), 0x800000000000000bull, "mcause 0x%lx", tm_result(&M, 0));
    cr_assert_eq(tm_result(&M, 1), 5);
    cr_assert_eq(tm_result(&M, 2), 0);
    cr_assert_eq(tm_result(&M, 3), 0);
}

Test(cpu, simultaneous_interrupts_are_taken_in_spec_priority, .fini = fini)
{
    tm_init(&M, "irqprio.bin", NULL);
    cr_assert_eq(tm_run(&M), 0);
    cr_assert_eq(tm_result(&M, 0), 0x800000000000000bull, "first: mcause 0x%lx", tm_result(&M, 0));
    cr_assert_eq(tm_result(&M, 1), 0x8000000000000007ull, "second: mcause 0x%lx", tm_result(&M, 1));
}

Test(cpu, delegated_supervisor_external_interrupt_reaches_s_mode, .fini = fini)
{
    tm_init(&M, "sirq.bin", NULL);
    cr_assert_eq(tm_run(&M), 0);
    cr_assert_eq(tm_result(&M, 0), 0x8000000000000009ull, "scause 0x%lx", tm_result(&M, 0));
    cr_assert_geq(tm_result(&M, 1), TM_RAM_BASE, "sepc 0x%lx", tm_result(&M, 1));
    cr_assert_eq(tm_result(&M, 2), 5, "claimed %lu on the S context", tm_result(&M, 2));
    cr_assert_eq(tm_result(&M, 3), 9, "ecall from S: mcause %lu", tm_result(&M, 3));
}

Test(cpu, wallclock_mode_waits_for_the_timer, .fini = fini)
{
    hub_cpu_config cfg = { .wallclock = true };
    tm_init(&M, "wfishort.bin", &cfg);
    cr_assert_eq(tm_run(&M), 0);
    cr_assert_geq(tm_result(&M, 1), tm_result(&M, 0));
    cr_assert_geq(vclock_now(&M.clock), 20000000ull, "virtual time %lu ns", vclock_now(&M.clock));
}

Test(cpu, access_faults_and_poweroff_fail_code, .fini = fini)
{
    tm_init(&M, "fault.bin", NULL);
    cr_assert_eq(tm_run(&M), 42);
    static const struct { uint64_t cause, addr; unsigned insn_slot; } want[] = {
        { 5, 0x30000008, 10 },      /* load from unmapped memory */
        { 7, 0x30000010, 11 },      /* store to unmapped memory */
        { 5, TM_BYTEREG, 12 },      /* word load from a byte-wide register */
    };
    for (unsigned i = 0; i < 3; i++) {
        cr_assert_eq(tm_result(&M, 3 * i), want[i].cause, "fault %u: mcause %lu", i, tm_result(&M, 3 * i));
        cr_assert_eq(tm_result(&M, 3 * i + 1), tm_result(&M, want[i].insn_slot), "fault %u: mepc 0x%lx", i,
                     tm_result(&M, 3 * i + 1));
        cr_assert_eq(tm_result(&M, 3 * i + 2), want[i].addr, "fault %u: mtval 0x%lx", i,
                     tm_result(&M, 3 * i + 2));
    }
    cr_assert_eq(tm_result(&M, 13), 0x5a, "the faulting load wrote its register: 0x%lx", tm_result(&M, 13));
    /* the device saw only the byte store, never the refused word load */
    cr_assert_eq(M.nlog, 1);
    cr_assert_eq(M.log[0].addr, 0x800);
    cr_assert_eq(M.log[0].data, 0x77);
    cr_assert_eq(M.log[0].is_write, 1);
}

/* ---- controllers through the address space, without running the hart ---- */

static uint32_t rd32(hwaddr a)
{
    return address_space_ldl_le(&M.as, a, MEMTXATTRS_UNSPECIFIED, NULL);
}

static void wr32(hwaddr a, uint32_t v)
{
    address_space_stl_le(&M.as, a, v, MEMTXATTRS_UNSPECIFIED, NULL);
}

#define PLIC_CLAIM0 (TM_PLIC + 0x200004)

Test(plic, claim_order_threshold_and_level_rearm, .fini = fini)
{
    tm_init(&M, "arith.bin", NULL);
    wr32(TM_PLIC + 4 * 3, 2);
    wr32(TM_PLIC + 4 * 7, 5);
    wr32(TM_PLIC + 4 * 9, 5);
    wr32(TM_PLIC + 0x2000, (1 << 3) | (1 << 7) | (1 << 9));
    hub_plic_set_irq(M.plic, 3, 1);
    hub_plic_set_irq(M.plic, 9, 1);
    hub_plic_set_irq(M.plic, 7, 1);
    cr_assert_eq(rd32(TM_PLIC + 0x1000), (1u << 3) | (1u << 7) | (1u << 9));
    cr_assert_eq(rd32(PLIC_CLAIM0), 7, "equal priorities: lowest id first");
    cr_assert_eq(rd32(PLIC_CLAIM0), 9);
    wr32(TM_PLIC + 0x200000, 2);                /* threshold 2 hides source 3 (priority 2) */
    cr_assert_eq(rd32(PLIC_CLAIM0), 0);
    wr32(TM_PLIC + 0x200000, 1);
    cr_assert_eq(rd32(PLIC_CLAIM0), 3);
    cr_assert_eq(rd32(TM_PLIC + 0x1000), 0, "claimed sources are not pending");
    hub_plic_set_irq(M.plic, 9, 0);
    wr32(PLIC_CLAIM0, 7);                       /* line 7 still high: pending again */
    wr32(PLIC_CLAIM0, 9);                       /* line 9 low: stays idle */
    cr_assert_eq(rd32(TM_PLIC + 0x1000), 1u << 7);
    cr_assert_eq(rd32(PLIC_CLAIM0), 7);
}

Test(plic, s_context_has_its_own_enables, .fini = fini)
{
    tm_init(&M, "arith.bin", NULL);
    wr32(TM_PLIC + 4 * 4, 1);
    wr32(TM_PLIC + 0x2080, 1 << 4);             /* context 1 (S) only */
    hub_plic_set_irq(M.plic, 4, 1);
    cr_assert_eq(rd32(PLIC_CLAIM0), 0);
    cr_assert_eq(rd32(TM_PLIC + 0x201004), 4);
    cr_assert_eq(rd32(TM_PLIC + 0x2080), 1 << 4);
}

Test(plic, reset_clears_programming_and_keeps_high_lines_pending, .fini = fini)
{
    tm_init(&M, "arith.bin", NULL);
    wr32(TM_PLIC + 4 * 5, 3);
    wr32(TM_PLIC + 4 * 6, 3);
    wr32(TM_PLIC + 0x2000, (1 << 5) | (1 << 6));
    wr32(TM_PLIC + 0x200000, 1);
    hub_plic_set_irq(M.plic, 5, 1);
    hub_plic_set_irq(M.plic, 6, 1);
    cr_assert_eq(rd32(PLIC_CLAIM0), 5);         /* 5 claimed, 6 pending */
    hub_plic_set_irq(M.plic, 6, 0);
    hub_plic_reset(M.plic);
    cr_assert_eq(rd32(TM_PLIC + 4 * 5), 0);
    cr_assert_eq(rd32(TM_PLIC + 0x2000), 0);
    cr_assert_eq(rd32(TM_PLIC + 0x200000), 0);
    cr_assert_eq(rd32(TM_PLIC + 0x1000), 1u << 5, "line 5 is high, its claim is gone; line 6 is low");
    cr_assert_eq(rd32(PLIC_CLAIM0), 0, "nothing enabled after the reset");
    wr32(TM_PLIC + 4 * 5, 1);
    wr32(TM_PLIC + 0x2000, 1 << 5);
    cr_assert_eq(rd32(PLIC_CLAIM0), 5);
}

Test(clint, reset_forgets_msip_mtimecmp_and_written_mtime, .fini = fini)
{
    tm_init(&M, "arith.bin", NULL);
    vclock_advance(&M.clock, 1000000);                  /* 1 ms = 10000 ticks */
    wr32(TM_CLINT + 0x0, 1);
    wr32(TM_CLINT + 0xbffc, 7);
    address_space_stq_le(&M.as, TM_CLINT + 0x4000, 0, MEMTXATTRS_UNSPECIFIED, NULL);
    hub_clint_reset(M.clint);
    cr_assert_eq(rd32(TM_CLINT + 0x0), 0);
    cr_assert_eq(address_space_ldq_le(&M.as, TM_CLINT + 0x4000, MEMTXATTRS_UNSPECIFIED, NULL), UINT64_MAX);
    cr_assert_eq(address_space_ldq_le(&M.as, TM_CLINT + 0xbff8, MEMTXATTRS_UNSPECIFIED, NULL), 10000);
}

Test(clint, mtime_counts_in_halves_and_accepts_writes, .fini = fini)
{
    tm_init(&M, "arith.bin", NULL);
    vclock_advance(&M.clock, 1000000000ull * 3 + 500);  /* 3 s + 500 ns = 30000005 ticks at 10 MHz */
    uint64_t mt = address_space_ldq_le(&M.as, TM_CLINT + 0xbff8, MEMTXATTRS_UNSPECIFIED, NULL);
    cr_assert_eq(mt, 30000005);
    cr_assert_eq(rd32(TM_CLINT + 0xbff8), 30000005);
    cr_assert_eq(rd32(TM_CLINT + 0xbffc), 0);
    wr32(TM_CLINT + 0xbffc, 1);                         /* mtime += 2^32 via the high half */
    mt = address_space_ldq_le(&M.as, TM_CLINT + 0xbff8, MEMTXATTRS_UNSPECIFIED, NULL);
    cr_assert_eq(mt, (1ull << 32) | 30000005);
    wr32(TM_CLINT + 0x4000, 0xffffffff);                /* low half of mtimecmp */
    cr_assert_eq(address_space_ldq_le(&M.as, TM_CLINT + 0x4000, MEMTXATTRS_UNSPECIFIED, NULL),
                 UINT64_MAX);
}
