/*
 * A device that speaks the wire protocol by hand (no SDK), to check how the hub treats bad input.
 * argv[1]: "garbage"  - valid handshake; before answering each MmioRead it sends malformed frames;
 *                       reads answer 0xc0ffee.
 *          "bad-decl" - declares a region of size 0.
 *          "bad-major"- says protocol 9.0 in its Hello.
 *          "fuzz"     - valid handshake; before answering each MmioRead it sends 3000 randomly damaged frames.
 *          "flood"    - valid handshake; answers a read with an endless stream of TimerCancel messages.
 *          "close"    - valid handshake; on the first MmioRead it closes its channel and stays alive.
 *          "oversized"- valid handshake; answers each MmioRead after a frame above PLX_MAX_FRAME.
 *          "no-grant" - offers CAP_LOCKSTEP, answers reads with 0xc0ffee, never answers a TimeGrant.
 *          "huge"     - valid handshake; its region is argv[2] bytes; reads answer 0xc0ffee.
 *          "dmaflood" - valid handshake; on a read, asks for 200 DMA reads of 1 MiB (argv[2]: the address) and
 *                       takes none of the replies (its own queue holds one).
 *          "busy"     - offers CAP_LOCKSTEP; answers reads with 0xc0ffee and a bus time of 2^62 ns, grants at once.
 *          "complain" - valid handshake; on a read, sends 20000 TimerArm with an id past the limit (each one a
 *                       warning from the hub), then answers 0xc0ffee.
 */
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "plexus.pb-c.h"

static void *sock;

static void send_env(Plx__Envelope *env)
{
    uint8_t buf[4096];
    size_t n = plx__envelope__pack(env, buf);
    zmq_send(sock, buf, n, 0);
}

static Plx__Envelope *recv_env(void)
{
    uint8_t buf[65536];
    int n = zmq_recv(sock, buf, sizeof(buf), 0);
    if (n < 0)
        exit(1);
    return plx__envelope__unpack(NULL, (size_t)n, buf);
}

static void send_garbage(uint64_t seq)
{
    static const uint8_t junk[] = { 0xff, 0xff, 0xff, 0x0f, 0x12, 0x99, 0x01 };
    zmq_send(sock, junk, sizeof(junk), 0);                  /* not a protobuf */
    zmq_send(sock, "", 0, 0);                               /* empty envelope: no message set */

    Plx__Envelope env = PLX__ENVELOPE__INIT;
    Plx__Irq irq = PLX__IRQ__INIT;
    irq.line = 99;
    irq.level = 1;
    env.msg_case = PLX__ENVELOPE__MSG_IRQ;
    env.irq = &irq;
    send_env(&env);                                         /* undeclared line */

    Plx__DmaRequest dma = PLX__DMA_REQUEST__INIT;
    dma.seq = 1;
    dma.addr = 0x80000000;
    dma.len = 64;
    dma.write = 1;
    dma.data.data = (uint8_t *)"short";
    dma.data.len = 5;
    env.msg_case = PLX__ENVELOPE__MSG_DMA;
    env.dma = &dma;
    send_env(&env);                                         /* len and data disagree */
    Plx__Envelope *rep = recv_env();                        /* the hub answers with an error */
    if (!rep || rep->msg_case != PLX__ENVELOPE__MSG_DMA_REPLY || rep->dma_reply->result == PLX__MEM_TX__MEMTX_OK)
        fprintf(stderr, "rogue: expected a refused DmaReply\n");
    plx__envelope__free_unpacked(rep, NULL);

    Plx__MmioReply bad = PLX__MMIO_REPLY__INIT;
    bad.seq = seq + 1000;
    bad.data = 0xbad;
    env.msg_case = PLX__ENVELOPE__MSG_REPLY;
    env.reply = &bad;
    send_env(&env);                                         /* wrong sequence number */

    Plx__TimerArm ta = PLX__TIMER_ARM__INIT;
    ta.id = 100000;
    ta.deadline_ns = 5;
    env.msg_case = PLX__ENVELOPE__MSG_TIMER_ARM;
    env.timer_arm = &ta;
    send_env(&env);                                         /* timer id out of range */

    Plx__Hello h = PLX__HELLO__INIT;
    env.msg_case = PLX__ENVELOPE__MSG_HELLO;
    env.hello = &h;
    send_env(&env);                                         /* handshake message after the handshake */
}

