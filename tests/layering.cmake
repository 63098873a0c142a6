# The layering of format/: base <- age <- vars, and base <- age <- sops
# beside vars (neither vars nor sops includes the other). Run by ctest
# (`layering`):
#
#   cmake -DSOURCE_DIR=format -DCC=cc -DINCLUDE_BASE=... -DINCLUDE_AGE=...
#         -DINCLUDE_VARS=... -DINCLUDE_SOPS=... -DWORK_DIR=... -P layering.cmake
#
# 1. No file of format/base/ includes an age/, vars/ or sops/ header, no
#    file of format/age/ a vars/ or sops/ header, no file of format/sops/ a
#    vars/ header and no file of format/vars/ a sops/ header, in any
#    spelling ("vars/x.h", "../vars/x.h", <vars/x.h>).
# 2. The compiler holds the same rule: a file compiled as vf_age is (with
#    vf_age's include roots) cannot include "vars/spec.h", one compiled as
#    vf_base cannot include "age/header.h", one compiled as vf_sops cannot
#    include "vars/spec.h" and one compiled as vf_vars cannot include
#    "sops/sops.h"; the same probes including a header of their own layer
#    compile, so the failure is the layering and not a broken command.

set(failures "")
foreach(rule "base:age|vars|sops" "age:vars|sops" "sops:vars" "vars:sops")
  string(REPLACE ":" ";" rule "${rule}")
  list(GET rule 0 part)
  list(GET rule 1 banned)
  file(GLOB files ${SOURCE_DIR}/${part}/*.c ${SOURCE_DIR}/${part}/*.h)
  foreach(f ${files})
    file(STRINGS ${f} lines REGEX "^[ \t]*#[ \t]*include[ \t]*[\"<]([./]*/)?(${banned})/")
    foreach(line ${lines})
      list(APPEND failures "${f}: ${line}")
    endforeach()
  endforeach()
endforeach()

# Compiles a probe placed in WORK_DIR/<part>/ (as a source of that part is)
# that includes header, against the include roots; sets ok.
function(probe part header roots ok)
  set(dir ${WORK_DIR}/${part})
  file(MAKE_DIRECTORY ${dir})
  file(WRITE ${dir}/probe.c "#include \"${header}\"\nint vf_probe(void);\nint vf_probe(void) { return 0; }\n")
  set(flags "")
  foreach(r ${roots})
    list(APPEND flags -I${r})
  endforeach()
  execute_process(COMMAND ${CC} -std=c17 -D_GNU_SOURCE ${flags} -fsyntax-only ${dir}/probe.c
    RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
  if(rc EQUAL 0)
    set(${ok} TRUE PARENT_SCOPE)
  else()
    set(${ok} FALSE PARENT_SCOPE)
  endif()
endfunction()

probe(age "age/header.h" "${INCLUDE_AGE};${INCLUDE_BASE}" ok)
if(NOT ok)
  list(APPEND failures "control: an age file including age/header.h does not compile")
endif()
probe(age "vars/spec.h" "${INCLUDE_AGE};${INCLUDE_BASE}" ok)
if(ok)
  list(APPEND failures "an age file including vars/spec.h compiles")
endif()
probe(base "base/error.h" "${INCLUDE_BASE}" ok)
if(NOT ok)
  list(APPEND failures "control: a base file including base/error.h does not compile")
endif()
probe(base "age/header.h" "${INCLUDE_BASE}" ok)
if(ok)
  list(APPEND failures "a base file including age/header.h compiles")
endif()

probe(sops "sops/sops.h" "${INCLUDE_SOPS};${INCLUDE_AGE};${INCLUDE_BASE}" ok)
if(NOT ok)
  list(APPEND failures "control: a sops file including sops/sops.h does not compile")
endif()
probe(sops "vars/spec.h" "${INCLUDE_SOPS};${INCLUDE_AGE};${INCLUDE_BASE}" ok)
if(ok)
  list(APPEND failures "a sops file including vars/spec.h compiles")
endif()
probe(vars "vars/spec.h" "${INCLUDE_VARS};${INCLUDE_AGE};${INCLUDE_BASE}" ok)
if(NOT ok)
  list(APPEND failures "control: a vars file including vars/spec.h does not compile")
endif()
probe(vars "sops/sops.h" "${INCLUDE_VARS};${INCLUDE_AGE};${INCLUDE_BASE}" ok)
if(ok)
  list(APPEND failures "a vars file including sops/sops.h compiles")
endif()

if(failures)
  list(JOIN failures "\n  " text)
  message(FATAL_ERROR "layering of format/ broken (base <- age <- vars, age <- sops):\n  ${text}")
endif()
message(STATUS "layering: base <- age <- vars and age <- sops hold")
