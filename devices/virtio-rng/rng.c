/*
 * virtio entropy device (virtio 1.x device ID 4): one queue; every chain's device-writable buffers are filled
 * with bytes from the host's getrandom(). Built into the plexus-virtio-rng program (main.c) and the
 * plexus-virtio-rng.so plugin.
 */
#include <errno.h>
#include <sys/random.h>

#include <plexus/virtio.h>

#include "rng.h"

static void rng_request(void *opaque, plx_virtio_req *req)
{
    plx_dev *dev = opaque;
    size_t done = 0;

    for (unsigned i = 0; i < req->n_in; i++) {
        size_t got = 0;

        while (got < req->in[i].iov_len) {
            ssize_t n = getrandom((char *)req->in[i].iov_base + got, req->in[i].iov_len - got, 0);

            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                plx_log(dev, PLX_LOG_WARNING, "getrandom failed: errno %d", errno);
                plx_virtio_complete(req, (uint32_t)(done + got));
                return;
            }
            got += (size_t)n;
        }
        done += got;
    }
    plx_virtio_complete(req, (uint32_t)done);
}

static int rng_init(plx_virtio *vio, void **opaque)
{
    *opaque = plx_virtio_dev(vio);
    return 0;
}

const plx_virtio_ops virtio_rng_ops = {
    .version = PLX_VIRTIO_OPS_VERSION,
    .model = "plexus,virtio-rng",
    .device_id = PLX_VIRTIO_ID_RNG,
    .n_queues = 1,
    .queue_size = 64,
    .init = rng_init,
    .request = rng_request,
};

PLX_VIRTIO_DEVICE_DEFINE(&virtio_rng_ops);
