#pragma once
// Where the host finds the files it ships (stdlib/, recipes/demo/, editor/): next
// to an installed binary, or in the source tree for a binary in a build folder.

#include <string>

namespace host {

// The folder holding the shipped folder `name` ("stdlib", "recipes/demo"):
// <executable folder>/HOST_DATA_FROM_EXEC/<name> when that exists (the installed
// layout, e.g. /usr/lib/pg-backfill-host/host -> /usr/share/pg-backfill-host/stdlib),
// else HOST_SOURCE_DIR/<name>. Never throws; the folder may not exist.
std::string shipped_folder(const std::string& name);

}  // namespace host
