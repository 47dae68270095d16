#!/bin/sh
# bench/run.sh -- run the benchmark suite: each workload in Lua and in Go.
#
# Usage: sh bench/run.sh [workload ...]     (default: all of them)
#   workloads: pingpong spawn sieve timers select echo exec rwmutex semaphore
#              errgroup trace (one Lua thread: g.go)
#              read_file (g.os: a 100 MiB file made in /tmp, then removed)
#              parallel_cpu xstate_ints xstate_tables parallel_spawn
#              xstate_pingpong mutex_xstate (g.parallel: worker states
#              and threads)
#              host_chan host_nowait (the embedding API: the Lua side is a C
#              host, bench/<workload>.c, built by make into BENCH_HOSTBIN)
#              echo_tcp (echo servers on 127.0.0.1 driven by the Go load
#              generator, C=100: one state vs GOMAXPROCS=1, every core vs
#              Go's default; bench/echo.sh runs the full matrix)
# Environment:
#   LUA            Lua interpreter (default lua5.4); LUA_PATH and LUA_CPATH
#                  must let it `require "goroutines"` (`make bench` sets them).
#   BENCH_REPEAT   runs of each program; the table shows medians (default 5).
#   BENCH_TIMEOUT  seconds allowed to one run, if timeout(1) exists (120).
#   BENCH_OUT      directory for binaries, Go cache, logs (default bench/out).
#   BENCH_HOSTBIN  directory of the C hosts (default build/bench: make bench).
#
# Every program prints lines "RESULT <workload> <metric> <value>". This
# script collects them from all runs into $BENCH_OUT/results.txt as
# "<lang> <workload> <metric> <value>", then prints a table of the medians
# (also saved as $BENCH_OUT/summary.txt). A run that fails is logged in
# $BENCH_OUT/logs/ and its cells stay empty; the other runs go on, but a
# program that timed out is not run again (a hang would only repeat).

set -u

here=$(cd "$(dirname "$0")" && pwd)
LUA=${LUA:-lua5.4}
REPEAT=${BENCH_REPEAT:-5}
TIMEOUT=${BENCH_TIMEOUT:-120}
OUT=${BENCH_OUT:-$here/out}
ALL="pingpong spawn sieve timers select echo exec rwmutex semaphore errgroup trace read_file parallel_cpu xstate_ints xstate_tables parallel_spawn xstate_pingpong mutex_xstate host_chan host_nowait echo_tcp"
HOSTBIN=${BENCH_HOSTBIN:-$here/../build/bench}

# Go builds offline in GOPATH mode; its cache and GOPATH live under $OUT so
# that a fresh machine (or root without a usable $HOME) needs nothing else.
GO111MODULE=off
GOFLAGS=
GOPROXY=off
GOPATH=$OUT/gopath
GOCACHE=${GOCACHE:-$OUT/gocache}
export GO111MODULE GOFLAGS GOPROXY GOPATH GOCACHE

workloads=${*:-$ALL}
for w in $workloads; do
  case " $ALL " in
    *" $w "*) ;;
    *) echo "run.sh: unknown workload '$w' (have: $ALL)" >&2; exit 2 ;;
  esac
done

mkdir -p "$OUT/bin" "$OUT/logs" "$GOPATH" "$GOCACHE" || exit 1
results=$OUT/results.txt
failures=$OUT/failures.txt
: > "$results"
: > "$failures"

# Prefix commands with timeout(1) when it exists, so that a hung run
# cannot stall the suite.
if command -v timeout >/dev/null 2>&1; then
  limit="timeout $TIMEOUT"
else
  limit=
fi

# The argument of each run of a workload ("-": none). spawn runs twice, to
# compare the per-goroutine cost of 100,000 and 1,000,000 goroutines.
sizes () {
  case $1 in
    spawn) echo 100000 1000000 ;;
    *) echo - ;;
  esac
}

# run_one LANG WORKLOAD ARG REP: one run; its RESULT lines go to $results.
# $hung lists the "lang/workload/arg" that timed out: they are skipped.
hung=
run_one () {
  lang=$1 w=$2 a=$3 rep=$4
  case " $hung " in *" $lang/$w/$a "*) return ;; esac
  [ "$a" = - ] && a=
  log=$OUT/logs/$lang-$w${a:+-$a}-$rep.log
  if [ "$w" = echo_tcp ]; then   # servers and load generator: echo.sh
    set -- sh "$here/echo.sh" -pair "$lang"
  elif [ "$lang" = lua ] && [ -f "$here/$w.c" ]; then
    set -- "$HOSTBIN/$w"   # a C host of the embedding API
  elif [ "$lang" = lua ]; then
    # shellcheck disable=SC2086 # $LUA may be a command with options
    set -- $LUA "$here/$w.lua"
  else
    set -- "$OUT/bin/$w"
  fi
  # shellcheck disable=SC2086 # $limit and $a split on purpose
  if $limit "$@" $a > "$log" 2>&1; then
    sed -n "s/^RESULT /$lang /p" "$log" >> "$results"
  else
    st=$?
    if [ $st = 124 ] && [ -n "$limit" ]; then
      st="124 (timed out after ${TIMEOUT}s; not run again)"
      hung="$hung $lang/$w/${a:--}"
    fi
    echo "  $lang $w${a:+ $a} (run $rep) failed, status $st: see $log" >&2
    echo "$lang $w${a:+ $a} (run $rep): status $st" >> "$failures"
    tail -n 3 "$log" | sed 's/^/    /' >&2
  fi
}

