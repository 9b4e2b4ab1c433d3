/* plexus-uart16550: the ns16550a UART as a device program the hub spawns. */
#include "uart16550.h"

int main(int argc, char **argv)
{
    return plx_dev_main(&uart16550_ops, argc, argv);
}
