/*
 * Test device for the virtio layer (<plexus/virtio.h>): device ID 0x7e57, one device feature (bit 0), two queues
 * of 8 entries.
 *   queue 0 "echo": every chain is answered at once: its device-writable buffers get the device-readable bytes
 *                   XOR 0xff (as many as fit), and the used length says how many.
 *   queue 1 "hold": chains are kept, in flight, until the driver writes command 1.
 * Configuration space (12 bytes):
 *   0x0 u32 magic 0x56544553 ("VTES"), read-only
 *   0x4 u32 command (write): 1 = complete every held chain, newest first, used length 0; 2 = add 1 to the counter
 *           and announce a configuration change; 3 = the device asks for a reset (plx_virtio_needs_reset)
 *   0x8 u32 counter
 * The held chains survive a restart of the process: the layer hands them to the new one again.
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <plexus/virtio.h>

#define MAGIC 0x56544553u
#define MAX_HELD 64

struct config {
    uint32_t magic, command, counter;
};

struct vtest {
    plx_virtio *vio;
    plx_virtio_req *held[MAX_HELD];
    unsigned n_held;
};

static struct config *cfg(struct vtest *t)
{
    return plx_virtio_config(t->vio);
}

static void echo(plx_virtio_req *req)
{
    size_t n = req->out_len < req->in_len ? req->out_len : req->in_len;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) {
        plx_virtio_complete(req, 0);
        return;
    }
    plx_virtio_req_read(req, 0, buf, n);
    for (size_t i = 0; i < n; i++)
        buf[i] ^= 0xff;
    plx_virtio_req_write(req, 0, buf, n);
    free(buf);
    plx_virtio_complete(req, (uint32_t)n);
}

static void request(void *opaque, plx_virtio_req *req)
{
    struct vtest *t = opaque;
    if (req->queue == 0 || t->n_held == MAX_HELD) {
        echo(req);
        return;
    }
    t->held[t->n_held++] = req;
}

static void config_write(void *opaque, unsigned offset, unsigned size)
{
    struct vtest *t = opaque;
    struct config *c = cfg(t);
    uint32_t cmd = le32toh(c->command);
    c->command = 0;
    c->magic = htole32(MAGIC);      /* read-only */
    switch (cmd) {
    case 1:
        while (t->n_held)
            plx_virtio_complete(t->held[--t->n_held], 0);
        break;
    case 2:
        c->counter = htole32(le32toh(c->counter) + 1);
        plx_virtio_config_changed(t->vio);
        break;
    case 3:
        plx_virtio_needs_reset(t->vio, "vtest: asked to by the driver");
        break;
    default:
        break;
    }
}

static void reset(void *opaque)
{
    struct vtest *t = opaque;
    t->n_held = 0;      /* completing them after a reset is allowed and dropped; forgetting them is too */
}

static int init(plx_virtio *vio, void **opaque)
{
    struct vtest *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->vio = vio;
    struct config *c = plx_virtio_config(vio);
    c->magic = htole32(MAGIC);
    *opaque = t;
    return 0;
}

static void fini(void *opaque)
{
    free(opaque);
}

static const plx_virtio_ops ops = {
    .version = PLX_VIRTIO_OPS_VERSION,
    .model = "plexus,test-virtio",
    .device_id = 0x7e57,
    .features = 1,
    .n_queues = 2,
    .queue_size = 8,
    .config_size = sizeof(struct config),
    .init = init,
    .request = request,
    .reset = reset,
    .config_write = config_write,
    .fini = fini,
};

int main(int argc, char **argv)
{
    return plx_virtio_main(&ops, argc, argv);
}
