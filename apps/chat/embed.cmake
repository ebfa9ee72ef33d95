# cmake -DIN=file -DOUT=header -DNAME=identifier -P embed.cmake
# Writes OUT, a C header holding IN's bytes as `static const unsigned char NAME[]` followed by a
# NUL that is not part of the file (so sizeof(NAME) - 1 is its length). Any bytes work: each one
# is written as a number, so nothing in the file needs escaping.
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" hex_len)
math(EXPR size "${hex_len} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
# Sixteen bytes a line keeps the header readable.
string(REPEAT "0x[0-9a-f][0-9a-f]," 16 line)
string(REGEX REPLACE "(${line})" "\\1\n    " bytes "${bytes}")
file(WRITE "${OUT}.tmp"
  "/* Generated from ${IN} by embed.cmake; do not edit. */\n"
  "static const unsigned char ${NAME}[${size} + 1] = {\n    ${bytes}0x00\n};\n")
# Replace only when changed, so that nothing downstream rebuilds for nothing.
execute_process(COMMAND ${CMAKE_COMMAND} -E copy_if_different "${OUT}.tmp" "${OUT}")
file(REMOVE "${OUT}.tmp")
