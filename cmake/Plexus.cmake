# Helpers shared by every module.

# RISC-V firmware (the examples', and the test firmware `plexus new-device` ships), built with Debian's
# riscv64-unknown-elf-gcc and picolibc when they are installed.
find_program(PLEXUS_RISCV_GCC riscv64-unknown-elf-gcc)
if(PLEXUS_RISCV_GCC AND EXISTS /usr/lib/picolibc/riscv64-unknown-elf/picolibc.specs)
  set(firmware_default ON)
else()
  set(firmware_default OFF)
endif()
option(PLEXUS_FIRMWARE "Build the RISC-V example firmware (riscv64-unknown-elf-gcc + picolibc)" ${firmware_default})
if(PLEXUS_FIRMWARE AND NOT PLEXUS_RISCV_GCC)
  message(FATAL_ERROR "PLEXUS_FIRMWARE=ON but riscv64-unknown-elf-gcc was not found (scripts/deps.sh installs it)")
endif()
# Flags of the assembly-only firmware (no C library, code at the start of RAM), shared with the Makefiles of
# examples/out-of-tree-device and templates/.
set(PLEXUS_BARE_FIRMWARE_FLAGS -march=rv64gc -mabi=lp64d -mcmodel=medany -nostdlib -nostartfiles -Wl,-N
    -Wl,-Ttext=0x80000000 -Wl,--no-warn-rwx-segments)

# plexus_enable_cxx(<standard>): C++ for the calling directory (the project is C): the standard, asserts kept as
# in C, and the project's C-only warning options (-Wmissing-prototypes, -Wstrict-prototypes, which g++ rejects
# under -Werror) restricted to C sources.
macro(plexus_enable_cxx std)
  enable_language(CXX)
  set(CMAKE_CXX_STANDARD ${std})
  set(CMAKE_CXX_STANDARD_REQUIRED ON)
  set(CMAKE_CXX_EXTENSIONS OFF)
  string(REPLACE "-DNDEBUG" "" CMAKE_CXX_FLAGS_RELWITHDEBINFO "${CMAKE_CXX_FLAGS_RELWITHDEBINFO}")
  string(REPLACE "-DNDEBUG" "" CMAKE_CXX_FLAGS_RELEASE "${CMAKE_CXX_FLAGS_RELEASE}")
  get_directory_property(_plx_opts COMPILE_OPTIONS)
  set(_plx_new_opts)
  foreach(_o IN LISTS _plx_opts)
    if(_o STREQUAL "-Wmissing-prototypes" OR _o STREQUAL "-Wstrict-prototypes")
      list(APPEND _plx_new_opts "$<$<COMPILE_LANGUAGE:C>:${_o}>")
    else()
      list(APPEND _plx_new_opts "${_o}")
    endif()
  endforeach()
  set_directory_properties(PROPERTIES COMPILE_OPTIONS "${_plx_new_opts}")
endmacro()

