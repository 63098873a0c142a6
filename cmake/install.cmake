# What `cmake --install` puts besides the three tools (whose install()
# rules are beside their targets, in seal/, gen/ and inject/): the man
# pages, bash and zsh completion, the example spec and systemd units, and
# the documentation. Paths follow GNUInstallDirs, so packagers' prefixes
# and -DCMAKE_INSTALL_MANDIR=... and the like apply.
include(GNUInstallDirs)

# ---- man pages ---------------------------------------------------------------
# Written by hand in man(7) roff (man/*.in); only the version and the
# date are filled in here. The date honours SOURCE_DATE_EPOCH (set by
# dpkg-buildpackage from debian/changelog), so package builds are
# reproducible.
string(TIMESTAMP MAN_DATE "%Y-%m-%d" UTC)
set(VARS_MAN_PAGES varseal.1 vargen.1 varinject.1 vars.yaml.5)
set(VARS_MAN_DIR ${CMAKE_BINARY_DIR}/man)
foreach(page IN LISTS VARS_MAN_PAGES)
  configure_file(${CMAKE_SOURCE_DIR}/man/${page}.in ${VARS_MAN_DIR}/${page} @ONLY)
  string(REGEX MATCH "[0-9]$" section ${page})
  install(FILES ${VARS_MAN_DIR}/${page} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
endforeach()

# ---- shell completion --------------------------------------------------------
# bash: the directory bash-completion loads on demand, one file per
# command name (vargen and varinject source varseal, which serves all
# three); it looks there under /usr and /usr/local alike. zsh: Debian's
# directory for packaged completion functions, which is on zsh's fpath
# only under /usr; under another prefix (/usr/local) site-functions is.
install(FILES completion/varseal completion/vargen completion/varinject
  DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions)
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(zsh_dir ${CMAKE_INSTALL_DATADIR}/zsh/vendor-completions)
else()
  set(zsh_dir ${CMAKE_INSTALL_DATADIR}/zsh/site-functions)
endif()
set(VARS_ZSH_COMPLETION_DIR ${zsh_dir} CACHE STRING
  "Where the zsh completion functions go, relative to the prefix")
install(FILES completion/_varseal completion/_vargen completion/_varinject
  completion/_vars_tools_names DESTINATION ${VARS_ZSH_COMPLETION_DIR})

# ---- examples and documentation ----------------------------------------------
# The host units name the binary by its path: point them at the one this
# install puts in place. Written only when the text changes, and the
# sources are watched, so an edit re-runs the configure step.
file(GLOB VARS_UNITS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/examples/systemd/*.service)
foreach(unit IN LISTS VARS_UNITS)
  get_filename_component(name ${unit} NAME)
  file(READ ${unit} text)
  string(REPLACE "/usr/local/bin/" "${CMAKE_INSTALL_FULL_BINDIR}/" text "${text}")
  set(out ${CMAKE_BINARY_DIR}/examples/systemd/${name})
  set(old "")
  if(EXISTS ${out})
    file(READ ${out} old)
  endif()
  if(NOT old STREQUAL text)
    file(WRITE ${out} "${text}")
  endif()
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${unit})
  install(FILES ${out}
    DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples/systemd)
endforeach()
install(FILES examples/vars.yaml examples/builtin-kinds.yaml
  DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
file(GLOB VARS_DOCS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/docs/*.md)
install(FILES README.md ${VARS_DOCS} DESTINATION ${CMAKE_INSTALL_DOCDIR})
