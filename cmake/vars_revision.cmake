# Writes OUTPUT, a header defining VARS_REVISION for the tools' --version:
# " (git REV)", REV being `git describe --always --dirty` of SOURCE_DIR,
# when SOURCE_DIR is the top of a git checkout; "" otherwise (no git, no
# .git, or a source tarball unpacked inside some other repository, whose
# revision is not ours). Run at every build, since commits and edits change
# the revision without CMake knowing; OUTPUT is rewritten only when its text
# changes, so an unchanged revision recompiles nothing.
#
#   cmake -DSOURCE_DIR=... -DGIT=/usr/bin/git -DOUTPUT=.../vars_revision.h \
#         -P vars_revision.cmake

# A build run from a git hook or alias inherits these, and they would point
# git at another repository than SOURCE_DIR.
unset(ENV{GIT_DIR})
unset(ENV{GIT_WORK_TREE})

set(revision "")
if(GIT AND EXISTS "${GIT}")
  execute_process(COMMAND "${GIT}" -C "${SOURCE_DIR}" rev-parse --show-toplevel
    RESULT_VARIABLE rc OUTPUT_VARIABLE top ERROR_QUIET OUTPUT_STRIP_TRAILING_WHITESPACE)
  set(at_top FALSE)
  if(rc EQUAL 0 AND top)
    file(REAL_PATH "${top}" top)
    file(REAL_PATH "${SOURCE_DIR}" source)
    if(top STREQUAL source)
      set(at_top TRUE)
    endif()
  endif()
  if(at_top)
    # --no-optional-locks: a build only reads the repository (describe
    # --dirty would otherwise refresh and rewrite the index).
    execute_process(COMMAND "${GIT}" --no-optional-locks -C "${SOURCE_DIR}"
      describe --always --dirty
      RESULT_VARIABLE rc OUTPUT_VARIABLE rev ERROR_QUIET OUTPUT_STRIP_TRAILING_WHITESPACE)
    # A tag may be named with any character: only a plain one goes into C.
    if(rc EQUAL 0 AND rev MATCHES "^[0-9A-Za-z._+-]+$")
      set(revision " (git ${rev})")
    endif()
  endif()
endif()

set(text "/* Written by cmake/vars_revision.cmake at build time. */\n")
string(APPEND text "#define VARS_REVISION \"${revision}\"\n")
set(old "")
if(EXISTS "${OUTPUT}")
  file(READ "${OUTPUT}" old)
endif()
if(NOT old STREQUAL text)
  file(WRITE "${OUTPUT}" "${text}")
endif()
