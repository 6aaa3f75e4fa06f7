# Install rules and the Debian package: `cpack -G DEB` in a Release build folder
# (configure with -DHOST_BUILD_TESTS=OFF to build only what is shipped).
#
#   /usr/lib/pg-backfill-host/host          the binary (as `host`)
#   /usr/bin/pg-host -> ../lib/pg-backfill-host/host
#   /usr/share/pg-backfill-host/stdlib/      found by the binary without flags
#   /usr/share/pg-backfill-host/recipes/     the shipped recipe library (`host demo`)
#   /usr/share/pg-backfill-host/editor/      LuaLS annotations, luacheck standard
#   /usr/share/man/man1/pg-host.1.gz, bash completion, /usr/share/doc/pg-backfill-host/

install(TARGETS host RUNTIME DESTINATION ${HOST_INSTALL_EXEC_DIR})

file(RELATIVE_PATH host_link_target /bin /${HOST_INSTALL_EXEC_DIR}/host)
file(CREATE_LINK ${host_link_target} ${CMAKE_BINARY_DIR}/${HOST_COMMAND_NAME} SYMBOLIC)
install(FILES ${CMAKE_BINARY_DIR}/${HOST_COMMAND_NAME} DESTINATION bin)

install(DIRECTORY stdlib/ DESTINATION ${HOST_INSTALL_DATA_DIR}/stdlib
        FILES_MATCHING PATTERN "*.lua")
install(DIRECTORY recipes/ DESTINATION ${HOST_INSTALL_DATA_DIR}/recipes)
install(DIRECTORY editor/ DESTINATION ${HOST_INSTALL_DATA_DIR}/editor)

find_program(HOST_GZIP gzip REQUIRED)
set(host_man ${CMAKE_BINARY_DIR}/${HOST_COMMAND_NAME}.1.gz)
add_custom_command(OUTPUT ${host_man}
  COMMAND ${HOST_GZIP} -9n -c ${CMAKE_SOURCE_DIR}/packaging/pg-host.1 > ${host_man}
  DEPENDS ${CMAKE_SOURCE_DIR}/packaging/pg-host.1 VERBATIM)
add_custom_target(host_man_page ALL DEPENDS ${host_man})
install(FILES ${host_man} DESTINATION share/man/man1)
install(FILES packaging/pg-host.bash-completion DESTINATION share/bash-completion/completions
        RENAME ${HOST_COMMAND_NAME})
install(FILES README.md tests/HOST_TEST_FORMAT.md packaging/copyright
        DESTINATION ${HOST_INSTALL_DOC_DIR})

set(CPACK_PACKAGE_NAME ${HOST_PACKAGE_NAME})
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "host maintainers <host@example.org>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "safe, audited data backfills for PostgreSQL from sandboxed Lua recipes")
set(CPACK_PACKAGE_DESCRIPTION
    "host runs recipes: small Lua files that fill empty fields, convert legacy columns, give\n"
    "legacy ids stable UUIDs and import CSV/JSON Lines exports. Every write is guarded in\n"
    "SQL and recorded in a ledger, so a run can be shown, resumed or reverted. The command\n"
    "is installed as pg-host, beside bind9-host's /usr/bin/host.")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION database)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# `host test` and `host demo` start a throwaway cluster with the server programs.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "postgresql")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "lua-check")
set(CPACK_STRIP_FILES ON)
set(CPACK_GENERATOR DEB)
include(CPack)
