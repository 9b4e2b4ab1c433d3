/* The ns16550a device's ops table, shared by the program (main.c) and the plugin. */
#ifndef PLEXUS_DEVICES_UART16550_H
#define PLEXUS_DEVICES_UART16550_H

#include <plexus/sdk.h>

#define UART16550_REGION_SIZE 0x100

extern const plx_device_ops uart16550_ops;

#endif
