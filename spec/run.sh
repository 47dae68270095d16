#!/bin/sh
# Runs the busted specs (all of spec/, or the files given) with TAP output,
# then prints one line "N passed, N failed" counted from that output.
# Exits non-zero when a spec failed or busted itself did not finish.
# spec/leakcheck.lua fails the run if a test leaves a leak behind.
LUA=${LUA:-lua5.4}
BUSTED=${BUSTED:-/usr/bin/busted}
here=$(cd "$(dirname "$0")/.." && pwd)
log=$(mktemp)
if [ $# -eq 0 ]; then set -- spec; fi
cd "$here" || exit 2
$LUA "$BUSTED" --output=TAP --helper=spec/leakcheck.lua "$@" >"$log" 2>&1
rc=$?
cat "$log"
passed=$(grep -c '^ok ' "$log")
failed=$(grep -c '^not ok ' "$log")
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
  # busted died (crash, sanitizer abort) before reporting a failure.
  echo "busted exited with status $rc" >&2
  failed=$((failed + 1))
fi
rm -f "$log"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
