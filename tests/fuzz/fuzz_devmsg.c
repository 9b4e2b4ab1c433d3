/*
 * libFuzzer target: bytes a device could send, fed to the hub's device layer in process (no device process,
 * no real socket: the device's channel is a ZeroMQ inproc pair whose far end is drained after each input).
 *
 * Input: byte 0 selects the mode (bit 0: the first frame is a Declare checked by the handshake's rules; bit 1:
 * frames are read as on the shared-memory ring, where a frame starting with 0 is in the fixed layout), then
 * frames as [length: 2 bytes little-endian][bytes], at most 64. Every frame goes through the same decode,
 * validation and dispatch as frames a running device sends (IRQ, DMA by message into RAM and unassigned
 * space, timers, logs, Goodbye, stray replies).
 *
 * Built by scripts/fuzz.sh with clang; with -DFUZZ_MAKE_CORPUS instead, main(DIR) writes the seed corpus.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <plexus/memory.h>

#include "dev/detached.h"
#include "dev/device.h"
#include "vclock.h"

#define RAM_BASE 0x80000000u
#define RAM_SIZE 0x10000u
#define MAX_FRAMES 64

#ifndef FUZZ_MAKE_CORPUS
static MemoryRegion sysmem, ram;
static AddressSpace as;
static vclock clk;
static hub_ram_block block;
static hub_devmgr *mgr;
static hub_device *dev;
static plx_chan *peer;
static unsigned irq_levels[8];

static void on_irq(void *opaque, unsigned irq, int level)
{
    irq_levels[irq % 8] = (unsigned)level;
}

static void on_log(void *opaque, const char *device, int level, const char *msg)
{
    (void)strlen(msg);      /* the text must be a terminated string */
}

static int setup(void)
{
    Error *err = NULL;
    memory_region_init(&sysmem, NULL, "system", UINT64_MAX);
    memory_region_init_ram(&ram, NULL, "ram", RAM_SIZE, &err);
    if (err)
        return -1;
    memory_region_add_subregion(&sysmem, RAM_BASE, &ram);
    address_space_init(&as, &sysmem, "fuzz");
    vclock_init(&clk);
    block = (hub_ram_block){ "ram", RAM_BASE, RAM_SIZE, memory_region_get_fd(&ram), false };
    hub_devmgr_env env = {
        .sysmem = &sysmem, .as = &as, .clock = &clk, .ram = &block, .n_ram = 1, .set_irq = on_irq, .log = on_log,
    };
    if (!(mgr = hub_devmgr_new(&env, &err)))
        return -1;
    if (!(dev = hub_dev_new_detached(mgr, "fuzz", 4, "inproc://plexus-fuzz")))
        return -1;
    char why[200];
    if (!(peer = plx_chan_zmq_connect("inproc://plexus-fuzz", 0, why, sizeof(why))))
        return -1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dev && setup() < 0)
        abort();
    if (size < 1)
        return 0;
    bool declare = data[0] & 1;
    dev->inc.wire.fixed = (data[0] & 2) != 0;
    size_t off = 1;
    for (unsigned n = 0; n < MAX_FRAMES && off + 2 <= size; n++) {
        size_t len = (size_t)data[off] | (size_t)data[off + 1] << 8;
        off += 2;
        if (len > size - off)
            len = size - off;
        /* a copy of exactly @len bytes: reading past it is an error the sanitizer sees */
        uint8_t *frame = malloc(len ? len : 1);
        memcpy(frame, data + off, len);
        if (declare && n == 0)
            hub_dev_feed_declaration(dev, frame, len);
        else
            hub_dev_feed(dev, frame, len);
        free(frame);
        off += len;
    }
    /* due timers fire (the far end never answers: the layer does not wait for devices without TIMER_DONE) */
    vclock_advance(&clk, vclock_now(&clk) + 1000000);
    const void *sink;
    size_t sink_len;
    while (plx_chan_recv(peer, &sink, &sink_len, 0) == 0)
        ;
    dev->failed = false;    /* a Goodbye fails the device: the next input starts from a live one */
    return 0;
}
#else
/* ---- seed corpus ---- */
static FILE *out;

