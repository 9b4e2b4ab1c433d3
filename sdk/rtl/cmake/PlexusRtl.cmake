# RTL co-simulation helpers (Verilator). Include this file from any directory that builds C++ against
# <plexus/rtl-sim.hpp> or <plexus/sdk-rtl.hpp>, then call plexus_rtl_enable():
#
#   include(${PROJECT_SOURCE_DIR}/sdk/rtl/cmake/PlexusRtl.cmake)
#   plexus_rtl_enable()
#   if(NOT PLEXUS_RTL_FOUND)
#     return()
#   endif()
#   plexus_verilate(my-model TOP my_top SOURCES rtl/my_top.v)
#   add_executable(my-device src/main.cpp)
#   target_link_libraries(my-device PRIVATE my-model plexus-sdk-rtl plexus-sdk)
#
# The project is C-only; plexus_rtl_enable() enables C++ 20 for the calling directory (plexus_enable_cxx) and
# makes sure the sdk/rtl targets exist:
#   plexus-verilated  the Verilator runtime (verilated.cpp, VCD writer, threads), built once, with the project's flags
#   plexus-sdk-rtl    interface library: include path of <plexus/rtl-sim.hpp> (SDK independent) and
#                     <plexus/sdk-rtl.hpp> (device glue), and the Verilator runtime

macro(plexus_rtl_enable)
  find_program(VERILATOR_EXECUTABLE verilator)
  if(NOT VERILATOR_EXECUTABLE)
    set(PLEXUS_RTL_FOUND FALSE)
    message(STATUS "plexus: verilator not found; skipping RTL co-simulation in ${CMAKE_CURRENT_SOURCE_DIR}")
  else()
    set(PLEXUS_RTL_FOUND TRUE)
    plexus_enable_cxx(20)
    get_property(_plx_rtl_added GLOBAL PROPERTY PLEXUS_SDK_RTL_ADDED)
    if(NOT _plx_rtl_added)
      add_subdirectory(${PROJECT_SOURCE_DIR}/sdk/rtl ${PROJECT_BINARY_DIR}/sdk/rtl)
    endif()
  endif()
endmacro()

# plexus_verilate(<target> TOP <module> SOURCES <.v files> [INCLUDE_DIRS <dirs>] [VERILATOR_ARGS <args>])
# Verilates <module> into a static archive at build time (single-threaded model, VCD tracing compiled in,
# 1 ps time unit) and defines the interface library <target>: link it to get V<module>.h and the model.
# The model's C++ is compiled with -O1 and, under PLEXUS_SANITIZE, with the same sanitizers as the rest.
function(plexus_verilate target)
  cmake_parse_arguments(V "" "TOP" "SOURCES;INCLUDE_DIRS;VERILATOR_ARGS" ${ARGN})
  if(NOT V_TOP OR NOT V_SOURCES)
    message(FATAL_ERROR "plexus_verilate(${target}): TOP and SOURCES are required")
  endif()
  set(prefix V${V_TOP})
  set(mdir ${CMAKE_CURRENT_BINARY_DIR}/${target}.verilated)
  set(archive ${mdir}/${prefix}__ALL.a)
  set(abs_sources)
  foreach(s IN LISTS V_SOURCES)
    get_filename_component(a ${s} ABSOLUTE BASE_DIR ${CMAKE_CURRENT_SOURCE_DIR})
    list(APPEND abs_sources ${a})
  endforeach()
  set(incs)
  foreach(d IN LISTS V_INCLUDE_DIRS)
    get_filename_component(a ${d} ABSOLUTE BASE_DIR ${CMAKE_CURRENT_SOURCE_DIR})
    list(APPEND incs -y ${a})
  endforeach()
  set(cflags "-g -fPIC")
  if(PLEXUS_SANITIZE)
    # -fno-sanitize=alignment: the trace code of Verilator < 5.012 (verilator issue 4201), see sdk/rtl/CMakeLists.txt
    string(APPEND cflags " -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined")
    string(APPEND cflags " -fno-sanitize=alignment")
  endif()
  add_custom_command(
    OUTPUT ${archive} ${mdir}/${prefix}.h
    # Verilator's own make must not inherit the outer make's jobserver flags: it builds with one job.
    COMMAND ${CMAKE_COMMAND} -E env --unset=MAKEFLAGS --unset=MFLAGS --unset=MAKELEVEL
            ${VERILATOR_EXECUTABLE} --cc --build --build-jobs 1 --no-timing --trace
            --timescale-override 1ps/1ps -Wall --top-module ${V_TOP} --prefix ${prefix} -Mdir ${mdir}
            -CFLAGS ${cflags}
            -MAKEFLAGS "OPT_FAST=-O1 OPT_SLOW=-O1 OPT_GLOBAL=-O1 CXX=${CMAKE_CXX_COMPILER}"
            ${incs} ${V_VERILATOR_ARGS} ${abs_sources}
    DEPENDS ${abs_sources}
    WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}
    COMMENT "Verilating ${V_TOP}"
    VERBATIM)
  add_custom_target(${target}-verilate DEPENDS ${archive})
  add_library(${target} INTERFACE)
  add_dependencies(${target} ${target}-verilate)
  target_include_directories(${target} INTERFACE ${mdir})
  target_link_libraries(${target} INTERFACE ${archive} plexus-sdk-rtl)
endfunction()
