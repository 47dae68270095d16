#!/bin/sh
# bench/compare_rev.sh -- before and after: another revision against this
# checkout and Go, on the workloads of the targets of issue 11.
#
# Usage: sh bench/compare_rev.sh REV [workload ...]   (make bench BASE=REV)
#   REV       any git revision (a commit, a branch, HEAD~3, ...). It is
#             checked out in a temporary worktree under $BENCH_OUT, built
#             there with make, and removed at the end.
#   workload  only the rows of these workloads (default: every row below).
# Environment: as bench/run.sh (LUA, LUA_PATH and LUA_CPATH for this
# checkout's module, BENCH_REPEAT, BENCH_TIMEOUT, BENCH_OUT), and
#   BENCH_TOLERANCE  how much worse than before a "no worse" row may be and
#                    still be met, as a fraction (default 0.05).
#
# The runs are bench/run.sh's, with BENCH_BASE set to the base's worktree:
# in every repeat base, ours and Go run one after the other (base, ours,
# go, base, ours, go, ...), each with the same Lua script of this checkout
# (the base differs only in its module). The rows of side "hog" run again,
# in a second run.sh with BENCH_HOG=1. Then one table: see bench/README.md
# ("Before and after") for its columns. Failed runs are listed under it as
# run.sh lists them; the script exits 1 if any run failed.

set -u

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
OUT=${BENCH_OUT:-$here/out}
TOL=${BENCH_TOLERANCE:-0.05}

# The rows of the table: workload, metric, the side it is held against and
# the bar. Side go: Go with its default GOMAXPROCS; go1: Go with
# GOMAXPROCS=1; hog: ours under BENCH_HOG=1, held against its own median.
# Bar: the highest ratio met (ours/Go for times, Go/ours for rates; an
# optional aim after it); "before": no worse than the base; for hog rows,
# the least worst-run/median met. "-": shown, no bar.
ROWS='
pingpong        ns_per_roundtrip          go   1.0  0.8
sieve           ms_total                  go   -
sieve           ms_total                  go1  1.3
select4         ns_per_select             go   1.4
xstate_pingpong us_per_roundtrip          go   1.3
parallel_spawn  us_per_goroutine          go   1.0
xstate_ints     msgs_per_sec              go   2.0
xstate_tables   msgs_per_sec              go   3.5
xstate_ints     msgs_per_sec              hog  0.5
spawn           us_per_goroutine_1000000  go   before
timers          ms_wall                   go   before
parallel_cpu    speedup_2                 go   before
'

if [ $# -lt 1 ]; then
  echo "usage: sh bench/compare_rev.sh REV [workload ...]" >&2
  exit 2
fi
rev=$1
shift
if ! sha=$(git -C "$top" rev-parse --verify --quiet "$rev^{commit}"); then
  echo "compare_rev.sh: '$rev' is not a revision of $top" >&2
  exit 2
fi
short=$(git -C "$top" rev-parse --short "$sha")

rows=$(echo "$ROWS" | awk -v only=" $* " 'NF && (only == "  " || index(only, " " $1 " "))')
if [ -z "$rows" ]; then
  echo "compare_rev.sh: no rows for: $* (have: $(echo "$ROWS" | awk 'NF { print $1 }' | sort -u | tr '\n' ' '))" >&2
  exit 2
fi
plain=$(echo "$rows" | awk '$3 != "hog" && !s[$1]++ { printf "%s ", $1 }')
hogged=$(echo "$rows" | awk '$3 == "hog" && !s[$1]++ { printf "%s ", $1 }')

mkdir -p "$OUT/logs" || exit 1
wt=$OUT/base-$short
# The worktree goes whatever happens; INT and TERM exit through the trap.
# (Only this worktree: a prune would touch the others' records too.)
cleanup () {
  if [ -d "$wt" ]; then
    git -C "$top" worktree remove --force "$wt" 2>/dev/null || rm -rf "$wt"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cleanup   # a worktree left by a killed run
echo "compare_rev.sh: building $rev ($short) in $wt" >&2
# --force: the path may still be registered if a removal failed before.
git -C "$top" worktree add --force --detach "$wt" "$sha" > "$OUT/logs/base-worktree.log" 2>&1 || {
  echo "compare_rev.sh: git worktree add failed: see $OUT/logs/base-worktree.log" >&2; exit 1; }
# Not the caller's make flags: make bench BASE=... must not pass BASE or
# its jobserver down to the base's own make.
if ! (cd "$wt" && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -j2) > "$OUT/logs/base-build.log" 2>&1; then
  echo "compare_rev.sh: make failed in the base's worktree:" >&2
  tail -n 5 "$OUT/logs/base-build.log" | sed 's/^/    /' >&2
  exit 1
fi

GOCACHE=${GOCACHE:-$OUT/gocache}
export GOCACHE
status=0
res=
if [ -n "$plain" ]; then
  # shellcheck disable=SC2086 # one word per workload
  BENCH_BASE=$wt BENCH_HOG=0 BENCH_OUT=$OUT/compare sh "$here/run.sh" $plain || status=1
  res="$res $OUT/compare"
fi
if [ -n "$hogged" ]; then
  echo >&2
  # shellcheck disable=SC2086 # one word per workload
  BENCH_BASE=$wt BENCH_HOG=1 BENCH_OUT=$OUT/compare-hog sh "$here/run.sh" $hogged || status=1
  res="$res $OUT/compare-hog"
fi

# The results of both runs, tagged: "plain|hog lang workload metric value".
for d in $res; do
  case $d in *-hog) tag=hog ;; *) tag=plain ;; esac
  sed "s/^/$tag /" "$d/results.txt"
