/*
 * libFuzzer target: split virtqueues from the device's side (sdk/src/virtq.c) over guest memory the input
 * writes, as a hostile driver could leave it: descriptor tables, indirect tables, available and used rings,
 * indices, and the state a previous device process left (journal, used index). The device takes chains until
 * there are none or the driver's error is found, returns some of them, decides on interrupts and asks for
 * notifications. Whatever the bytes: no crash, no access outside the grant (every buffer handed out is checked
 * against it), no loop, no chain longer than the queue size, and an error always says why.
 *
 * Input (little-endian; missing bytes are zero):
 *   [0] log2 of the queue size (mod 11)   [1] flags: 1 indirect, 2 event index, 4 read-only grant, 8 restarted
 *   [2..7] u16 offsets of the descriptor table, available ring and used ring in RAM
 *   [8..11] u16 start and u16 length of the grant in RAM (length 0: all of it)
 *   [12..19] u64 pop journal   [20..23] u16 last_avail, u16 used_idx of the state
 *   [24...] RAM (64 KiB at 0x80000000)
 *
 * Built by scripts/fuzz.sh with clang; with -DFUZZ_MAKE_CORPUS instead, main(DIR) writes the seed corpus.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "virtq.h"

#define RAM_BASE 0x80000000u
#define RAM_SIZE 0x10000u
#define HEADER 24u

#ifndef FUZZ_MAKE_CORPUS
static uint8_t ram[RAM_SIZE];
static uint64_t grant_lo, grant_hi;
static bool grant_ro;

static void *map(void *ctx, uint64_t addr, uint64_t len, bool write)
{
    (void)ctx;
    if (addr < grant_lo || addr > grant_hi || len > grant_hi - addr || (write && grant_ro))
        return NULL;
    return ram + (addr - RAM_BASE);
}

static uint16_t u16at(const uint8_t *h, unsigned off)
{
    return (uint16_t)(h[off] | h[off + 1] << 8);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t h[HEADER] = { 0 };
    memcpy(h, data, size < HEADER ? size : HEADER);
    memset(ram, 0, sizeof(ram));
    if (size > HEADER)
        memcpy(ram, data + HEADER, size - HEADER < RAM_SIZE ? size - HEADER : RAM_SIZE);
    uint32_t num = 1u << (h[0] % 11);
    uint16_t glo = u16at(h, 8), glen = u16at(h, 10);
    grant_lo = RAM_BASE + glo;
    grant_hi = glen ? grant_lo + glen : RAM_BASE + RAM_SIZE;
    if (grant_hi > RAM_BASE + RAM_SIZE)
        grant_hi = RAM_BASE + RAM_SIZE;
    grant_ro = h[1] & 4;

    static virtq_state st;
    memset(&st, 0, sizeof(st));
    st.num = num;
    st.ready = 1;
    st.desc = RAM_BASE + u16at(h, 2);
    st.driver = RAM_BASE + u16at(h, 4);
    st.device = RAM_BASE + u16at(h, 6);
    memcpy(&st.pop_journal, h + 12, 8);
    st.last_avail = u16at(h, 20);
    st.used_idx = u16at(h, 22);
    virtq q = { .st = &st, .indirect = h[1] & 1, .event_idx = h[1] & 2, .map = map };
    char err[256];
    err[0] = 0;
    if (virtq_start(&q, err, sizeof(err)) < 0) {
        if (!err[0])
            abort();
        return 0;
    }
    if ((h[1] & 8) && virtq_recover(&q, err, sizeof(err)) < 0) {
        if (!err[0])
            abort();
        return 0;
    }
    static struct iovec iov[PLX_VIRTIO_QUEUE_SIZE_MAX];
    static uint64_t addr[PLX_VIRTIO_QUEUE_SIZE_MAX];
    virtq_chain c = { .iov = iov, .addr = addr };
    for (unsigned round = 0; round < 2 * num + 2; round++) {
        err[0] = 0;
        int r = virtq_pop(&q, &c, err, sizeof(err));
        if (r < 0) {
            if (!err[0])
                abort();    /* an error without words */
            break;
        }
        if (r == 0) {
            if (!virtq_arm_notify(&q))
                break;
            continue;
        }
        if (c.n_out + c.n_in > num || !virtq_inflight(&st, c.head))
            abort();
        size_t in_len = 0;
        for (unsigned i = 0; i < c.n_out + c.n_in; i++) {
            uint8_t *p = iov[i].iov_base;
            if (p < ram || p + iov[i].iov_len > ram + RAM_SIZE || addr[i] < grant_lo ||
                addr[i] + iov[i].iov_len > grant_hi || (uint64_t)(p - ram) != addr[i] - RAM_BASE)
                abort();    /* a buffer outside the grant */
            if (i >= c.n_out) {
                memset(p, 0xee, iov[i].iov_len);    /* the device writes what it may */
                in_len += iov[i].iov_len;
            }
        }
        if (in_len != c.in_len)
            abort();
        if (round % 2 == 0) {
            virtq_push(&q, c.head, (uint32_t)in_len);
            if (virtq_inflight(&st, c.head))
                abort();
            (void)virtq_need_interrupt(&q);
        }
    }
    virtq_stop(&q);
    return 0;
}
#else
/* Seeds: a queue of 8 at 0x100/0x200/0x300 with a two-buffer chain, the same through an indirect table,
 * a loop, and a restarted device with a journal. */
