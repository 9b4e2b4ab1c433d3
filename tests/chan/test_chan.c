/*
 * The shared-memory ring (proto/chan.c) as the hub sees it while the device process scribbles on the shared
 * memory directly instead of using the channel: every kind of damage must end in -EPROTO from recv or send,
 * with plx_chan_error() naming it, without a crash or a hang, and the channel must stay broken afterwards.
 * (The ordinary frame, waiting and failure cases are in tests/transport/test_chan.c.)
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <plexus/chan.h>
#include <plexus/wire.h>

/* Control words (docs/protocol.md, "The shared-memory ring"); ring 0: hub -> device, ring 1: device -> hub. */
#define OFF_HEAD(ring) (192u + 128u * (ring))
#define OFF_TAIL(ring) (256u + 128u * (ring))
#define OFF_SLOTS 4096u
#define N_SLOTS 64u

static plx_chan *hub;
static int fds[PLX_RING_FDS];

static void setup(void)
{
    hub = plx_chan_ring_create(N_SLOTS, 1000, fds);
    cr_assert_not_null(hub);
    plx_chan_set_send_timeout(hub, 2000);
}

static void teardown(void)
{
    plx_chan_close(hub);
}

static uint8_t *map_ring(void)
{
    struct plx_ring_header h;
    cr_assert_eq(pread(fds[0], &h, sizeof(h), 0), (ssize_t)sizeof(h));
    void *p = mmap(NULL, h.total_size, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0);
    if (p == MAP_FAILED)
        _exit(91);
    return p;
}

static uint8_t *slot(uint8_t *b, unsigned ring, unsigned i)
{
    return b + OFF_SLOTS + (size_t)ring * N_SLOTS * PLX_RING_SLOT + (size_t)i * PLX_RING_SLOT;
}

static void put_u64(uint8_t *b, size_t off, uint64_t v)
{
    __atomic_store_n((uint64_t *)(b + off), v, __ATOMIC_RELEASE);
}

static void put_rec(uint8_t *s, uint32_t len, uint32_t flags)
{
    memcpy(s, &len, 4);
    memcpy(s + 4, &flags, 4);
}

static void ring_hub_bell(void)
{
    uint64_t one = 1;
    (void)!write(fds[1], &one, sizeof(one));
}

/* The "device": a child that scribbles with @fn, rings the hub's bell and exits. */
static void scribble(void (*fn)(uint8_t *))
{
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        fn(map_ring());
        ring_hub_bell();
        _exit(0);
    }
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "scribbler status %#x", st);
}

/* -EPROTO naming @what from recv, and from then on from recv and send alike. */
static void expect_broken(const char *what)
{
    const void *d;
    size_t len;
    int r = plx_chan_recv(hub, &d, &len, 2000);
    cr_assert_eq(r, -EPROTO, "recv: %d (%s)", r, plx_chan_error(hub));
    const char *e = plx_chan_error(hub);
    cr_assert_neq(e[0], '\0');
    cr_assert_not_null(strstr(e, what), "error \"%s\" does not name \"%s\"", e, what);
    cr_assert_eq(plx_chan_recv(hub, &d, &len, 0), -EPROTO);
    cr_assert_eq(plx_chan_recv(hub, &d, &len, 100), -EPROTO);
    cr_assert_eq(plx_chan_send(hub, "x", 1, PLX_CHAN_DONTWAIT), -EPROTO);
    cr_assert_eq(plx_chan_send(hub, "x", 1, 0), -EPROTO);
    /* A poll loop does not go to sleep on a broken channel: it is told to look, and the look fails. */
    cr_assert_eq(plx_chan_spin(hub), -EPROTO);
    cr_assert(plx_chan_poll_prepare(hub));
    plx_chan_poll_done(hub, 0);
    cr_assert_eq(plx_chan_recv(hub, &d, &len, 0), -EPROTO);
}

static void head_far_ahead(uint8_t *b) { put_u64(b, OFF_HEAD(1), 1000000); }
Test(chan_corrupt, producer_index_far_ahead, .init = setup, .fini = teardown)
{
    scribble(head_far_ahead);
    expect_broken("producer index 1000000 is not within 64 slots");
}

