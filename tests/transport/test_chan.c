/*
 * The device channel (plexus/chan.h) between real processes: the shared-memory ring's framing, waiting, waking,
 * flow control and failure cases, and the ZeroMQ channel's ordering. The child opens the ring from the
 * descriptors it inherited, as a device does with the ones it receives.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <stdbool.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <plexus/chan.h>
#include <plexus/wire.h>

static uint64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

/* The device's end of a ring created by the parent (in the child, from inherited descriptors). */
static plx_chan *open_child_end(const int fds[PLX_RING_FDS])
{
    int mine[PLX_RING_FDS];
    for (int i = 0; i < PLX_RING_FDS; i++)
        mine[i] = dup(fds[i]);
    char err[200];
    plx_chan *c = plx_chan_ring_open(mine, err, sizeof(err));
    if (!c) {
        fprintf(stderr, "child: %s\n", err);
        _exit(90);
    }
    return c;
}

/*
 * Wait until side @side (0: hub, 1: device) of the ring in @memfd says it sleeps on its bell: the sleep words
 * of docs/protocol.md ("The shared-memory ring"), at offset 64 for the hub and 128 for the device. A condition,
 * not a delay: however loaded the machine, the next frame then has to ring that bell. False after 30 s.
 */
static bool wait_asleep(int memfd, int side)
{
    uint8_t *m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, memfd, 0);
    if (m == MAP_FAILED)
        return false;
    const uint32_t *word = (const uint32_t *)(m + (side ? 128 : 64));
    bool asleep = false;
    for (int i = 0; i < 30000 && !(asleep = __atomic_load_n(word, __ATOMIC_ACQUIRE) == 1); i++)
        usleep(1000);
    munmap(m, 4096);
    return asleep;
}

/* Frame @i of a sequence: its length and bytes are a function of @i, so the receiver can check both. */
static size_t frame_len(unsigned i)
{
    static const size_t lens[] = { 0, 1, 55, 56, 57, 63, 64, 65, 120, 4088, 16376, 16377, 100000, 1u << 20 };
    return lens[i % (sizeof(lens) / sizeof(lens[0]))];
}

static void fill(uint8_t *b, size_t len, unsigned i)
{
    for (size_t k = 0; k < len; k++)
        b[k] = (uint8_t)(k * 31 + i * 7);
}