static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void desc(uint8_t *r, uint32_t at, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
    memcpy(r + at, &addr, 8);
    memcpy(r + at + 8, &len, 4);
    memcpy(r + at + 12, &flags, 2);
    memcpy(r + at + 14, &next, 2);
}

static void write_seed(const char *dir, const char *name, const uint8_t *h, const uint8_t *r, size_t rlen)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(h, 1, HEADER, f) != HEADER || fwrite(r, 1, rlen, f) != rlen || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    static uint8_t r[0x1000];
    uint8_t h[HEADER] = { 3, 1 | 2 };
    put16(h + 2, 0x100);
    put16(h + 4, 0x200);
    put16(h + 6, 0x300);
    /* direct: head 0 -> 1, readable 16 then writable 32 */
    memset(r, 0, sizeof(r));
    desc(r, 0x100, RAM_BASE + 0x800, 16, 1, 1);
    desc(r, 0x110, RAM_BASE + 0x900, 32, 2, 0);
    put16(r + 0x200 + 2, 1);
    put16(r + 0x200 + 4, 0);
    write_seed(argv[1], "direct", h, r, sizeof(r));
    /* indirect: head 2 -> table at 0x2800 with two entries */
    desc(r, 0x120, RAM_BASE + 0xc00, 32, 4, 0);
    desc(r, 0xc00, RAM_BASE + 0x800, 16, 1, 1);
    desc(r, 0xc10, RAM_BASE + 0x900, 32, 2, 0);
    put16(r + 0x200 + 2, 2);
    put16(r + 0x200 + 6, 2);
    write_seed(argv[1], "indirect", h, r, sizeof(r));
    /* a loop: 3 -> 4 -> 3 */
    desc(r, 0x130, RAM_BASE + 0x800, 16, 1, 4);
    desc(r, 0x140, RAM_BASE + 0x800, 16, 1, 3);
    put16(r + 0x200 + 2, 1);
    put16(r + 0x200 + 4, 3);
    write_seed(argv[1], "loop", h, r, sizeof(r));
    /* restarted: journal for position 0, head 0; the used ring published one entry the state missed */
    h[1] = 1 | 2 | 8;
    uint64_t j = (UINT64_C(1) << 63) | 0;
    memcpy(h + 12, &j, 8);
    put16(r + 0x200 + 2, 1);
    put16(r + 0x200 + 4, 0);
    put16(r + 0x300 + 2, 1);
    write_seed(argv[1], "restart", h, r, sizeof(r));
    return 0;
}
#endif
