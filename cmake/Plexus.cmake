# Helpers shared by every module.

# plexus_pkgconfig(<target> NAME <pc-name> DESCRIPTION <text> [REQUIRES <pc modules>] [LIBS_PRIVATE <flags>])
# Installs <target>, writes <pc-name>.pc and installs it.
function(plexus_pkgconfig target)
  cmake_parse_arguments(P "" "NAME;DESCRIPTION" "REQUIRES;LIBS_PRIVATE" ${ARGN})
  string(REPLACE ";" " " P_REQUIRES "${P_REQUIRES}")
  string(REPLACE ";" " " P_LIBS_PRIVATE "${P_LIBS_PRIVATE}")
  get_target_property(outname ${target} OUTPUT_NAME)
  if(NOT outname)
    set(outname ${target})
  endif()
  string(REGEX REPLACE "^lib" "" outname "${outname}")
  # Relocatable: the prefix is found from the .pc file's own place, so `cmake --install --prefix X` works.
  file(RELATIVE_PATH pc_to_prefix "/p/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/p")
  string(REGEX REPLACE "/$" "" pc_to_prefix "${pc_to_prefix}")
  file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/${P_NAME}.pc
"prefix=\${pcfiledir}/${pc_to_prefix}
libdir=\${prefix}/${CMAKE_INSTALL_LIBDIR}
includedir=\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}

Name: ${P_NAME}
Description: ${P_DESCRIPTION}
Version: ${PROJECT_VERSION}
Requires.private: ${P_REQUIRES}
Libs: -L\${libdir} -l${outname}
Libs.private: ${P_LIBS_PRIVATE}
Cflags: -I\${includedir}
")
  install(TARGETS ${target}
          LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
          RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  install(FILES ${CMAKE_CURRENT_BINARY_DIR}/${P_NAME}.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
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