static int wait_child(pid_t pid)
{
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static uint8_t *big;

/* Child: receive @n frames and check each; then send @n frames back; exit 0 if all were right. */
static void echo_child(const int fds[PLX_RING_FDS], unsigned n, bool send_first)
{
    plx_chan *c = open_child_end(fds);
    uint8_t *want = malloc(PLX_MAX_FRAME);
    for (int pass = 0; pass < 2; pass++) {
        if ((pass == 0) == send_first) {
            for (unsigned i = 0; i < n; i++) {
                fill(big, frame_len(i), i);
                if (plx_chan_send(c, big, frame_len(i), 0) != 0)
                    _exit(91);
            }
        } else {
            for (unsigned i = 0; i < n; i++) {
                const void *d;
                size_t len;
                if (plx_chan_recv(c, &d, &len, 10000) != 0 || len != frame_len(i))
                    _exit(92);
                fill(want, len, i);
                if (memcmp(d, want, len) != 0)
                    _exit(93);
            }
        }
    }
    plx_chan_close(c);
    _exit(0);
}

static void check_frames(plx_chan *c, unsigned n)
{
    uint8_t *want = malloc(PLX_MAX_FRAME);
    for (unsigned i = 0; i < n; i++) {
        const void *d;
        size_t len;
        cr_assert_eq(plx_chan_recv(c, &d, &len, 10000), 0, "frame %u: %s", i, plx_chan_error(c));
        cr_assert_eq(len, frame_len(i), "frame %u length", i);
        fill(want, len, i);
        cr_assert(memcmp(d, want, len) == 0, "frame %u bytes", i);
    }
    free(want);
}

static void init(void)
{
    big = malloc(PLX_MAX_FRAME + 1);
    cr_assert_not_null(big);
}

TestSuite(chan, .init = init, .timeout = 60);

Test(chan, frames_of_every_size_arrive_intact_and_in_order_across_many_wraps)
{
    int fds[PLX_RING_FDS];
    plx_chan *c = plx_chan_ring_create(64, 20000, fds);    /* a small ring: it wraps many times */
    cr_assert_not_null(c);
    unsigned n = 200;
    pid_t pid = fork();
    if (pid == 0)
        echo_child(fds, n, false);
    for (unsigned i = 0; i < n; i++) {
        fill(big, frame_len(i), i);
        cr_assert_eq(plx_chan_send(c, big, frame_len(i), 0), 0, "send %u: %s", i, plx_chan_error(c));
    }
    check_frames(c, n);
    cr_assert_eq(wait_child(pid), 0);
    plx_chan_stats st;
    plx_chan_get_stats(c, &st);
    cr_assert_eq(st.frames_sent, n);
    cr_assert_eq(st.frames_received, n);
    plx_chan_close(c);
}

Test(chan, the_largest_frame_passes_and_a_larger_one_is_refused)
{
    int fds[PLX_RING_FDS];
    plx_chan *c = plx_chan_ring_create(0, 20000, fds);
    pid_t pid = fork();
    if (pid == 0) {
        plx_chan *d = open_child_end(fds);
        const void *p;
        size_t len;
        if (plx_chan_recv(d, &p, &len, 10000) != 0 || len != PLX_MAX_FRAME || ((const uint8_t *)p)[len - 1] != 0x77)
            _exit(1);
        _exit(0);
    }
    memset(big, 0x77, PLX_MAX_FRAME + 1);
    cr_assert_eq(plx_chan_send(c, big, PLX_MAX_FRAME + 1, 0), -EMSGSIZE);
    cr_assert_eq(plx_chan_send(c, big, PLX_MAX_FRAME, 0), 0);
    cr_assert_eq(wait_child(pid), 0);
    plx_chan_close(c);
}

/* Both sides send megabytes before either reads: a side waiting for room takes the peer's frames meanwhile. */
Test(chan, both_sides_sending_long_frames_at_once_do_not_deadlock)
{
    int fds[PLX_RING_FDS];
    plx_chan *c = plx_chan_ring_create(64, 20000, fds);
    unsigned n = 40;
    pid_t pid = fork();
    if (pid == 0)
        echo_child(fds, n, true);
    for (unsigned i = 0; i < n; i++) {
        fill(big, frame_len(i), i);
        cr_assert_eq(plx_chan_send(c, big, frame_len(i), 0), 0, "send %u: %s", i, plx_chan_error(c));
    }
    check_frames(c, n);
    cr_assert_eq(wait_child(pid), 0);
    plx_chan_close(c);
}

Test(chan, a_receive_times_out_and_a_sleeping_side_is_woken)
{
    int fds[PLX_RING_FDS];
    plx_chan *c = plx_chan_ring_create(0, 1000, fds);      /* 1 us of spinning: both sides sleep */
    const void *d;
    size_t len;
    uint64_t t0 = now_ms();
    cr_assert_eq(plx_chan_recv(c, &d, &len, 100), -EAGAIN);
    uint64_t took = now_ms() - t0;
    cr_assert(took >= 95 && took < 2000, "a 100 ms receive took %llu ms", (unsigned long long)took);
    cr_assert_eq(plx_chan_recv(c, &d, &len, 0), -EAGAIN);
    pid_t pid = fork();
    if (pid == 0) {
        plx_chan *e = open_child_end(fds);
        if (!wait_asleep(fds[0], 0))        /* the parent sleeps in its receive */
            _exit(2);
        if (plx_chan_send(e, "wake", 4, 0) != 0 || plx_chan_recv(e, &d, &len, 30000) != 0 || len != 2)
            _exit(1);
        _exit(0);
    }
    cr_assert_eq(plx_chan_recv(c, &d, &len, 30000), 0);
    cr_assert_eq(len, 4);
    cr_assert(memcmp(d, "wake", 4) == 0);
    cr_assert(wait_asleep(fds[0], 1), "the child went to sleep on its bell");
    cr_assert_eq(plx_chan_send(c, "ok", 2, 0), 0);
    cr_assert_eq(wait_child(pid), 0);
    plx_chan_stats st;
    plx_chan_get_stats(c, &st);
    cr_assert_geq(st.sleeps, 2, "the waits went to sleep");
    cr_assert_geq(st.bells_rung, 1, "the sleeping child was rung");
    plx_chan_close(c);
}

Test(chan, a_dead_peer_ends_a_wait_with_epipe)
{
    int fds[PLX_RING_FDS];
    plx_chan *c = plx_chan_ring_create(0, 1000, fds);
    pid_t pid = fork();
    if (pid == 0) {
        plx_chan *e = open_child_end(fds);
        plx_chan_send(e, "last", 4, 0);
        usleep(100000);
        _exit(0);
    }
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    cr_assert_geq(pidfd, 0);
    plx_chan_set_peer_fd(c, pidfd);
    const void *d;
    size_t len;
    cr_assert_eq(plx_chan_recv(c, &d, &len, 5000), 0, "what was sent before dying still arrives");
    uint64_t t0 = now_ms();
    cr_assert_eq(plx_chan_recv(c, &d, &len, 10000), -EPIPE);
    cr_assert_lt(now_ms() - t0, 5000, "the death ended the wait, not the timeout");
    cr_assert_eq(wait_child(pid), 0);
    close(pidfd);
    plx_chan_close(c);
}

Test(chan, a_full_ring_refuses_dontwait_and_times_out_a_blocking_send)
{
    int fds[PLX_RING_FDS];
    plx_chan *c = plx_chan_ring_create(64, 1000, fds);     /* nobody reads the other end */
    plx_chan_set_send_timeout(c, 150);
    memset(big, 1, 4096);
    unsigned sent = 0;
    int r;
    while ((r = plx_chan_send(c, big, 1000, PLX_CHAN_DONTWAIT)) == 0)
        sent++;
    cr_assert_eq(r, -EAGAIN);
    cr_assert_geq(sent, 3, "%u frames fit", sent);
    cr_assert_leq(sent, 4);
    uint64_t t0 = now_ms();
    cr_assert_eq(plx_chan_send(c, big, 1000, 0), -ETIMEDOUT);
    uint64_t took = now_ms() - t0;
    cr_assert(took >= 145 && took < 3000, "a 150 ms send timeout took %llu ms", (unsigned long long)took);
    plx_chan_stats st;
    plx_chan_get_stats(c, &st);
    cr_assert_geq(st.full_waits, 2);
    plx_chan_close(c);
}

/* A frame taken while spinning or preparing a poll is still handed out by the next receive. */
Test(chan, a_frame_seen_by_spin_or_poll_is_not_lost)
{
    int fds[PLX_RING_FDS], sent[2];
    plx_chan *c = plx_chan_ring_create(0, 2000000, fds);
    cr_assert_eq(pipe(sent), 0);
    pid_t pid = fork();
    if (pid == 0) {
        plx_chan *e = open_child_end(fds);
        for (unsigned i = 0; i < 3; i++)
            if (plx_chan_send(e, &i, sizeof(i), 0) != 0)
                _exit(1);
        if (write(sent[1], "s", 1) != 1)
            _exit(2);
        _exit(0);
    }
    char note;
    cr_assert_eq(read(sent[0], &note, 1), 1, "the child sent its frames");
    cr_assert_eq(plx_chan_spin(c), 1, "the frames are there: spinning finds one");
    cr_assert(plx_chan_poll_prepare(c), "a frame is already there");
    plx_chan_poll_done(c, 0);
    for (unsigned i = 0; i < 3; i++) {
        const void *d;
        size_t len;
        cr_assert_eq(plx_chan_recv(c, &d, &len, 5000), 0);
        cr_assert_eq(len, sizeof(unsigned));
        cr_assert_eq(*(const unsigned *)d, i, "frame %u in order", i);
    }
    cr_assert_eq(wait_child(pid), 0);
    plx_chan_close(c);
}

/* Eight ping-pong pairs on a 2-core machine: spinning sides yield, so every pair finishes. */
Test(chan, more_busy_pairs_than_cores_all_progress, .timeout = 120)
{
    enum { PAIRS = 8, ROUNDS = 20000 };
    pid_t pids[PAIRS];
    for (int p = 0; p < PAIRS; p++) {
        pids[p] = fork();
        if (pids[p] == 0) {
            int fds[PLX_RING_FDS];
            plx_chan *c = plx_chan_ring_create(0, 50000, fds);
            if (!c)
                _exit(1);
            pid_t echo = fork();
            if (echo == 0) {
                plx_chan *e = open_child_end(fds);
                const void *d;
                size_t len;
                for (int i = 0; i < ROUNDS; i++)
                    if (plx_chan_recv(e, &d, &len, 20000) != 0 || plx_chan_send(e, d, len, 0) != 0)
                        _exit(2);
                _exit(0);
            }
            for (int i = 0; i < ROUNDS; i++) {
                const void *d;
                size_t len;
                if (plx_chan_send(c, &i, sizeof(i), 0) != 0 || plx_chan_recv(c, &d, &len, 20000) != 0 ||
                    len != sizeof(i) || *(const int *)d != i)
                    _exit(3);
            }
            int st;
            waitpid(echo, &st, 0);
            _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 4);
        }
    }
    for (int p = 0; p < PAIRS; p++)
        cr_assert_eq(wait_child(pids[p]), 0, "pair %d", p);
}

