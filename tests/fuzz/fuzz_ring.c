/*
 * libFuzzer target: the shared-memory ring as a device could leave it. The hub's end of a fresh ring (64 slots
 * per direction) reads memory the input wrote: the device's producer index, the consumer index of the hub's
 * ring, and the device-to-hub slots. The hub side receives until it has nothing or an error, decoding each
 * frame as the hub does (fixed layout or protobuf), then tries to send: whatever the bytes, it must neither
 * crash, read or write outside the mapping, nor loop; an error must come with a description.
 *
 * Input: [u64 device head][u64 hub-ring tail][slot bytes...] (little-endian; missing bytes are zero).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <plexus/chan.h>
#include <plexus/wire.h>

#define SLOTS 64u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fds[PLX_RING_FDS];
    plx_chan *hub = plx_chan_ring_create(SLOTS, 0, fds);
    if (!hub)
        abort();
    size_t total = 4096 + 2 * SLOTS * PLX_RING_SLOT;
    uint8_t *map = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0);
    if (map == MAP_FAILED)
        abort();
    uint8_t head[16] = { 0 };
    memcpy(head, data, size < 16 ? size : 16);
    memcpy(map + 320, head, 8);             /* ring 1 (device -> hub) head */
    memcpy(map + 256, head + 8, 8);         /* ring 0 (hub -> device) tail */
    if (size > 16) {
        size_t n = size - 16;
        if (n > SLOTS * PLX_RING_SLOT)
            n = SLOTS * PLX_RING_SLOT;
        memcpy(map + 4096 + SLOTS * PLX_RING_SLOT, data + 16, n);
    }
    plx_wire w;
    plx_wire_init(&w, hub);
    for (int i = 0; i < 64; i++) {
        Plx__Envelope *env;
        int r = plx_wire_recv(&w, &env, 0);
        if (r == -EBADMSG)
            continue;
        if (r < 0) {
            if (r == -EPROTO && !plx_chan_error(hub)[0])
                abort();    /* a violation without words */
            break;
        }
        (void)plx_wire_msg_name(env->msg_case);
        plx_wire_release(&w);
    }
    Plx__Reset rs = PLX__RESET__INIT;
    Plx__Envelope e = PLX__ENVELOPE__INIT;
    e.msg_case = PLX__ENVELOPE__MSG_RESET;
    e.reset = &rs;
    int r = plx_wire_send(&w, &e, PLX_CHAN_DONTWAIT);
    if (r == -EPROTO && !plx_chan_error(hub)[0])
        abort();
    plx_wire_fini(&w);
    munmap(map, total);
    plx_chan_close(hub);
    return 0;
}