static void frame(const Plx__Envelope *env)
{
    size_t n = plx__envelope__get_packed_size(env);
    uint8_t *b = malloc(n + 2);
    b[0] = (uint8_t)n;
    b[1] = (uint8_t)(n >> 8);
    plx__envelope__pack(env, b + 2);
    fwrite(b, 1, n + 2, out);
    free(b);
}

/* A fixed-layout frame: the 16-byte header, two u64 (an Irq's level is the low half of the first), a payload. */
static void fixed_frame(uint8_t type, uint16_t a, uint32_t b, uint64_t now, uint64_t w0, uint64_t w1,
                        const uint8_t *payload, size_t n)
{
    uint8_t f[64] = { 0, type };
    memcpy(f + 2, &a, 2);
    memcpy(f + 4, &b, 4);
    memcpy(f + 8, &now, 8);
    memcpy(f + 16, &w0, 8);
    memcpy(f + 24, &w1, 8);
    size_t len = type == 4 ? 24 : 32;
    memcpy(f + len, payload, n);
    len += n;
    uint8_t hdr[2] = { (uint8_t)len, (uint8_t)(len >> 8) };
    fwrite(hdr, 1, 2, out);
    fwrite(f, 1, len, out);
}

static void begin(const char *dir, const char *name, uint8_t mode)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    out = fopen(path, "wb");
    if (!out) {
        perror(path);
        exit(1);
    }
    fputc(mode, out);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : ".";
    Plx__Envelope e = PLX__ENVELOPE__INIT;

    begin(dir, "irq", 0);
    Plx__Irq irq = PLX__IRQ__INIT;
    irq.line = 0; irq.level = 1; irq.op = PLX__IRQ_OP__IRQ_SET;
    e.msg_case = PLX__ENVELOPE__MSG_IRQ; e.irq = &irq;
    frame(&e);
    irq.line = 1; irq.op = PLX__IRQ_OP__IRQ_PULSE;
    frame(&e);
    irq.line = 9;
    frame(&e);
    fclose(out);

    begin(dir, "dma", 0);
    Plx__DmaRequest dma = PLX__DMA_REQUEST__INIT;
    uint8_t bytes[16] = "0123456789abcdef";
    dma.seq = 1; dma.addr = RAM_BASE + 0x100; dma.len = 16; dma.write = true;
    dma.data.data = bytes; dma.data.len = 16;
    e.msg_case = PLX__ENVELOPE__MSG_DMA; e.dma = &dma;
    frame(&e);
    dma.seq = 2; dma.write = false; dma.data.len = 0; dma.data.data = NULL;
    frame(&e);
    dma.seq = 3; dma.addr = 0x1000;     /* unassigned */
    frame(&e);
    fclose(out);

    begin(dir, "dma-written", 0);
    Plx__DmaRange dr[3] = { PLX__DMA_RANGE__INIT, PLX__DMA_RANGE__INIT, PLX__DMA_RANGE__INIT }, *drp[3];
    dr[0].addr = RAM_BASE + 0x100; dr[0].len = 64;      /* inside the grant */
    dr[1].addr = RAM_BASE + RAM_SIZE - 8; dr[1].len = 64;  /* past its end */
    dr[2].addr = UINT64_MAX - 4; dr[2].len = 16;        /* wrapping */
    for (int i = 0; i < 3; i++)
        drp[i] = &dr[i];
    Plx__DmaWritten dw = PLX__DMA_WRITTEN__INIT;
    dw.n_ranges = 3; dw.ranges = drp;
    e.msg_case = PLX__ENVELOPE__MSG_DMA_WRITTEN; e.dma_written = &dw;
    frame(&e);
    fclose(out);

    begin(dir, "timers", 0);
    Plx__TimerArm ta = PLX__TIMER_ARM__INIT;
    ta.id = 3; ta.deadline_ns = 500; ta.generation = 1;
    e.msg_case = PLX__ENVELOPE__MSG_TIMER_ARM; e.timer_arm = &ta;
    frame(&e);
    ta.id = 300;
    frame(&e);
    Plx__TimerCancel tc = PLX__TIMER_CANCEL__INIT;
    tc.id = 3;
    e.msg_case = PLX__ENVELOPE__MSG_TIMER_CANCEL; e.timer_cancel = &tc;
    frame(&e);
    fclose(out);

    begin(dir, "log-reply-goodbye", 0);
    Plx__Log lg = PLX__LOG__INIT;
    lg.level = 4; lg.text = "hello\tfrom\na device\x01";
    e.msg_case = PLX__ENVELOPE__MSG_LOG; e.log = &lg;
    frame(&e);
    Plx__MmioReply rp = PLX__MMIO_REPLY__INIT;
    rp.seq = 77; rp.data = 5;
    e.msg_case = PLX__ENVELOPE__MSG_REPLY; e.reply = &rp;
    frame(&e);
    Plx__Goodbye gb = PLX__GOODBYE__INIT;
    gb.status = 3;
    e.msg_case = PLX__ENVELOPE__MSG_GOODBYE; e.goodbye = &gb;
    frame(&e);
    fclose(out);

    begin(dir, "declare", 1);
    Plx__AccessRules rules = PLX__ACCESS_RULES__INIT;
    rules.min_access_size = 1; rules.max_access_size = 4;
    Plx__Range rt = PLX__RANGE__INIT;
    rt.offset = 0; rt.len = 4;
    Plx__Range *rts[] = { &rt };
    Plx__RegionDecl r0 = PLX__REGION_DECL__INIT, r1 = PLX__REGION_DECL__INIT;
    r0.name = "regs"; r0.size = 0x100; r0.kind = PLX__REGION_KIND__REGION_IO; r0.valid = &rules; r0.impl = &rules;
    r0.has_read = r0.has_write = true;
    r1.name = "shadow"; r1.size = 0x1000; r1.kind = PLX__REGION_KIND__REGION_SHADOW; r1.valid = &rules;
    r1.impl = &rules; r1.n_read_through = 1; r1.read_through = rts;
    Plx__RegionDecl *regs[] = { &r0, &r1 };
    char *irqs[] = { "irq", "tx" };
    Plx__PropDecl pd = PLX__PROP_DECL__INIT;
    pd.name = "speed"; pd.default_value = "9600";
    Plx__PropDecl *pds[] = { &pd };
    Plx__Declare dc = PLX__DECLARE__INIT;
    dc.n_regions = 2; dc.regions = regs; dc.n_irqs = 2; dc.irqs = irqs; dc.n_props = 1; dc.props = pds;
    e.msg_case = PLX__ENVELOPE__MSG_DECLARE; e.declare = &dc;
    frame(&e);
    fclose(out);

    begin(dir, "garbage", 0);
    static const uint8_t junk[] = { 5, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 3, 0, 0x0a, 0x80, 0x01, 0, 0 };
    fwrite(junk, 1, sizeof(junk), out);
    fclose(out);

    /* The ring's fixed layouts (docs/protocol.md §12): an Irq raising line 0, a stray MmioReply, a 4-byte DMA
     * write into RAM and a 4-byte DMA read. */
    begin(dir, "fixed", 2);
    fixed_frame(4, 0, 0, 100, 1, 0, NULL, 0);
    fixed_frame(2, 0, 0, 100, 9, 0x12345678, NULL, 0);
    fixed_frame(5, 1, 4, 100, 1, RAM_BASE + 0x10, (const uint8_t *)"\xde\xad\xbe\xef", 4);
    fixed_frame(5, 0, 4, 100, 2, RAM_BASE + 0x10, NULL, 0);
    /* a posted-write batch of one entry (hub -> device only: the hub drops it, after decoding it) */
    plx_wire fw = { .fixed = true };
    plx_wire_batch b;
    if (plx_wire_batch_init(&b, true) < 0)
        return 1;
    plx_wire_batch_add(&fw, &b, 7, 0, 0x10, 4, 0xabcd, 100);
    const uint8_t *frame;
    size_t flen = plx_wire_batch_frame(&fw, &b, 100, &frame);
    uint8_t lenb[2] = { (uint8_t)flen, (uint8_t)(flen >> 8) };
    fwrite(lenb, 1, 2, out);
    fwrite(frame, 1, flen, out);
    plx_wire_batch_fini(&b);
    fclose(out);
    return 0;
}
#endif
