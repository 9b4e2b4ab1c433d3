/*
 * Benchmark device for plexus-bench-virtio-path: a virtio device (ID 0x7e58, one queue of 256) that answers every
 * chain at once, writing into its first device-writable buffer when it saw the chain and when it completed it
 * (two u64, CLOCK_MONOTONIC ns: the host clock every process shares).
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include <plexus/virtio.h>

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static void request(void *opaque, plx_virtio_req *req)
{
    uint64_t stamp[2] = { now_ns(), 0 };
    stamp[1] = now_ns();
    plx_virtio_req_write(req, 0, stamp, sizeof(stamp));
    plx_virtio_complete(req, sizeof(stamp));
}

static int init(plx_virtio *vio, void **opaque)
{
    *opaque = vio;
    return 0;
}

static const plx_virtio_ops ops = {
    .version = PLX_VIRTIO_OPS_VERSION,
    .model = "plexus,bench-virtio-stamp",
    .device_id = 0x7e58,
    .n_queues = 1,
    .queue_size = 256,
    .init = init,
    .request = request,
};

int main(int argc, char **argv)
{
    return plx_virtio_main(&ops, argc, argv);
}
