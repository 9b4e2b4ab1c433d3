/* plexus-virtio-rng: the virtio entropy device as a program the hub spawns. */
#include "rng.h"

int main(int argc, char **argv)
{
    return plx_virtio_main(&virtio_rng_ops, argc, argv);
}