# plexus_install_programs(<target>...): install executables into bin/ with a run path to the installed lib/,
# relative to the program itself ($ORIGIN), so they find libplexus-sdk from any prefix.
function(plexus_install_programs)
  file(RELATIVE_PATH rel ${CMAKE_INSTALL_FULL_BINDIR} ${CMAKE_INSTALL_FULL_LIBDIR})
  set_target_properties(${ARGN} PROPERTIES INSTALL_RPATH "$ORIGIN/${rel}")
  install(TARGETS ${ARGN} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endfunction()

# plexus_install_plugins(<target>...): install device plugins into lib/plexus/devices/ (where the hub looks for
# a bare plugin name), with a run path from there to lib/.
function(plexus_install_plugins)
  file(RELATIVE_PATH rel ${CMAKE_INSTALL_PREFIX}/${PLEXUS_INSTALL_PLUGINDIR} ${CMAKE_INSTALL_FULL_LIBDIR})
  string(REGEX REPLACE "/$" "" rel "${rel}")
  set_target_properties(${ARGN} PROPERTIES INSTALL_RPATH "$ORIGIN/${rel}")
  install(TARGETS ${ARGN} LIBRARY DESTINATION ${PLEXUS_INSTALL_PLUGINDIR})
endfunction()

# plexus_install_dir_var(<var> <install dir>): <install dir> as a pkg-config value under ${prefix}.
function(plexus_install_dir_var var dir)
  if(IS_ABSOLUTE "${dir}")
    set(${var} "${dir}" PARENT_SCOPE)
  else()
    set(${var} "\${prefix}/${dir}" PARENT_SCOPE)
  endif()
endfunction()

# plexus_pkgconfig(<target> NAME <pc-name> DESCRIPTION <text> [LIBS_PRIVATE <flags>] [RUN_PATH]
#                  [UNINSTALLED_INCLUDES <dirs>] [REQUIRES <pc-names>])
# Installs <target> and <pc-name>.pc (REQUIRES: what its users need too, e.g. its headers' libraries). The .pc file is relocatable: its prefix is found from the file's own place.
# RUN_PATH (shared libraries): when the library is installed outside the loader's system search path, `Libs`
# also carries -Wl,-rpath,${libdir}, so a program linked with `pkg-config --libs` runs without LD_LIBRARY_PATH;
# in a system library folder (a Debian package, --prefix /usr) it does not. The choice is made at install time,
# when the final prefix is known. UNINSTALLED_INCLUDES also writes <build>/lib/pkgconfig/<pc-name>-uninstalled.pc,
# which pkg-config prefers when that folder is on PKG_CONFIG_PATH: the library of this build tree.
function(plexus_pkgconfig target)
  cmake_parse_arguments(P "RUN_PATH" "NAME;DESCRIPTION" "LIBS_PRIVATE;UNINSTALLED_INCLUDES;REQUIRES" ${ARGN})
  string(REPLACE ";" " " P_LIBS_PRIVATE "${P_LIBS_PRIVATE}")
  get_target_property(outname ${target} OUTPUT_NAME)
  if(NOT outname)
    set(outname ${target})
  endif()
  string(REGEX REPLACE "^lib" "" outname "${outname}")
  file(RELATIVE_PATH pc_to_prefix ${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig ${CMAKE_INSTALL_PREFIX})
  string(REGEX REPLACE "/$" "" pc_to_prefix "${pc_to_prefix}")
  plexus_install_dir_var(libdir ${CMAKE_INSTALL_LIBDIR})
  plexus_install_dir_var(includedir ${CMAKE_INSTALL_INCLUDEDIR})
  plexus_install_dir_var(bindir ${CMAKE_INSTALL_BINDIR})
  plexus_install_dir_var(plugindir ${PLEXUS_INSTALL_PLUGINDIR})
  set(body "Name: ${P_NAME}\nDescription: ${P_DESCRIPTION}\nVersion: ${PROJECT_VERSION}\n")
  if(P_REQUIRES)
    string(REPLACE ";" " " P_REQUIRES "${P_REQUIRES}")
    string(APPEND body "Requires: ${P_REQUIRES}\n")
  endif()
  foreach(variant plain rpath)
    set(rpath "")
    if(variant STREQUAL "rpath")
      set(rpath " -Wl,-rpath,\${libdir}")
    endif()
    file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/${P_NAME}-${variant}.pc
"prefix=\${pcfiledir}/${pc_to_prefix}
libdir=${libdir}
includedir=${includedir}
bindir=${bindir}
plugindir=${plugindir}

${body}Libs: -L\${libdir}${rpath} -l${outname}
Libs.private: ${P_LIBS_PRIVATE}
Cflags: -I\${includedir}
")
  endforeach()
  if(P_UNINSTALLED_INCLUDES)
    list(TRANSFORM P_UNINSTALLED_INCLUDES PREPEND "-I")
    string(REPLACE ";" " " cflags "${P_UNINSTALLED_INCLUDES}")
    file(WRITE ${PROJECT_BINARY_DIR}/lib/pkgconfig/${P_NAME}-uninstalled.pc
"libdir=${PROJECT_BINARY_DIR}/lib
bindir=${PROJECT_BINARY_DIR}/bin
plugindir=${PROJECT_BINARY_DIR}/lib

${body}Libs: -L\${libdir} -Wl,-rpath,\${libdir} -l${outname}
Libs.private: ${P_LIBS_PRIVATE}
Cflags: ${cflags}
")
  endif()

  install(TARGETS ${target}
          LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
          RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  # The loader's system search path (`ld.so --help` lists it). Folders of ld.so.conf such as /usr/local/lib are
  # not searched before ldconfig has run, so a library there gets the run path too.
  set(sysdirs /lib /usr/lib /lib64 /usr/lib64)
  if(CMAKE_LIBRARY_ARCHITECTURE)
    list(APPEND sysdirs /lib/${CMAKE_LIBRARY_ARCHITECTURE} /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE})
  endif()
  set(script ${CMAKE_CURRENT_BINARY_DIR}/${P_NAME}-install-pc.cmake)
  file(WRITE ${script}
"# Installs ${P_NAME}.pc, with a run path in Libs unless the library lands in a system folder of the loader.
cmake_policy(VERSION ${CMAKE_MINIMUM_REQUIRED_VERSION})
set(libdir \"${CMAKE_INSTALL_LIBDIR}\")
if(NOT IS_ABSOLUTE \"\${libdir}\")
  set(libdir \"\${CMAKE_INSTALL_PREFIX}/\${libdir}\")
endif()
get_filename_component(libdir \"\${libdir}\" ABSOLUTE)
set(sysdirs \"${sysdirs}\")
list(FIND sysdirs \"\${libdir}\" system)
set(variant plain)
if(${P_RUN_PATH} AND system EQUAL -1)
  set(variant rpath)
endif()
file(INSTALL DESTINATION \"\${libdir}/pkgconfig\" TYPE FILE RENAME ${P_NAME}.pc
     FILES \"${CMAKE_CURRENT_BINARY_DIR}/${P_NAME}-\${variant}.pc\")
")
  install(SCRIPT ${script})
endfunction()

# plexus_criterion_test(<name> SOURCES <files> [LIBS <libs>] [TIMEOUT <s>])
# One Criterion binary, registered with ctest under <name>.
find_library(CRITERION_LIB criterion REQUIRED)
function(plexus_criterion_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${CRITERION_LIB} ${T_LIBS})
  add_test(NAME ${name} COMMAND ${name} --jobs 1)
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT}
    ENVIRONMENT "PLEXUS_BUILD_DIR=${PROJECT_BINARY_DIR};PLEXUS_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
endfunction()

# plexus_zeromq_variant(<test>...): run each Criterion test binary once more with PLEXUS_TRANSPORT=zmq, so every
# device on this host stays on ZeroMQ: the path the ring replaced keeps passing the same tests.
function(plexus_zeromq_variant)
  foreach(name ${ARGN})
    if(NOT TARGET ${name})
      continue()
    endif()
    add_test(NAME ${name}-zmq COMMAND ${name} --jobs 1)
    set_tests_properties(${name}-zmq PROPERTIES TIMEOUT 600
      ENVIRONMENT "PLEXUS_BUILD_DIR=${PROJECT_BINARY_DIR};PLEXUS_SOURCE_DIR=${PROJECT_SOURCE_DIR};PLEXUS_TRANSPORT=zmq")
  endforeach()
endfunction()
