/* The DMA engine's ops table, shared by the program (main.c) and the plugin. */
#ifndef PLEXUS_DEVICES_DMA_H
#define PLEXUS_DEVICES_DMA_H

#include <plexus/sdk.h>

extern const plx_device_ops dma_engine_ops;

#endif
