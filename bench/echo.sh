#!/bin/sh
# bench/echo.sh -- the echo benchmark of issue 7: echo servers on 127.0.0.1
# driven by the Go load generator go/echoload.go, which opens C connections
# and does M round trips of 64 bytes on each.
#
# Servers (each run starts a fresh one and reads its "LISTENING" line):
#   ours1    bench/echo_server1.lua: one Lua state, a goroutine per conn
#   ourspar  bench/echo_server_par.lua: accept in main, conns moved to one
#            g.parallel server per core
#   go1      go/echoserver.go with GOMAXPROCS=1
#   go       go/echoserver.go with the default GOMAXPROCS (every core)
#
# Usage: sh bench/echo.sh [SERVER...]          (default: ours1 go1 ourspar go)
#        sh bench/echo.sh -pair lua|go         (bench/run.sh's echo_tcp: one
#            run of ours1 and ourspar, or of go1 and go, at C=100, M=200;
#            RESULT lines)
# Environment:
#   C="1 100 10000"  connection counts          R=5   runs per server and C
#   M_<C>            round trips per connection at C (defaults M_1=5000,
#                    M_100=200, M_10000=10; another C: 200000/C, at least 5)
#   MODE=rtt|mem|all   rtt: round trips/s and p99; mem: memory per idle
#                    connection at C=MEMC (default 10000); all: both
#   LUA, LUA_PATH, LUA_CPATH as for the specs (make bench sets them);
#   BENCH_OUT (default bench/out): binaries, Go cache, logs.
#
# Runs alternate between the servers (a b c d a b c d ...), so that a change
# in the machine's load touches all of them alike. The table gives, for each
# server and C, the median over the R runs and the spread (min-max), and the
# ratio of ours to its Go match (ours1/go1, ourspar/go): for round trips/s
# above 1 is faster, for bytes per connection below 1 is smaller.
# Memory: VmRSS of the server (/proc/PID/status) after LISTENING and while
# the client holds MEMC connections open and idle (each served once):
# (after - before) / MEMC. Kernel socket buffers are not in RSS.
# RLIMIT_NOFILE is raised to the hard limit; a C that needs more fails.
set -u
here=$(cd "$(dirname "$0")" && pwd)
LUA=${LUA:-lua5.4}
R=${R:-5}
CS=${C:-"1 100 10000"}
MODE=${MODE:-rtt}
MEMC=${MEMC:-10000}
OUT=${BENCH_OUT:-$here/out}
BIN=$OUT/bin
LOG=$OUT/logs
mkdir -p "$BIN" "$LOG" || exit 1
ulimit -n "$(ulimit -Hn)" 2>/dev/null

GO111MODULE=off GOFLAGS= GOPROXY=off GOCACHE=${GOCACHE:-$OUT/gocache}
export GO111MODULE GOFLAGS GOPROXY GOCACHE
for p in echoload echoserver; do
  if [ ! -x "$BIN/$p" ] || [ "$here/go/$p.go" -nt "$BIN/$p" ]; then
    go build -o "$BIN/$p" "$here/go/$p.go" || exit 1
  fi
done

# The command line of a server.
server_cmd () {
  case $1 in
    ours1)   echo "$LUA $here/echo_server1.lua" ;;
    ourspar) echo "$LUA $here/echo_server_par.lua" ;;
    go1)     echo "env GOMAXPROCS=1 $BIN/echoserver" ;;
    go)      echo "$BIN/echoserver" ;;
    *) echo "echo.sh: unknown server $1 (ours1 ourspar go1 go)" >&2; return 1 ;;
  esac
}

rss_kb () { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$1/status"; }

# start SERVER: starts it, sets $spid and $saddr; 1 if it never listens.
start () {
  cmd=$(server_cmd "$1") || return 1
  sout=$LOG/echo-server-$1.out
  : > "$sout"
  # shellcheck disable=SC2086 # the command splits on purpose
  exec $cmd > "$sout" 2> "$LOG/echo-server-$1.err" &
  spid=$!
  i=0
  while ! grep -q '^LISTENING ' "$sout"; do
    i=$((i + 1))
    if [ $i -gt 200 ] || ! kill -0 "$spid" 2>/dev/null; then
      echo "echo.sh: server $1 did not listen (see $LOG/echo-server-$1.err)" >&2
      kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null
      return 1
    fi
    sleep 0.05
  done
  saddr=$(sed -n 's/^LISTENING //p' "$sout" | head -n 1)
}

stop () { kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null; }

m_of () {
  eval "m=\${M_$1:-}"
  if [ -z "$m" ]; then
    case $1 in 1) m=5000 ;; 100) m=200 ;; 10000) m=10 ;; *) m=$((200000 / $1)) ;; esac
  fi
  [ "$m" -ge 5 ] || m=5
  echo "$m"
}