# Which languages can run: Go needs the toolchain, Lua the built module.
langs=
# shellcheck disable=SC2086 # $LUA may be a command with options
if $LUA -e 'local g = require "goroutines"; g.time.now()' \
     > "$OUT/logs/lua-check.log" 2>&1; then
  langs="lua"
  lua_note=$($LUA -v 2>&1 | head -n 1)
else
  lua_note="not measured: require \"goroutines\" failed (see $OUT/logs/lua-check.log)"
  echo "run.sh: Lua side $lua_note" >&2
fi
if command -v go >/dev/null 2>&1; then
  go_note=$(go version)
  ok=1
  for w in $workloads; do
    [ -d "$here/go/$w" ] || continue   # echo_tcp: echo.sh builds its own
    echo "building go/$w" >&2
    (cd "$here/go/$w" && go build -o "$OUT/bin/$w" .) || ok=0
  done
  if [ $ok = 1 ]; then langs="$langs go"; else go_note="not measured: build failed"; fi
else
  go_note="not measured: go not found"
fi

{
  echo "date:     $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "machine:  $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
  echo "lua:      $lua_note (g.go: one thread; g.parallel: worker threads)"
  echo "go:       $go_note (GOMAXPROCS default: all cores)"
  echo "repeats:  $REPEAT (median shown)"
  echo "load:     $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null) (1, 5, 15 min, at the start; other work skews the figures)"
  echo
} | tee "$OUT/summary.txt"

# Runs alternate Lua and Go within each repeat, so that any drift of the
# machine's speed during the suite affects both alike.
for w in $workloads; do
  echo "running $w" >&2
  rep=1
  while [ "$rep" -le "$REPEAT" ]; do
    for a in $(sizes "$w"); do
      for lang in $langs; do run_one "$lang" "$w" "$a" "$rep"; done
    done
    rep=$((rep + 1))
  done
done

# Medians per (lang, workload, metric), then one table row per metric in
# the order the metrics first appeared. For spawn, a derived row gives the
# per-goroutine time of 1M divided by that of 100k (1.0 = linear scaling).
awk -v order="$workloads" '
  { key = $2 SUBSEP $3
    if (!(key in seen)) { seen[key] = 1; keys[++nk] = key }
    n = ++cnt[$1, key]; val[$1, key, n] = $4 + 0 }
  function median(lang, key,   n, i, j, t, a) {
    n = cnt[lang, key]
    if (n == 0) return ""
    for (i = 1; i <= n; i++) a[i] = val[lang, key, i]
    for (i = 2; i <= n; i++)          # insertion sort: n is small
      for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  function fmt(x) {
    if (x == "") return "-"
    return (x >= 100 || x == int(x)) ? sprintf("%.0f", x) : sprintf("%.3g", x)
  }
  function row(w, m, l, g) {
    printf "%-15s %-30s %12s %12s %8s\n", w, m, fmt(l), fmt(g),
           (l != "" && g != "" && g != 0) ? sprintf("%.2f", l / g) : "-"
  }
  END {
    printf "%-15s %-30s %12s %12s %8s\n", "workload", "metric", "Lua", "Go", "Lua/Go"
    nw = split(order, ws, " ")
    for (k = 1; k <= nw; k++) {
      for (i = 1; i <= nk; i++) {
        split(keys[i], wm, SUBSEP)
        if (wm[1] != ws[k]) continue
        row(wm[1], wm[2], median("lua", keys[i]), median("go", keys[i]))
      }
      if (ws[k] == "spawn") scaling()
    }
  }
  # The per-goroutine time of 1M goroutines over that of 100k.
  function scaling(   small, big, l1, l2, g1, g2) {
    small = "spawn" SUBSEP "us_per_goroutine_100000"
    big = "spawn" SUBSEP "us_per_goroutine_1000000"
    if (!(small in seen) || !(big in seen)) return
    l1 = median("lua", small); l2 = median("lua", big)
    g1 = median("go", small); g2 = median("go", big)
    printf "%-15s %-30s %12s %12s %8s\n", "spawn", "time ratio 1M/100k",
           (l1 != "" && l2 != "") ? sprintf("%.2f", l2 / l1) : "-",
           (g1 != "" && g2 != "") ? sprintf("%.2f", g2 / g1) : "-", "-"
  }' "$results" | tee -a "$OUT/summary.txt"
if [ -s "$failures" ]; then
  { echo; echo "failed runs (their cells show only the runs that succeeded):"
    sed 's/^/  /' "$failures"; } | tee -a "$OUT/summary.txt"
fi
