# Global sanitizer and fuzzer flags, applied to every target so that ASan sees every allocation of
# the process. `make test` builds one tree with both: the unit and integration tests run under
# ASan+UBSan (any report fails), and the libFuzzer targets link against the same objects.
if(FLYWHEEL_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined -fno-sanitize-recover=all)
endif()
if(FLYWHEEL_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "FLYWHEEL_FUZZ needs clang: configure with CXX=clang++ CC=clang")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
