/*
 * randread DEVICE BLOCK COUNT: COUNT reads of BLOCK bytes at random BLOCK-aligned offsets of DEVICE, with
 * O_DIRECT (each read is one request to the disk), then "randread: COUNT reads of BLOCK bytes" on stdout.
 * A static RISC-V Linux program without a C library (system calls by ecall), built with the bare-metal
 * riscv64-unknown-elf toolchain and copied onto the benchmark's disk image.
 */
#include <stdint.h>

#define SYS_openat 56
#define SYS_lseek 62
#define SYS_write 64
#define SYS_pread64 67
#define SYS_exit 93
#define AT_FDCWD (-100)
#define O_RDONLY 0
#define O_DIRECT 040000
#define SEEK_END 2

static long sys4(long n, long a, long b, long c, long d)
{
    register long a0 __asm__("a0") = a, a1 __asm__("a1") = b, a2 __asm__("a2") = c, a3 __asm__("a3") = d;
    register long a7 __asm__("a7") = n;
    __asm__ volatile("ecall" : "+r"(a0) : "r"(a1), "r"(a2), "r"(a3), "r"(a7) : "memory");
    return a0;
}

static void out(const char *s)
{
    long n = 0;
    while (s[n])
        n++;
    sys4(SYS_write, 1, (long)s, n, 0);
}

static __attribute__((noreturn)) void die(const char *s)
{
    out("randread: ");
    out(s);
    out("\n");
    sys4(SYS_exit, 1, 0, 0, 0);
    __builtin_unreachable();
}

static unsigned long num(const char *s)
{
    unsigned long v = 0;
    if (!*s)
        die("usage: randread DEVICE BLOCK COUNT");
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            die("usage: randread DEVICE BLOCK COUNT");
        v = v * 10 + (unsigned long)(*s - '0');
    }
    return v;
}

static char *dec(unsigned long v, char *end)
{
    *--end = 0;
    do
        *--end = (char)('0' + v % 10);
    while (v /= 10);
    return end;
}

static uint8_t buf[1 << 20] __attribute__((aligned(4096)));

int main(long argc, char **argv);
int main(long argc, char **argv)
{
    if (argc != 4)
        die("usage: randread DEVICE BLOCK COUNT");
    unsigned long block = num(argv[2]), count = num(argv[3]);
    if (!block || block % 512 || block > sizeof(buf))
        die("BLOCK must be a multiple of 512 up to 1 MiB");
    long fd = sys4(SYS_openat, AT_FDCWD, (long)argv[1], O_RDONLY | O_DIRECT, 0);
    if (fd < 0)
        die("cannot open the device");
    long size = sys4(SYS_lseek, fd, 0, SEEK_END, 0);
    if (size < (long)block)
        die("the device is smaller than one block");
    unsigned long blocks = (unsigned long)size / block;
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (unsigned long i = 0; i < count; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if (sys4(SYS_pread64, fd, (long)buf, (long)block, (long)((x % blocks) * block)) != (long)block)
            die("a read failed");
    }
    char a[24], b[24];
    out("randread: ");
    out(dec(count, a + sizeof(a)));
    out(" reads of ");
    out(dec(block, b + sizeof(b)));
    out(" bytes\n");
    return 0;
}

/* The kernel starts us with argc at sp, argv after it. */
__asm__(".globl _start\n"
        "_start:\n"
        "  ld a0, 0(sp)\n"
        "  addi a1, sp, 8\n"
        "  andi sp, sp, -16\n"
        "  call main\n"
        "  li a7, 93\n"
        "  ecall\n");