static void len_past_published(uint8_t *b)
{
    put_rec(slot(b, 1, 0), 200, 0); /* 4 slots, only 1 published */
    put_u64(b, OFF_HEAD(1), 1);
}
Test(chan_corrupt, record_length_past_the_published_records, .init = setup, .fini = teardown)
{
    scribble(len_past_published);
    expect_broken("runs past the published records");
}

static void one_frame(uint8_t *b)
{
    put_rec(slot(b, 1, 0), 3, 0); /* slot 0: a good 3-byte frame */
    memcpy(slot(b, 1, 0) + 8, "abc", 3);
    put_u64(b, OFF_HEAD(1), 1);
}
static void len_past_end(uint8_t *b)
{
    put_rec(slot(b, 1, 1), 63 * PLX_RING_SLOT - 8 + 1, 0); /* 64 slots from slot 1: one past the end */
    put_u64(b, OFF_HEAD(1), 1 + N_SLOTS);                 /* a full ring published after the hub's tail 1 */
}
Test(chan_corrupt, record_length_past_the_ring_end, .init = setup, .fini = teardown)
{
    scribble(one_frame);
    const void *d;
    size_t len;
    cr_assert_eq(plx_chan_recv(hub, &d, &len, 2000), 0);
    cr_assert_eq(len, 3);
    cr_assert_eq(memcmp(d, "abc", 3), 0);
    scribble(len_past_end);
    expect_broken("record of 4025 bytes at slot 1 runs past the end of the ring");
}

static void huge_len(uint8_t *b)
{
    put_rec(slot(b, 1, 0), 0xffffffffu, 0);
    put_u64(b, OFF_HEAD(1), N_SLOTS);
}
Test(chan_corrupt, record_length_of_four_gib, .init = setup, .fini = teardown)
{
    scribble(huge_len);
    expect_broken("record of 4294967295 bytes");
}

static void bad_flags(uint8_t *b)
{
    put_rec(slot(b, 1, 0), 4, 0x10);
    put_u64(b, OFF_HEAD(1), 1);
}
Test(chan_corrupt, unknown_record_flags, .init = setup, .fini = teardown)
{
    scribble(bad_flags);
    expect_broken("unknown flags 0x10");
}

static void tail_ahead(uint8_t *b) { put_u64(b, OFF_TAIL(0), 5); }
Test(chan_corrupt, consumer_index_ahead_of_the_producer, .init = setup, .fini = teardown)
{
    scribble(tail_ahead);
    /* Seen by the side that sends on that ring. */
    int r = plx_chan_send(hub, "abc", 3, 0);
    cr_assert_eq(r, -EPROTO, "send: %d", r);
    cr_assert_not_null(strstr(plx_chan_error(hub), "consumer index 5 is not within 64 slots"), "%s",
                       plx_chan_error(hub));
    expect_broken("consumer index 5");
}

static void random_bytes(uint8_t *b)
{
    struct plx_ring_header h;
    memcpy(&h, b, sizeof(h));
    srand(1234);
    for (uint64_t i = 0; i < h.total_size; i++)
        b[i] = (uint8_t)rand();
}
Test(chan_corrupt, random_bytes_over_the_whole_mapping, .init = setup, .fini = teardown)
{
    scribble(random_bytes);
    expect_broken("ring");
}

