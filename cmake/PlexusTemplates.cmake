# plexus_embed_templates(<out.c> DIR <templates> [FIRMWARE <elf>])
# <out.c> holds every file of DIR's subfolders (and FIRMWARE as common/firmware.elf), regenerated whenever one
# changes: what `plexus new-device` writes (hub/src/machine/newdev.c).
function(plexus_embed_templates out)
  cmake_parse_arguments(E "" "DIR;FIRMWARE" "" ${ARGN})
  file(GLOB_RECURSE files LIST_DIRECTORIES false CONFIGURE_DEPENDS ${E_DIR}/*)
  set(script ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/EmbedTemplates.cmake)
  add_custom_command(OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -DDIR=${E_DIR} -DOUT=${out} -DFIRMWARE=${E_FIRMWARE} -P ${script}
    DEPENDS ${files} ${E_FIRMWARE} ${script}
    COMMENT "Embedding the new-device templates"
    VERBATIM)
endfunction()
