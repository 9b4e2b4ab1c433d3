/* plexus-virtio-blk: the virtio block device as a program the hub spawns. */
#include "blk.h"

int main(int argc, char **argv)
{
    return plx_virtio_main(&virtio_blk_ops, argc, argv);
}
