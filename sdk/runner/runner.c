/*
 * plexus-device-runner PLUGIN.so [args]: run a device plugin built with PLX_DEVICE_DEFINE.
 * The hub spawns it with PLEXUS_ENDPOINT set; it can also attach (see plx_dev_main in plexus/sdk.h).
 */
#include <dlfcn.h>
#include <stdio.h>

#include "plexus/sdk.h"

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: plexus-device-runner PLUGIN.so [--plexus-endpoint=URL | --plexus-attach=PATH "
                        "--plexus-name=NAME] [device args]\n");
        return 2;
    }
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "plexus-device-runner: cannot load %s: %s\n", argv[1], dlerror());
        return 2;
    }
    plx_device_entry_fn *entry = (plx_device_entry_fn *)dlsym(h, PLX_DEVICE_ENTRY_SYMBOL);
    if (!entry) {
        fprintf(stderr, "plexus-device-runner: %s exports no %s (use PLX_DEVICE_DEFINE)\n", argv[1],
                PLX_DEVICE_ENTRY_SYMBOL);
        dlclose(h);
        return 2;
    }
    int status = plx_dev_main(entry(), argc - 1, argv + 1);
    dlclose(h);
    return status;
}
