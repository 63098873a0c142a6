# --version of the three tools. Run by ctest (`version`):
#
#   cmake -DVARSEAL=... -DVARGEN=... -DVARINJECT=... -DVERSION=0.1.0
#         -DSOURCE_DIR=... -DGIT=/usr/bin/git -DREVISION_SCRIPT=...
#         -DWORK_DIR=... -P version.cmake
#
# 1. Each tool prints exactly one line on stdout, "NAME VERSION" or
#    "NAME VERSION (git REV)", nothing on stderr, and exits 0.
# 2. This source tree is the top of a git checkout (and git works), so the
#    "(git REV)" part must be there.
# 3. The script that computes REV at build time gives none without git, and
#    none for a directory that is not the top of a checkout (a tarball
#    unpacked inside someone's home directory kept in git must not report
#    that repository's revision).

set(failures "")
string(REPLACE "." "\\." version_re "${VERSION}")

unset(ENV{GIT_DIR})
unset(ENV{GIT_WORK_TREE})
set(checkout FALSE)
if(GIT AND EXISTS "${GIT}")
  execute_process(COMMAND "${GIT}" -C "${SOURCE_DIR}" rev-parse --show-toplevel
    RESULT_VARIABLE rc OUTPUT_VARIABLE top ERROR_QUIET OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(rc EQUAL 0 AND top)
    file(REAL_PATH "${top}" top)
    file(REAL_PATH "${SOURCE_DIR}" source)
    if(top STREQUAL source)
      set(checkout TRUE)
    endif()
  endif()
endif()

foreach(tool varseal:${VARSEAL} vargen:${VARGEN} varinject:${VARINJECT})
  string(REGEX REPLACE ":.*" "" name "${tool}")
  string(REGEX REPLACE "^[^:]*:" "" path "${tool}")
  execute_process(COMMAND "${path}" --version RESULT_VARIABLE rc
    OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(checkout)
    set(want "^${name} ${version_re} \\(git [0-9A-Za-z._+-]+\\)\n$")
  else()
    set(want "^${name} ${version_re}( \\(git [0-9A-Za-z._+-]+\\))?\n$")
  endif()
  if(NOT rc EQUAL 0)
    list(APPEND failures "${name} --version exited ${rc}")
  endif()
  if(NOT err STREQUAL "")
    list(APPEND failures "${name} --version wrote to stderr: ${err}")
  endif()
  if(NOT out MATCHES "${want}")
    list(APPEND failures "${name} --version printed '${out}', wanted ${want}")
  else()
    string(STRIP "${out}" out)
    message(STATUS "${out}")
  endif()
endforeach()

# The revision script where there is no revision to report.
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}/not-a-checkout")
foreach(case "${GIT}:${WORK_DIR}/not-a-checkout" "/nonexistent/git:${SOURCE_DIR}"
             ":${SOURCE_DIR}")
  string(REGEX REPLACE ":.*" "" git "${case}")
  string(REGEX REPLACE "^[^:]*:" "" dir "${case}")
  set(header "${WORK_DIR}/vars_revision.h")
  file(REMOVE "${header}")
  execute_process(COMMAND "${CMAKE_COMMAND}" -DSOURCE_DIR=${dir} -DGIT=${git}
    -DOUTPUT=${header} -P "${REVISION_SCRIPT}" RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0 OR NOT EXISTS "${header}")
    list(APPEND failures "revision script (git '${git}', ${dir}) failed: ${rc}")
    continue()
  endif()
  file(STRINGS "${header}" define REGEX "^#define VARS_REVISION ")
  if(NOT define STREQUAL "#define VARS_REVISION \"\"")
    list(APPEND failures "revision script (git '${git}', ${dir}) wrote '${define}'")
  endif()
endforeach()

if(failures)
  list(JOIN failures "\n  " text)
  message(FATAL_ERROR "version:\n  ${text}")
endif()
