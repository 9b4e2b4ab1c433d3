/*
 * @NAME@: the Verilog peripheral of rtl/@ID@.v, Verilated, as a plexus device (made by `plexus new-device`).
 * <plexus/sdk-rtl.hpp> clocks the model in step with the machine's virtual time and drives guest accesses onto
 * its register port; its properties (clock_hz, vcd, ...) are listed in @DOCDIR@/cosim.md.
 */
#include <plexus/sdk-rtl.hpp>

#include "V@ID@.h"

int main(int argc, char **argv)
{
    plexus::rtl::DeviceInfo info;
    info.model = "example,@NAME@";
    info.region_name = "regs";
    info.region_size = 0x100;           // machine.yaml places it at 0x10020000
    info.access_size = 4;               // the bus width: the only guest access size accepted
    info.clock_hz = "100000000";        // default of the clock_hz property
    return plexus::rtl::Device<V@ID@>::main(info, argc, argv);
}
