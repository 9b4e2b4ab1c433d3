/* The virtio entropy device's ops table, shared by the program (main.c) and the plugin. */
#ifndef PLEXUS_DEVICES_VIRTIO_RNG_H
#define PLEXUS_DEVICES_VIRTIO_RNG_H

#include <plexus/virtio.h>

extern const plx_virtio_ops virtio_rng_ops;

#endif