/* Valid frames of kinds a device may send, with random bytes changed. The hub must stay up and keep serving. */
static void send_mutants(unsigned count, unsigned *rng)
{
    uint8_t seeds[5][128];
    size_t lens[5];
    Plx__Envelope env = PLX__ENVELOPE__INIT;
    Plx__Irq irq = PLX__IRQ__INIT;
    irq.line = 0;
    irq.level = 1;
    env.msg_case = PLX__ENVELOPE__MSG_IRQ;
    env.irq = &irq;
    lens[0] = plx__envelope__pack(&env, seeds[0]);
    Plx__TimerArm ta = PLX__TIMER_ARM__INIT;
    ta.id = 3;
    ta.deadline_ns = 123456;
    ta.generation = 7;
    env.msg_case = PLX__ENVELOPE__MSG_TIMER_ARM;
    env.timer_arm = &ta;
    lens[1] = plx__envelope__pack(&env, seeds[1]);
    Plx__Log lg = PLX__LOG__INIT;
    lg.level = 6;
    lg.text = "a log line from the rogue device";
    env.msg_case = PLX__ENVELOPE__MSG_LOG;
    env.log = &lg;
    lens[2] = plx__envelope__pack(&env, seeds[2]);
    Plx__MmioReply rp = PLX__MMIO_REPLY__INIT;
    rp.seq = 99999;
    rp.data = 5;
    env.msg_case = PLX__ENVELOPE__MSG_REPLY;
    env.reply = &rp;
    lens[3] = plx__envelope__pack(&env, seeds[3]);
    Plx__TimerCancel tc = PLX__TIMER_CANCEL__INIT;
    tc.id = 3;
    env.msg_case = PLX__ENVELOPE__MSG_TIMER_CANCEL;
    env.timer_cancel = &tc;
    lens[4] = plx__envelope__pack(&env, seeds[4]);
    for (unsigned i = 0; i < count; i++) {
        unsigned k = rand_r(rng) % 5;
        uint8_t f[128];
        size_t n = lens[k];
        memcpy(f, seeds[k], n);
        for (unsigned j = 0, flips = 1 + rand_r(rng) % 3; j < flips; j++)
            f[rand_r(rng) % n] = (uint8_t)rand_r(rng);
        if (rand_r(rng) % 8 == 0)
            n = (size_t)rand_r(rng) % n;      /* truncated */
        Plx__Envelope *e = plx__envelope__unpack(NULL, n, f);
        /* Skip what would legitimately change the outcome: a Goodbye, a reply that happens to carry the
         * pending request's seq, a DMA that would wait for an answer. */
        bool skip = e && (e->msg_case == PLX__ENVELOPE__MSG_GOODBYE || e->msg_case == PLX__ENVELOPE__MSG_DMA ||
                          e->msg_case == PLX__ENVELOPE__MSG_REPLY);
        plx__envelope__free_unpacked(e, NULL);
        if (!skip)
            zmq_send(sock, f, n, 0);
    }
}