# rtt SERVER C M: one run; prints "RUN server c rtt_per_s p99_us".
rtt () {
  start "$1" || return 1
  if out=$(timeout 300 "$BIN/echoload" -addr "$saddr" -c "$2" -m "$3" 2> "$LOG/echo-load.err"); then
    echo "$out" | awk -v s="$1" '/^RESULT echo /{
      for (i = 3; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
      print "RUN", s, v["c"], v["rtt_per_s"], v["p99_us"] }'
  else
    echo "echo.sh: $1 c=$2 failed: $(tail -n 2 "$LOG/echo-load.err")" >&2
  fi
  stop
}

# mem SERVER C: prints "MEM server c before_kb after_kb bytes_per_conn".
mem () {
  start "$1" || return 1
  sleep 0.2
  before=$(rss_kb "$spid")
  fifo=$LOG/echo-hold.fifo
  rm -f "$fifo"; mkfifo "$fifo"
  timeout 300 "$BIN/echoload" -addr "$saddr" -c "$2" -m 1 -hold < "$fifo" \
    > "$LOG/echo-hold.out" 2> "$LOG/echo-load.err" &
  lpid=$!
  exec 9> "$fifo"
  i=0
  while ! grep -q '^HOLDING' "$LOG/echo-hold.out" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt 3000 ] || ! kill -0 "$lpid" 2>/dev/null; then break; fi
    sleep 0.1
  done
  if grep -q '^HOLDING' "$LOG/echo-hold.out"; then
    sleep 1
    after=$(rss_kb "$spid")
    echo "MEM $1 $2 $before $after $(( (after - before) * 1024 / $2 ))"
  else
    echo "echo.sh: $1 mem c=$2 failed: $(tail -n 2 "$LOG/echo-load.err")" >&2
  fi
  echo >&9; exec 9>&-
  wait "$lpid" 2>/dev/null
  rm -f "$fifo"
  stop
}

if [ "${1:-}" = -pair ]; then   # for bench/run.sh: RESULT lines
  case ${2:-} in
    lua) pair="ours1 ourspar" ;;
    go) pair="go1 go" ;;
    *) echo "echo.sh: -pair lua or -pair go" >&2; exit 2 ;;
  esac
  st=0
  for s in $pair; do
    case $s in ours1|go1) kind=1thread ;; *) kind=allcores ;; esac
    line=$(rtt "$s" 100 200)
    [ -n "$line" ] || st=1
    echo "$line" | awk -v k="$kind" 'NF {
      print "RESULT echo_tcp c100_" k "_roundtrips_per_s", $4
      print "RESULT echo_tcp c100_" k "_p99_latency_us", $5 }'
  done
  exit $st
fi

servers=${*:-"ours1 go1 ourspar go"}
for s in $servers; do server_cmd "$s" > /dev/null || exit 2; done
runs=$OUT/echo_runs.txt
: > "$runs"
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg) (the machine is shared: other work skews the figures)"
if [ "$MODE" != mem ]; then
  for c in $CS; do
    m=$(m_of "$c")
    rep=1
    while [ $rep -le "$R" ]; do
      for s in $servers; do rtt "$s" "$c" "$m" | tee -a "$runs"; done
      rep=$((rep + 1))
    done
  done
fi
if [ "$MODE" != rtt ]; then
  rep=1
  while [ $rep -le "$R" ]; do
    for s in $servers; do mem "$s" "$MEMC" | tee -a "$runs"; done
    rep=$((rep + 1))
  done
fi
echo "# load at the end $(cut -d' ' -f1-3 /proc/loadavg)"

awk '
  function med(k,   n, i, j, t, a) {
    n = cnt[k]
    for (i = 1; i <= n; i++) a[i] = v[k, i]
    for (i = 2; i <= n; i++)
      for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
    lo = a[1]; hi = a[n]
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  function add(k, x) { if (!(k in cnt)) keys[++nk] = k; v[k, ++cnt[k]] = x + 0 }
  $1 == "RUN" { add("rtt " $2 " " $3, $4); add("p99 " $2 " " $3, $5) }
  $1 == "MEM" { add("mem " $2 " " $3, $6) }
  END {
    match_of["ours1"] = "go1"; match_of["ourspar"] = "go"
    printf "%-6s %-8s %6s %12s %23s %10s %19s %9s\n", "what", "server", "c", "median", "spread (min-max)", "p99_us", "p99 spread", "vs Go"
    for (i = 1; i <= nk; i++) {
      split(keys[i], f, " ")
      if (f[1] == "p99") continue
      m = med(keys[i]); l = lo; h = hi
      p = ""; pl = ""
      if (f[1] == "rtt") { p = med("p99 " f[2] " " f[3]); pl = sprintf("%.0f-%.0f", lo, hi) }
      r = "-"
      if (f[2] in match_of && (f[1] " " match_of[f[2]] " " f[3]) in cnt) {
        o = med(f[1] " " match_of[f[2]] " " f[3])
        if (o > 0) r = sprintf("%.2f", m / o)
      }
      printf "%-6s %-8s %6s %12.0f %23s %10s %19s %9s\n", f[1] == "rtt" ? "rtt/s" : "B/conn", f[2], f[3], m,
             sprintf("%.0f-%.0f", l, h), p == "" ? "-" : sprintf("%.0f", p), pl == "" ? "-" : pl, r
    }
  }' "$runs"
