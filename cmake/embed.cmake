# cmake -DIN=file -DOUT=header.h -DNAME=symbol -P embed.cmake
# Writes a C header holding IN's bytes as a NUL-terminated array NAME, so a
# program can carry a text file (the bench report's script) without reading
# it at run time.
file(READ ${IN} hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" bytes "${bytes}")
file(WRITE ${OUT}.tmp "/* Generated from ${IN} by cmake/embed.cmake; do not edit. */\n"
                      "static const char ${NAME}[] = {\n${bytes}0x00\n};\n")
file(RENAME ${OUT}.tmp ${OUT})