int main(int argc, char **argv)
{
    unsigned rng = 12345;
    const char *mode = argc > 1 ? argv[1] : "garbage";
    const char *ep = getenv("PLEXUS_ENDPOINT");
    if (!ep)
        return 2;
    void *ctx = zmq_ctx_new();
    sock = zmq_socket(ctx, ZMQ_PAIR);
    int linger = 1000;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof(linger));
    if (zmq_connect(sock, ep) < 0)
        return 2;

    Plx__Envelope env = PLX__ENVELOPE__INIT;
    Plx__Hello h = PLX__HELLO__INIT;
    h.major = strcmp(mode, "bad-major") == 0 ? 9 : 1;
    h.model = "plexus,test-rogue";
    if (strcmp(mode, "no-grant") == 0 || strcmp(mode, "busy") == 0)
        h.capabilities = PLX__CAPABILITY__CAP_LOCKSTEP;     /* offers lockstep, then never answers a grant */
    if (strcmp(mode, "dmaflood") == 0) {
        int one = 1;
        zmq_setsockopt(sock, ZMQ_RCVHWM, &one, sizeof(one));
    }
    env.msg_case = PLX__ENVELOPE__MSG_HELLO;
    env.hello = &h;
    send_env(&env);

    Plx__AccessRules rules = PLX__ACCESS_RULES__INIT;
    rules.min_access_size = 4;
    rules.max_access_size = 4;
    Plx__RegionDecl rd = PLX__REGION_DECL__INIT;
    rd.name = "regs";
    rd.size = strcmp(mode, "bad-decl") == 0 ? 0 : 0x10;
    if (strcmp(mode, "huge") == 0 && argc > 2)
        rd.size = strtoull(argv[2], NULL, 0);      /* a region of the size given */
    rd.valid = &rules;
    rd.impl = &rules;
    Plx__RegionDecl *rds[] = { &rd };
    char *irqs[] = { "irq" };
    Plx__Declare dc = PLX__DECLARE__INIT;
    dc.n_regions = 1;
    dc.regions = rds;
    dc.n_irqs = 1;
    dc.irqs = irqs;
    env.msg_case = PLX__ENVELOPE__MSG_DECLARE;
    env.declare = &dc;
    send_env(&env);

    for (;;) {
        Plx__Envelope *in = recv_env();
        if (!in)
            continue;
        switch (in->msg_case) {
        case PLX__ENVELOPE__MSG_CONFIG: {
            Plx__Ready rdy = PLX__READY__INIT;
            Plx__Envelope out = PLX__ENVELOPE__INIT;
            out.msg_case = PLX__ENVELOPE__MSG_READY;
            out.ready = &rdy;
            send_env(&out);
            break;
        }
        case PLX__ENVELOPE__MSG_TIME_GRANT: {
            Plx__TimeReached tr = PLX__TIME_REACHED__INIT;
            tr.now_ns = in->time_grant->until_ns;
            Plx__Envelope out = PLX__ENVELOPE__INIT;
            out.msg_case = PLX__ENVELOPE__MSG_TIME_REACHED;
            out.time_reached = &tr;
            if (strcmp(mode, "busy") == 0)
                send_env(&out);
            break;
        }
        case PLX__ENVELOPE__MSG_READ: {
            if (strcmp(mode, "dmaflood") == 0) {
                Plx__DmaRequest dma = PLX__DMA_REQUEST__INIT;
                dma.addr = argc > 2 ? strtoull(argv[2], NULL, 0) : 0x80000000u;
                dma.len = 1u << 20;
                Plx__Envelope out = PLX__ENVELOPE__INIT;
                out.msg_case = PLX__ENVELOPE__MSG_DMA;
                out.dma = &dma;
                for (unsigned i = 0; i < 200; i++) {
                    dma.seq = i + 1;
                    send_env(&out);
                }
                for (;;)
                    pause();
            }
            if (strcmp(mode, "complain") == 0) {
                Plx__TimerArm ta = PLX__TIMER_ARM__INIT;
                ta.id = 100000;
                Plx__Envelope out = PLX__ENVELOPE__INIT;
                out.msg_case = PLX__ENVELOPE__MSG_TIMER_ARM;
                out.timer_arm = &ta;
                for (unsigned i = 0; i < 20000; i++)
                    send_env(&out);
            }
            if (strcmp(mode, "flood") == 0) {
                /* Never answer; keep the hub busy with messages it must serve. */
                Plx__TimerCancel tc = PLX__TIMER_CANCEL__INIT;
                Plx__Envelope out = PLX__ENVELOPE__INIT;
                out.msg_case = PLX__ENVELOPE__MSG_TIMER_CANCEL;
                out.timer_cancel = &tc;
                for (;;)
                    send_env(&out);
            }
            if (strcmp(mode, "close") == 0) {
                plx__envelope__free_unpacked(in, NULL);
                zmq_close(sock);
                for (;;)
                    pause();
            }
            if (strcmp(mode, "oversized") == 0) {
                size_t big = (4u << 20) + 64;
                uint8_t *junk = calloc(1, big);
                if (junk)
                    zmq_send(sock, junk, big, 0);
                free(junk);
            } else if (strcmp(mode, "fuzz") == 0)
                send_mutants(3000, &rng);
            else if (strcmp(mode, "no-grant") != 0 && strcmp(mode, "busy") != 0)
                send_garbage(in->read->seq);
            Plx__MmioReply rp = PLX__MMIO_REPLY__INIT;
            rp.seq = in->read->seq;
            rp.data = 0xc0ffee;
            if (strcmp(mode, "busy") == 0)
                rp.busy_ns = UINT64_C(1) << 62;
            Plx__Envelope out = PLX__ENVELOPE__INIT;
            out.msg_case = PLX__ENVELOPE__MSG_REPLY;
            out.reply = &rp;
            send_env(&out);
            break;
        }
        case PLX__ENVELOPE__MSG_ERROR:
        case PLX__ENVELOPE__MSG_SHUTDOWN:
            plx__envelope__free_unpacked(in, NULL);
            zmq_close(sock);
            zmq_ctx_term(ctx);
            return 0;
        default:
            break;
        }
        plx__envelope__free_unpacked(in, NULL);
    }
}