Test(chan, zeromq_channel_keeps_frames_in_order)
{
    char err[200];
    plx_chan *ca = plx_chan_zmq_bind("inproc://chan-test", -1, err, sizeof(err));
    cr_assert_not_null(ca, "%s", err);
    plx_chan *cb = plx_chan_zmq_connect("inproc://chan-test", -1, err, sizeof(err));
    cr_assert_not_null(cb, "%s", err);
    cr_assert_eq(plx_chan_get_kind(ca), PLX_CHAN_ZMQ);
    cr_assert_str_eq(plx_chan_endpoint(ca), "inproc://chan-test");
    /* As many as the high-water mark lets wait unread (the next test fills it). */
    for (unsigned i = 0; i < PLX_ZMQ_HWM; i++) {
        fill(big, frame_len(i), i);
        cr_assert_eq(plx_chan_send(ca, big, frame_len(i), 0), 0);
    }
    check_frames(cb, PLX_ZMQ_HWM);
    const void *d;
    size_t len;
    cr_assert_eq(plx_chan_recv(cb, &d, &len, 0), -EAGAIN);
    cr_assert_eq(plx_chan_spin(cb), 0, "ZeroMQ does not spin");
    plx_chan_close(ca);
    plx_chan_close(cb);
}

/* A peer that takes nothing holds at most the high-water marks' worth: then a send waits for room up to its
 * timeout and fails, or fails at once with PLX_CHAN_DONTWAIT; once the peer reads, sends go through again. */
