# flywheel_target_warnings(target): -Wall -Wextra -Werror on code we own (never on generated code).
function(flywheel_target_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Werror -Wno-unused-parameter
                                           -Wno-missing-field-initializers)
  # GCC 12 reports absl::InlinedVector moves as maybe-uninitialized and std::string copies as
  # overlapping (-Wrestrict): known false positives.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    target_compile_options(${target} PRIVATE -Wno-maybe-uninitialized -Wno-restrict)
  endif()
  # RapidJSON 1.1's member iterators define == and != in a way C++20's reversed operators make
  # ambiguous for clang; the comparison itself is well defined.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    target_compile_options(${target} PRIVATE -Wno-ambiguous-reversed-operator)
  endif()
endfunction()
