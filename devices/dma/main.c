/* plexus-dma: the DMA engine as a device program the hub spawns. */
#include "dma.h"

int main(int argc, char **argv)
{
    return plx_dev_main(&dma_engine_ops, argc, argv);
}
