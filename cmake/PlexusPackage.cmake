# The Debian package: `cpack -G DEB` in a build tree (scripts/test-package.sh builds, installs and removes it).
# One package, plexus, installed under /usr: the programs, plugins, SDK (library, headers, pkg-config files),
# examples and documents. Its dependencies are computed from the binaries by dpkg-shlibdeps.
set(CPACK_PACKAGE_NAME plexus)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "multi-process device co-simulation around a RISC-V 64 machine")
set(CPACK_PACKAGE_DESCRIPTION
  "A hub process owns guest RAM, keeps a QEMU-style memory map and runs a RISC-V 64 CPU that boots real firmware;
device models run as separate processes and talk to it over a shared-memory ring or ZeroMQ. Includes the device
SDK (C, C++ for Verilated RTL, and the SystemC TLM-2.0 bridge), example machines with their firmware, and plexus
new-device.")
set(CPACK_PACKAGE_CONTACT "plexus maintainers <plexus@localhost>")
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION devel)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# The package's own library: dpkg-shlibdeps resolves the programs' libplexus-sdk.so.0 there, and the package gets
# a shlibs file and the ldconfig trigger.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS ${PROJECT_BINARY_DIR}/lib)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
# examples/u-boot boots Debian's U-Boot; building a device needs a C compiler, make and pkg-config (C++ and
# Verilator for RTL devices, C++ and SystemC's headers for SystemC models); rebuilding example firmware needs the
# RISC-V toolchain.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "u-boot-qemu, gcc, make, pkg-config")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "verilator, g++, libsystemc-dev, gcc-riscv64-unknown-elf, device-tree-compiler")
include(CPack)