/* A device that streams MORE pieces forever, following the hub's consumer index, until the hub stops reading. */
static void endless_more(uint8_t *b)
{
    const uint32_t piece = 32 * PLX_RING_SLOT - 8; /* 32 slots: records alternate at slots 0 and 32 */
    uint64_t head = 0;
    for (int i = 0; i < 10000; i++) {
        put_rec(slot(b, 1, (unsigned)(head & (N_SLOTS - 1))), piece, PLX_RING_REC_MORE);
        head += 32;
        put_u64(b, OFF_HEAD(1), head);
        ring_hub_bell();
        struct timespec t0, t;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        while (__atomic_load_n((uint64_t *)(b + OFF_TAIL(1)), __ATOMIC_ACQUIRE) + 32 < head + 1) {
            clock_gettime(CLOCK_MONOTONIC, &t);
            if (t.tv_sec - t0.tv_sec > 2)
                return; /* the hub stopped taking them */
            usleep(10);
        }
    }
}
Test(chan_corrupt, more_chain_longer_than_the_frame_limit, .init = setup, .fini = teardown, .timeout = 60)
{
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        endless_more(map_ring());
        _exit(0);
    }
    const void *d;
    size_t len;
    int r;
    do
        r = plx_chan_recv(hub, &d, &len, 5000);
    while (r == -EAGAIN || r == -EINTR);
    int st;
    waitpid(pid, &st, 0);
    cr_assert_eq(r, -EPROTO, "recv: %d", r);
    char want[64];
    snprintf(want, sizeof(want), "frame longer than %u bytes", (unsigned)PLX_MAX_FRAME);
    cr_assert_not_null(strstr(plx_chan_error(hub), want), "%s", plx_chan_error(hub));
    cr_assert_eq(plx_chan_recv(hub, &d, &len, 0), -EPROTO);
}

/* A good frame first, then damage: the frame is still delivered intact, the damage after it is reported. */
static void good_then_bad(uint8_t *b)
{
    put_rec(slot(b, 1, 0), 5, 0);
    memcpy(slot(b, 1, 0) + 8, "hello", 5);
    put_rec(slot(b, 1, 1), 1, 0x80000000u);
    put_u64(b, OFF_HEAD(1), 2);
}
Test(chan_corrupt, a_good_frame_before_the_damage_arrives_intact, .init = setup, .fini = teardown)
{
    scribble(good_then_bad);
    const void *d;
    size_t len;
    cr_assert_eq(plx_chan_recv(hub, &d, &len, 2000), 0);
    cr_assert_eq(len, 5);
    cr_assert_eq(memcmp(d, "hello", 5), 0);
    expect_broken("record at slot 1 has unknown flags 0x80000000");
}

/* A device that keeps the ring full of empty MORE pieces (or padding) forever: no byte of a frame ever comes. */
static uint32_t endless_flags;
static void endless_empty(uint8_t *b)
{
    uint64_t head = 0;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        uint64_t tail = __atomic_load_n((uint64_t *)(b + OFF_TAIL(1)), __ATOMIC_ACQUIRE);
        if (endless_flags == PLX_RING_REC_PAD) {
            if (tail == head) {
                put_rec(slot(b, 1, 0), 0, PLX_RING_REC_PAD);
                head += N_SLOTS;
                put_u64(b, OFF_HEAD(1), head);
                ring_hub_bell();
            }
        } else {
            while (head - tail < N_SLOTS) {
                put_rec(slot(b, 1, (unsigned)(head & (N_SLOTS - 1))), 0, PLX_RING_REC_MORE);
                head++;
            }
            put_u64(b, OFF_HEAD(1), head);
            ring_hub_bell();
        }
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec > 6)
            return;
    }
}

static void endless_empty_recv_ends_at_its_timeout(uint32_t flags)
{
    endless_flags = flags;
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        endless_empty(map_ring());
        _exit(0);
    }
    const void *d;
    size_t len;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int r = plx_chan_recv(hub, &d, &len, 300);
    clock_gettime(CLOCK_MONOTONIC, &t);
    double took = (double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    cr_assert(r == -EAGAIN || r == -EPROTO, "recv: %d", r);
    cr_assert_lt(took, 2.0, "recv(300 ms) took %.3f s while the peer streamed empty records", took);
}

Test(chan_corrupt, an_endless_chain_of_empty_pieces_does_not_hold_recv_past_its_timeout, .init = setup,
     .fini = teardown, .timeout = 30)
{
    endless_empty_recv_ends_at_its_timeout(PLX_RING_REC_MORE);
}

Test(chan_corrupt, endless_padding_does_not_hold_recv_past_its_timeout, .init = setup, .fini = teardown,
     .timeout = 30)
{
    endless_empty_recv_ends_at_its_timeout(PLX_RING_REC_PAD);
}
