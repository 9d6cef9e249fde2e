# Man pages, made at build time from docs/man/*.scd with scdoc (Debian's
# scdoc): ipcx(1), ipcx(7) and one section-3 page per family of functions.
# Every other name in a page's NAME line gets a link page (".so") to it, so
# `man ipcx_dial` finds ipcx_listen(3).  Installed under CMAKE_INSTALL_MANDIR.
find_program(IPCX_SCDOC scdoc)
file(GLOB IPCX_MAN_SRC CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/docs/man/*.scd)
set(IPCX_MAN_DIR ${CMAKE_BINARY_DIR}/man)

# The names of a page's NAME section: "a, b, c - what they do".
function(ipcx_man_names src ret)
  file(READ ${src} text)
  string(REGEX MATCH "# NAME\n\n([^#]*) -[ \n]" _ "${text}")
  string(REPLACE "\n" " " names "${CMAKE_MATCH_1}")
  string(REPLACE "," ";" names "${names}")
  set(out "")
  foreach(n ${names})
    string(STRIP "${n}" n)
    list(APPEND out ${n})
  endforeach()
  set(${ret} ${out} PARENT_SCOPE)
endfunction()

if(NOT IPCX_SCDOC)
  message(WARNING "scdoc not found (Debian package scdoc): no man pages")
  return()
endif()

set(outs "")
foreach(src ${IPCX_MAN_SRC})
  get_filename_component(page ${src} NAME_WLE)          # ipcx_listen.3
  string(REGEX MATCH "[0-9]$" sec ${page})
  set(out ${IPCX_MAN_DIR}/man${sec}/${page})
  add_custom_command(OUTPUT ${out}
                     COMMAND ${CMAKE_COMMAND} -E make_directory ${IPCX_MAN_DIR}/man${sec}
                     COMMAND sh -c "'${IPCX_SCDOC}' < '${src}' > '${out}.tmp' && mv '${out}.tmp' '${out}'"
                     DEPENDS ${src} VERBATIM)
  list(APPEND outs ${out})
  # The links are made at configure time: re-run it when a page changes.
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${src})
  get_filename_component(first ${page} NAME_WLE)        # ipcx_listen
  ipcx_man_names(${src} names)
  foreach(name ${names})
    if(NOT name STREQUAL first)
      file(WRITE ${IPCX_MAN_DIR}/man${sec}/${name}.${sec} ".so man${sec}/${page}\n")
    endif()
  endforeach()
endforeach()
add_custom_target(ipcx_man ALL DEPENDS ${outs})
install(DIRECTORY ${IPCX_MAN_DIR}/ DESTINATION ${CMAKE_INSTALL_MANDIR})
