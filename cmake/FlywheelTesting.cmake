# flywheel_test(name SOURCES a.cc b.cc LIBS lib1 lib2 [LABELS unit|integration|slow])
# A GoogleTest binary registered with CTest, run from the source root so fixtures resolve.
function(flywheel_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} GTest::gtest GTest::gmock GTest::gtest_main)
  flywheel_target_warnings(${name})
  add_test(NAME ${name} COMMAND ${name} --gtest_color=no)
  set_tests_properties(${name} PROPERTIES WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
                       LABELS "${ARG_LABELS}"
                       ENVIRONMENT "FLYWHEEL_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
endfunction()