done > "$OUT/compare-results.txt"

{
  echo
  echo "before: $rev ($(git -C "$top" log -1 --format='%h %s' "$sha"))"
  echo "after:  this checkout ($(git -C "$top" log -1 --format='%h %s' HEAD)$(git -C "$top" diff --quiet HEAD -- src lua include 2>/dev/null || echo ', with uncommitted changes'))"
  echo "repeats: ${BENCH_REPEAT:-5} of each side, alternating base, ours, Go; medians"
  echo
  echo "$rows" | awk -v tol="$TOL" -v results="$OUT/compare-results.txt" '
    BEGIN {
      while ((getline l < results) > 0) {
        split(l, f, " ")
        n = ++cnt[f[1], f[2], f[3], f[4]]
        val[f[1], f[2], f[3], f[4], n] = f[5] + 0
      }
      printf "%-15s %-26s %11s %11s %11s %7s %7s %-17s %s\n", "workload", "metric",
        "before", "after", "Go", "before", "after", "bar", "met?"
      printf "%-15s %-26s %11s %11s %11s %7s %7s %-17s %s\n", "", "",
        "median", "median", "median", "ratio", "ratio", "", ""
    }
    function sorted(t, lang, w, m, a,   n, i, j, x) {
      n = cnt[t, lang, w, m]
      for (i = 1; i <= n; i++) a[i] = val[t, lang, w, m, i]
      for (i = 2; i <= n; i++)
        for (j = i; j > 1 && a[j - 1] > a[j]; j--) { x = a[j]; a[j] = a[j - 1]; a[j - 1] = x }
      return n
    }
    function median(t, lang, w, m,   n, a) {
      n = sorted(t, lang, w, m, a)
      if (n == 0) return ""
      return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    # The worst run over the median, at most 1: min/median for a rate,
    # median/max for a time.
    function steady(t, lang, w, m, up,   n, a, md) {
      n = sorted(t, lang, w, m, a)
      if (n == 0) return ""
      md = median(t, lang, w, m)
      if (up) return (md != 0) ? a[1] / md : ""
      return (a[n] != 0) ? md / a[n] : ""
    }
    # ours against Go, oriented so that above 1 is ours worse.
    function vs(o, g, up) {
      if (o == "" || g == "" || o == 0 || g == 0) return ""
      return up ? g / o : o / g
    }
    function fmt(x) {
      if (x == "") return "-"
      return (x >= 100 || x == int(x)) ? sprintf("%.0f", x) : sprintf("%.3g", x)
    }
    function r2(x) { return (x == "") ? "-" : sprintf("%.2f", x) }
    NF {
      w = $1; m = $2; side = $3; bar = $4; aim = $5
      up = (m ~ /per_sec|per_s$|speedup/)
      t = (side == "hog") ? "hog" : "plain"
      gl = (side == "go1") ? "go1" : "go"
      b = median(t, "base", w, m); a = median(t, "lua", w, m); g = median(t, gl, w, m)
      label = m
      if (side == "go1") label = m " vs GOMAXPROCS=1"
      if (side == "hog") {
        label = m " hog: worst/med"
        rb = steady(t, "base", w, m, up); ra = steady(t, "lua", w, m, up)
        bartxt = ">= " bar
        met = (ra == "") ? "-" : (ra >= bar ? "yes" : "NO")
      } else {
        rb = vs(b, g, up); ra = vs(a, g, up)
        if (bar == "-") { bartxt = "-"; met = "" }
        else if (bar == "before") {
          bartxt = "before " (up ? "-" : "+") (tol * 100) "%"
          if (a == "" || b == "") met = "-"
          else met = (up ? (a >= b * (1 - tol)) : (a <= b * (1 + tol))) ? "yes" : "NO"
        } else {
          bartxt = "<= " bar (aim != "" ? " (aim " aim ")" : "")
          if (ra == "") met = "-"
          else met = (ra <= bar) ? ((aim != "" && ra <= aim) ? "yes, aim too" : "yes") : "NO"
        }
      }
      printf "%-15s %-26s %11s %11s %11s %7s %7s %-17s %s\n", w, label,
        fmt(b), fmt(a), fmt(g), r2(rb), r2(ra), bartxt, met
    }'
  for d in $res; do
    if [ -s "$d/failures.txt" ]; then
      echo
      echo "failed runs in $d (their cells show only the runs that succeeded):"
      sed 's/^/  /' "$d/failures.txt"
    fi
  done
} | tee "$OUT/compare.txt"
for d in $res; do [ -s "$d/failures.txt" ] && status=1; done
exit $status
