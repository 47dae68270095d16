#!/bin/sh
# bench/run.sh -- run the benchmark suite: each workload in Lua and in Go.
#
# Usage: sh bench/run.sh [workload ...]     (default: all of them)
#   workloads: pingpong spawn sieve timers select select4 echo exec rwmutex
#              semaphore errgroup trace (one Lua thread: g.go)
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
#   BENCH_BASE     a built checkout of another revision (bench/compare_rev.sh
#                  makes one): its module runs the same Lua scripts as a third
#                  side, "base", before ours and Go in every repeat.
#   BENCH_HOG      if set and not 0: a CPU hog (a Lua busy loop, pinned with
#                  taskset(1) to the last core when taskset exists) runs beside
#                  every run, started before the first and killed after the
#                  last; the table adds the Lua side's min, max and min/median.
#                  Needs 2 or more cores.
#
# Every program prints lines "RESULT <workload> <metric> <value>". This
# script collects them from all runs into $BENCH_OUT/results.txt as
# "<lang> <workload> <metric> <value>" (lang: lua, go; go1 for Go with
# GOMAXPROCS=1, for the workloads in $GO1; base with BENCH_BASE), then
# prints a table of the medians (also saved as $BENCH_OUT/summary.txt). A run that fails is logged in
# $BENCH_OUT/logs/ and its cells stay empty; the other runs go on, but a
# program that timed out is not run again (a hang would only repeat).

set -u

here=$(cd "$(dirname "$0")" && pwd)
LUA=${LUA:-lua5.4}
REPEAT=${BENCH_REPEAT:-5}
TIMEOUT=${BENCH_TIMEOUT:-120}
OUT=${BENCH_OUT:-$here/out}
ALL="pingpong spawn sieve timers select select4 echo exec rwmutex semaphore errgroup trace read_file parallel_cpu xstate_ints xstate_tables parallel_spawn xstate_pingpong mutex_xstate host_chan host_nowait echo_tcp"
# The workloads whose Go side also runs with GOMAXPROCS=1 (as "go1"): one
# Go thread against one Lua state, beside Go's default of every core.
GO1="sieve"
HOSTBIN=${BENCH_HOSTBIN:-$here/../build/bench}
BASE=${BENCH_BASE:-}
HOG=${BENCH_HOG:-0}
[ "$HOG" = 0 ] && HOG=

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

# nproc counts the cores this process may use (taskset narrows them).
ncpu=$(nproc)
if [ -n "$HOG" ] && [ "$ncpu" -lt 2 ]; then
  echo "run.sh: BENCH_HOG needs 2 or more cores; this machine has $ncpu, which the hog would take whole" >&2
  exit 2
fi

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

# The sides that run workload $1, in the order of a repeat: base, lua, go,
# go1 (of those in $langs).
sides () {
  for s in $langs; do
    case $s in
      base) case $1 in echo_tcp) continue ;; esac   # echo.sh: ours and Go only
            [ -f "$here/$1.c" ] && [ ! -x "$BASE/build/bench/$1" ] && continue ;;
      go1) case " $GO1 " in *" $1 "*) ;; *) continue ;; esac ;;
    esac
    echo "$s"
  done
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
  elif [ "$lang" = base ] && [ -f "$here/$w.c" ]; then
    set -- "$BASE/build/bench/$w"
  elif [ "$lang" = lua ]; then
    # shellcheck disable=SC2086 # $LUA may be a command with options
    set -- $LUA "$here/$w.lua"
  elif [ "$lang" = base ]; then   # this checkout's script, the base's module
    # shellcheck disable=SC2086 # $LUA may be a command with options
    set -- env LUA_PATH="$BASE/lua/?.lua;$BASE/lua/?/init.lua;;" \
      LUA_CPATH="$BASE/build/?.so;;" $LUA "$here/$w.lua"
  elif [ "$lang" = go1 ]; then
    set -- env GOMAXPROCS=1 "$OUT/bin/$w"
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
base_note=
if [ -n "$BASE" ]; then
  # shellcheck disable=SC2086 # $LUA may be a command with options
  if env LUA_PATH="$BASE/lua/?.lua;$BASE/lua/?/init.lua;;" LUA_CPATH="$BASE/build/?.so;;" \
       $LUA -e 'local g = require "goroutines"; g.time.now()' \
       > "$OUT/logs/base-check.log" 2>&1; then
    langs="base"
    base_note="$BASE ($(git -C "$BASE" log -1 --format='%h %s' 2>/dev/null))"
  else
    base_note="not measured: require \"goroutines\" failed in $BASE (see $OUT/logs/base-check.log)"
    echo "run.sh: base side $base_note" >&2
  fi
fi
# shellcheck disable=SC2086 # $LUA may be a command with options
if $LUA -e 'local g = require "goroutines"; g.time.now()' \
     > "$OUT/logs/lua-check.log" 2>&1; then
  langs="$langs lua"
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
  if [ $ok = 1 ]; then langs="$langs go go1"; else go_note="not measured: build failed"; fi
else
  go_note="not measured: go not found"
fi

# The hog: one busy Lua process on the last core, for the whole suite. The
# EXIT trap kills it however the script ends (INT and TERM exit through it).
hog_note=
if [ -n "$HOG" ]; then
  # The last core this process may use ("... affinity list: 0-3,6" -> 6).
  core=$(taskset -pc $$ 2>/dev/null | sed 's/.*[ ,-]//')
  if [ -n "$core" ]; then
    pin="taskset -c $core"
    hog_note="a Lua busy loop pinned to core $core (taskset; $ncpu cores here)"
  else
    pin=
    hog_note="a Lua busy loop, not pinned (no taskset)"
  fi
  # shellcheck disable=SC2086 # $pin and $LUA split on purpose
  $pin $LUA -e 'while true do end' > /dev/null 2>&1 &
  hog_pid=$!
  trap 'kill "$hog_pid" 2>/dev/null' EXIT
  trap 'exit 130' INT TERM
