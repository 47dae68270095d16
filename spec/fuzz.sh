#!/bin/sh
# Runs every seeded random test (spec/fuzz_*.lua SEED ROUNDS) with fresh
# seeds, in turn, until FUZZ_SECONDS (default 120) have passed. A failing
# run prints its seed, so that it can be replayed:
#   lua5.4 spec/fuzz_select.lua SEED ROUNDS
# LUA is the interpreter command (under `make fuzz`, one with the ASan
# runtime preloaded); LUA_PATH and LUA_CPATH must find the module.
LUA=${LUA:-lua5.4}
SECONDS_LEFT=${FUZZ_SECONDS:-120}
ROUNDS=${FUZZ_ROUNDS:-20}
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here" || exit 2
end=$(( $(date +%s) + SECONDS_LEFT ))
seed=$(( $(date +%s) % 1000000 * 100 ))
runs=0
while [ "$(date +%s)" -lt "$end" ]; do
  for f in spec/fuzz_*.lua; do
    case $f in *_spec.lua) continue ;; esac
    seed=$((seed + 1))
    if ! timeout 300 $LUA "$f" "$seed" "$ROUNDS" >/dev/null 2>fuzz.err; then
      echo "fuzz: $f failed with seed $seed ($ROUNDS rounds):" >&2
      cat fuzz.err >&2
      rm -f fuzz.err
      exit 1
    fi
    runs=$((runs + 1))
  done
done
rm -f fuzz.err
echo "fuzz: $runs runs clean in ${SECONDS_LEFT}s"