Test(chan, zeromq_channel_queues_are_bounded)
{
    char err[200];
    plx_chan *ca = plx_chan_zmq_bind("inproc://chan-full", -1, err, sizeof(err));
    cr_assert_not_null(ca, "%s", err);
    plx_chan *cb = plx_chan_zmq_connect("inproc://chan-full", -1, err, sizeof(err));
    cr_assert_not_null(cb, "%s", err);
    plx_chan_set_send_timeout(ca, 50);
    unsigned sent = 0;
    int r;
    while ((r = plx_chan_send(ca, "x", 1, 0)) == 0 && sent < 1000)
        sent++;
    cr_assert_eq(r, -ETIMEDOUT, "send %u: %d", sent, r);
    cr_assert_geq(sent, PLX_ZMQ_HWM, "at least one high-water mark's worth waits");
    cr_assert_leq(sent, 2 * PLX_ZMQ_HWM + 2, "%u frames queued: more than both high-water marks", sent);
    cr_assert_eq(plx_chan_send(ca, "x", 1, PLX_CHAN_DONTWAIT), -EAGAIN);
    const void *d;
    size_t len;
    for (unsigned i = 0; i < sent; i++)
        cr_assert_eq(plx_chan_recv(cb, &d, &len, 1000), 0, "frame %u of %u", i, sent);
    cr_assert_eq(plx_chan_send(ca, "y", 1, 0), 0, "room again");
    cr_assert_eq(plx_chan_recv(cb, &d, &len, 1000), 0);
    cr_assert_eq(len, 1);
    cr_assert_eq(*(const char *)d, 'y');
    plx_chan_close(ca);
    plx_chan_close(cb);
}

/* A ZeroMQ channel waits in a plain poll(2) on its descriptor: nothing there, then a frame wakes it. */
Test(chan, zeromq_channel_is_polled_on_a_plain_descriptor)
{
    char err[200];
    plx_chan *ca = plx_chan_zmq_bind("inproc://chan-poll", -1, err, sizeof(err));
    plx_chan *cb = plx_chan_zmq_connect("inproc://chan-poll", -1, err, sizeof(err));
    cr_assert(ca && cb, "%s", err);
    struct pollfd p = { .fd = plx_chan_poll_fd(cb), .events = POLLIN };
    cr_assert_geq(p.fd, 0);
    cr_assert_not(plx_chan_poll_prepare(cb), "nothing sent yet");
    cr_assert_not(plx_chan_poll_done(cb, poll(&p, 1, 0) > 0 ? p.revents : 0), "still nothing");
    cr_assert_eq(plx_chan_send(ca, "ping", 4, 0), 0);
    bool frame = plx_chan_poll_prepare(cb);
    for (int i = 0; i < 100 && !frame; i++) {
        int r = poll(&p, 1, 100);
        frame = plx_chan_poll_done(cb, r > 0 ? p.revents : 0) || plx_chan_poll_prepare(cb);
    }
    cr_assert(frame, "the frame made the descriptor readable");
    const void *d;
    size_t len;
    cr_assert_eq(plx_chan_recv(cb, &d, &len, 0), 0);
    cr_assert_eq(len, 4);
    cr_assert_eq(memcmp(d, "ping", 4), 0);
    cr_assert_not(plx_chan_peer_gone(cb));
    plx_chan_close(ca);
    plx_chan_close(cb);
}
