# Where the package puts things, relative to the install prefix (/usr for the .deb).
# Debian's bind9-host owns /usr/bin/host, so the binary keeps its name in a folder
# of its own and /usr/bin gets a unique name for it (a symlink).
set(HOST_PACKAGE_NAME pg-backfill-host)
set(HOST_COMMAND_NAME pg-host)
set(HOST_INSTALL_EXEC_DIR lib/${HOST_PACKAGE_NAME})   # /usr/lib/pg-backfill-host/host
set(HOST_INSTALL_DATA_DIR share/${HOST_PACKAGE_NAME}) # stdlib/, recipes/, editor/
set(HOST_INSTALL_DOC_DIR share/doc/${HOST_PACKAGE_NAME})
file(RELATIVE_PATH HOST_DATA_FROM_EXEC /${HOST_INSTALL_EXEC_DIR} /${HOST_INSTALL_DATA_DIR})
