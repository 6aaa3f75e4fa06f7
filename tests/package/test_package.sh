#!/usr/bin/env bash
# The Debian package, end to end (as root, on Debian 12): builds it with CPack from
# a Release build, installs it with dpkg next to bind9-host (which owns /usr/bin/host),
# checks that both commands are there and distinct, runs `host demo` and an offline
# check from the installed files only, and removes the package again.
#
#   bash tests/package/test_package.sh [BUILD_DIR]     (default build-deb)
set -euo pipefail
cd "$(dirname "$0")/../.."
source_dir=$(pwd)
build=${1:-build-deb}
package=pg-backfill-host

if [ "$(id -u)" -ne 0 ]; then
  echo "test_package: skipped (needs root for dpkg -i)"
  exit 0
fi

fail() {
  echo "test_package: FAIL: $*" >&2
  exit 1
}

need=()
for p in bind9-host dpkg-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# Only what is shipped, and no way back into this source tree: the installed
# binary must find everything in the installed files.
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DHOST_BUILD_TESTS=OFF \
  -DHOST_SOURCE_FALLBACK=OFF >/dev/null
cmake --build "$build" -j2 >/dev/null
rm -f "$build"/${package}_*.deb
(cd "$build" && cpack -G DEB >/dev/null)
deb=$(ls "$build"/${package}_*.deb)
echo "test_package: built $deb"

depends=$(dpkg-deb -f "$deb" Depends)
echo "test_package: Depends: $depends"
for lib in libpqxx libluajit; do
  [[ $depends == *"$lib"* ]] || fail "Depends lacks $lib (shlibdeps did not run?)"
done

cleanup() { dpkg -r "$package" >/dev/null 2>&1 || true; }
trap cleanup EXIT
dpkg -r "$package" >/dev/null 2>&1 || true
dpkg -i "$deb" >/dev/null

# Side by side: /usr/bin/host is bind9-host's, pg-host is ours.
[ "$(dpkg -S /usr/bin/host | cut -d: -f1)" = bind9-host ] || fail "/usr/bin/host is not bind9-host's"
[ "$(readlink -f /usr/bin/pg-host)" = /usr/lib/$package/host ] || fail "pg-host does not lead to /usr/lib/$package/host"
cmp -s "$(readlink -f /usr/bin/host)" /usr/lib/$package/host && fail "the two host commands are the same file"
/usr/bin/host -V 2>&1 | grep -qi "bind\|host" || fail "bind9's host does not run"
pg-host --help | grep -q "sandboxed Lua recipes" || fail "pg-host --help"
for f in /usr/share/man/man1/pg-host.1.gz /usr/share/bash-completion/completions/pg-host \
  /usr/share/doc/$package/README.md /usr/share/doc/$package/HOST_TEST_FORMAT.md \
  /usr/share/$package/stdlib/convert.lua /usr/share/$package/recipes/demo/demo_test.lua \
  /usr/share/$package/editor/library/host.d.lua /usr/share/$package/editor/luacheck_std.lua \
  /usr/share/$package/editor/luacheckrc.lua /usr/share/$package/editor/luarc.json; do
  [ -e "$f" ] || fail "missing $f"
done
zcat /usr/share/man/man1/pg-host.1.gz | grep -q "EXIT STATUS" || fail "man page"
bash -c 'source /usr/share/bash-completion/completions/pg-host && complete -p pg-host' >/dev/null \
  || fail "bash completion"

# From the installed files only, anywhere: the source tree is hidden from the binary
# (built without a fallback to it) and the working folder is elsewhere.
work=$(mktemp -d)
trap 'cleanup; rm -rf "$work"' EXIT
cd "$work"
unset HOST_STDLIB
cat >recipe.lua <<'LUA'
local convert = require "convert"
return { name = "pkg", table = "t", writes = { t = { "v" } },
         each = function(row) patch_if_empty(row, "v", convert.trim(" x ")) end }
LUA
pg-host check --offline recipe.lua | grep -q "ok (offline" || fail "check --offline with the installed stdlib"
pg-host demo >demo.log 2>&1 || { tail -40 demo.log; fail "host demo from the installed files"; }
grep -q "1 passed, 0 failed" demo.log || fail "demo did not pass"
# How the README says to run it as `host`: the folder on PATH first.
PATH=/usr/lib/$package:$PATH host check --offline recipe.lua >/dev/null || fail "host via PATH"
cd "$source_dir"

dpkg -r "$package" >/dev/null
[ -e /usr/bin/pg-host ] && fail "pg-host left behind by dpkg -r"
[ -e /usr/share/$package ] && fail "/usr/share/$package left behind by dpkg -r"
[ -x /usr/bin/host ] || fail "removing the package removed bind9's host"
echo "test_package: ok"
