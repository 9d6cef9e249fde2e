# The library's layers (docs/architecture.md): each is an object library that
# sees include/ and the private headers of the layers below it, and nothing
# else, so that the compiler, not a paragraph, keeps dependencies pointing
# one way.
#
# Private headers are included path-qualified ("core/url.h", "shm/ring.h"),
# so a reader sees which layer a name comes from.  For that each layer has a
# folder of its own in the build, build/layers/NAME, that holds one link,
# NAME -> src/NAME; a target that sees layers A and B has build/layers/A and
# build/layers/B as include folders, and a header of any other layer is not
# found.  A quoted include is also looked up beside the including file, so
# "../shm/ring.h" would get around this: tests/layering.py refuses any
# include that climbs out of its folder, and checks, target by target, that
# what a target may not see does not compile.
set(IPCX_LAYER_VIEWS ${CMAKE_BINARY_DIR}/layers)

# Everything is hidden but what is marked IPCX_EXPORT: the public API.  The
# build defines the mark, once, for every piece of the library.
set(IPCX_EXPORT_DEF "IPCX_EXPORT=__attribute__((visibility(\"default\")))")

# build/layers/NAME/NAME -> src/NAME (made again if the source tree moved).
function(ipcx_layer_view name)
  set(link ${IPCX_LAYER_VIEWS}/${name}/${name})
  if(IS_SYMLINK ${link})
    file(READ_SYMLINK ${link} old)
    if(old STREQUAL ${CMAKE_SOURCE_DIR}/src/${name})
      return()
    endif()
    file(REMOVE ${link})
  endif()
  file(MAKE_DIRECTORY ${IPCX_LAYER_VIEWS}/${name})
  file(CREATE_LINK ${CMAKE_SOURCE_DIR}/src/${name} ${link} SYMBOLIC)
endfunction()

# Compile target as library code that sees include/ and the layers named.
function(ipcx_sees target)
  target_include_directories(${target} PRIVATE ${CMAKE_SOURCE_DIR}/include)
  foreach(layer ${ARGN})
    ipcx_layer_view(${layer})
    target_include_directories(${target} PRIVATE ${IPCX_LAYER_VIEWS}/${layer})
  endforeach()
  target_compile_options(${target} PRIVATE -fvisibility=hidden)
  target_compile_definitions(${target} PRIVATE ${IPCX_EXPORT_DEF})
endfunction()

# ipcx_layer(NAME SOURCES file... SEES layer...): the object library
# ipcx_NAME_obj, whose objects go into IPCX_LIB_OBJECTS.
macro(ipcx_layer name)
  cmake_parse_arguments(IPCX_L "" "" "SOURCES;SEES" ${ARGN})
  add_library(ipcx_${name}_obj OBJECT ${IPCX_L_SOURCES})
  ipcx_sees(ipcx_${name}_obj ${IPCX_L_SEES})
  list(APPEND IPCX_LIB_OBJECTS $<TARGET_OBJECTS:ipcx_${name}_obj>)
endmacro()

# What white-box code (tests, fuzz targets) sees: every layer below the
# patterns.
set(IPCX_ALL_LAYERS core shm sync inspect)
foreach(layer ${IPCX_ALL_LAYERS})
  ipcx_layer_view(${layer})
  list(APPEND IPCX_ALL_LAYER_DIRS ${IPCX_LAYER_VIEWS}/${layer})
endforeach()
