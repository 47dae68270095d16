#!/bin/sh
# Checks that each shared object given exports exactly the functions that
# include/goroutines.h declares with GR_API (luaopen_* among them), and
# nothing else: prints the difference and exits 1 otherwise.
#   sh tools/checksymbols.sh build/goroutines/core.so build/libgoroutines.so
here=$(cd "$(dirname "$0")/.." && pwd)
want=$(mktemp)
have=$(mktemp)
trap 'rm -f "$want" "$have"' EXIT
# "GR_API int gr_open (lua_State *L);" -> gr_open
sed -n 's/^GR_API[^(]*[ *]\([A-Za-z_][A-Za-z0-9_]*\) *(.*/\1/p' \
  "$here/include/goroutines.h" | sort -u > "$want"
if [ ! -s "$want" ]; then
  echo "checksymbols: no GR_API function in include/goroutines.h" >&2
  exit 1
fi
rc=0
for so in "$@"; do
  nm -D --defined-only "$so" | awk '$2 ~ /^[TDBRVWi]$/ { print $3 }' |
    sort -u > "$have"
  if ! cmp -s "$want" "$have"; then
    echo "checksymbols: $so exports other symbols than goroutines.h" \
         "declares (< header only, > object only):" >&2
    diff "$want" "$have" >&2
    rc=1
  fi
done
exit $rc