fi

{
  echo "date:     $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "machine:  $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
  echo "lua:      $lua_note (g.go: one thread; g.parallel: worker threads)"
  echo "go:       $go_note (GOMAXPROCS default: all cores; rows marked GOMAXPROCS=1: one)"
  [ -n "$BASE" ] && echo "base:     $base_note"
  [ -n "$HOG" ] && echo "hog:      $hog_note, beside every run"
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
      for lang in $(sides "$w"); do run_one "$lang" "$w" "$a" "$rep"; done
    done
    rep=$((rep + 1))
  done
done

# Medians per (lang, workload, metric), then one table row per metric in
# the order the metrics first appeared; a metric that Go also measured with
# GOMAXPROCS=1 gets a second row against that figure. With a base, a Base
# column (and Base/Go) comes first; with the hog, the Lua side's min, max
# and min/median come last. For spawn, a derived row gives the
# per-goroutine time of 1M divided by that of 100k (1.0 = linear scaling).
awk -v order="$workloads" -v base="${BASE:+1}" -v hog="${HOG:+1}" '
  { key = $2 SUBSEP $3
    if (!(key in seen)) { seen[key] = 1; keys[++nk] = key }
    n = ++cnt[$1, key]; val[$1, key, n] = $4 + 0 }
  # sorted(lang, key, a): the values of (lang, key) into a[1..n], ascending; returns n.
  function sorted(lang, key, a,   n, i, j, t) {
    n = cnt[lang, key]
    for (i = 1; i <= n; i++) a[i] = val[lang, key, i]
    for (i = 2; i <= n; i++)          # insertion sort: n is small
      for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
    return n
  }
  function median(lang, key,   n, a) {
    n = sorted(lang, key, a)
    if (n == 0) return ""
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  function lowest(lang, key,   n, a) { n = sorted(lang, key, a); return n ? a[1] : "" }
  function highest(lang, key,   n, a) { n = sorted(lang, key, a); return n ? a[n] : "" }
  function fmt(x) {
    if (x == "") return "-"
    return (x >= 100 || x == int(x)) ? sprintf("%.0f", x) : sprintf("%.3g", x)
  }
  function ratio(x, y) { return (x != "" && y != "" && y != 0) ? sprintf("%.2f", x / y) : "-" }
  function line(w, m, b, l, g, lmin, lmax, lmed) {
    s = sprintf("%-15s %-30s", w, m)
    if (base) s = s sprintf(" %12s", b)
    s = s sprintf(" %12s %12s %8s", l, g, (l == "Lua") ? "Lua/Go" : ratio(l, g))
    if (base) s = s sprintf(" %8s", (b == "Base") ? "Base/Go" : ratio(b, g))
    if (hog) s = s sprintf(" %12s %12s %8s", lmin, lmax, (lmin == "Lua min") ? "min/med" : ratio(lmin, lmed))
    print s
  }
  # A row of key against the Go side golang (go or go1), labelled m.
  function row(w, m, key, golang,   l) {
    l = median("lua", key)
    line(w, m, fmt(median("base", key)), fmt(l), fmt(median(golang, key)),
         fmt(lowest("lua", key)), fmt(highest("lua", key)), fmt(l))
  }
  END {
    line("workload", "metric", "Base", "Lua", "Go", "Lua min", "Lua max")
    nw = split(order, ws, " ")
    for (k = 1; k <= nw; k++) {
      for (i = 1; i <= nk; i++) {
        split(keys[i], wm, SUBSEP)
        if (wm[1] != ws[k]) continue
        row(wm[1], wm[2], keys[i], "go")
        if (cnt["go1", keys[i]] > 0) row(wm[1], wm[2] ", Go GOMAXPROCS=1", keys[i], "go1")
      }
      if (ws[k] == "spawn") scaling()
    }
  }
  # The per-goroutine time of 1M goroutines over that of 100k.
  function grow(lang,   small, big, a, b) {
    small = "spawn" SUBSEP "us_per_goroutine_100000"
    big = "spawn" SUBSEP "us_per_goroutine_1000000"
    a = median(lang, small); b = median(lang, big)
    return (a != "" && b != "" && a != 0) ? sprintf("%.2f", b / a) : "-"
  }
  function scaling(   s) {
    if (!(("spawn" SUBSEP "us_per_goroutine_100000") in seen) ||
        !(("spawn" SUBSEP "us_per_goroutine_1000000") in seen)) return
    s = sprintf("%-15s %-30s", "spawn", "time ratio 1M/100k")
    if (base) s = s sprintf(" %12s", grow("base"))
    s = s sprintf(" %12s %12s %8s", grow("lua"), grow("go"), "-")
    if (base) s = s sprintf(" %8s", "-")
    if (hog) s = s sprintf(" %12s %12s %8s", "-", "-", "-")
    print s
  }' "$results" | tee -a "$OUT/summary.txt"
if [ -s "$failures" ]; then
  { echo; echo "failed runs (their cells show only the runs that succeeded):"
    sed 's/^/  /' "$failures"; } | tee -a "$OUT/summary.txt"
fi
if [ -n "$HOG" ] && ! kill -0 "$hog_pid" 2>/dev/null; then
  echo "run.sh: the hog (pid $hog_pid) had ended before the last run: the runs did not all have it beside them" | tee -a "$OUT/summary.txt" >&2
  exit 1
fi
