#!/bin/sh
# The allocation-failure sweep of `make oom`: counts the allocations of
# spec/oom_script.lua under spec/oomhost (OOM_FAILAT unset), then runs it
# again with OOM_FAILAT=N for N = 1, 1+S, 1+2S, ... (S = OOM_STRIDE, or
# chosen so that about OOM_RUNS runs cover the whole count) and fails on
# any run that crashes or hangs (OOM_TIMEOUT seconds, default 20). A run
# that ends with a Lua error or with success passes: exit status 0, or 1
# when the close policy reports goroutine errors that were never raised.
host=${OOM_HOST:-build/oom/oomhost}
script=${OOM_SCRIPT:-spec/oom_script.lua}
limit=${OOM_TIMEOUT:-20}
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here" || exit 2
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! timeout "$limit" "$host" "$script" 2>"$log" >/dev/null ||
   ! grep -q '^oom: ok' "$log"; then
  echo "oom: the script fails without any failing allocation:" >&2
  cat "$log" >&2
  exit 1
fi
total=$(sed -n 's/^oom: \([0-9]*\) allocations$/\1/p' "$log" | tail -n 1)
stride=${OOM_STRIDE:-$(( total / ${OOM_RUNS:-300} + 1 ))}
echo "oom: $total allocations in a clean run; every ${stride}th fails in turn"
n=1 runs=0 bad=0
while [ "$n" -le "$total" ]; do
  OOM_FAILAT=$n timeout -k 5 "$limit" "$host" "$script" >/dev/null 2>"$log"
  rc=$?
  runs=$((runs + 1))
  if [ "$rc" -gt 1 ]; then
    bad=$((bad + 1))
    echo "oom: allocation $n: exit status $rc" \
         "($( [ "$rc" -eq 124 ] && echo hang || echo crash))" >&2
    tail -n 5 "$log" | sed 's/^/    /' >&2
  fi
  n=$((n + stride))
done
echo "oom: $runs runs, $bad crashed or hung"
[ "$bad" -eq 0 ]
