// leaks: the workloads of bench/leaks.lua in Go, whose runtime frees no
// leaked goroutine (Go 1.26's goroutineleak profile lists them, and they
// stay).
//
// free N (default 100000): N goroutines each block in a receive on a
// channel that only they hold; then two full collections. Prints the heap
// in use (runtime.MemStats.HeapInuse, kB) and VmRSS before the spawn, with
// the goroutines parked, and after.
//
// gc N (default 1000000): N goroutines parked in a receive on one channel
// that main holds; times runtime.GC() (median of 5, after a first one).
//
// Output: RESULT leaks <metric> <value> lines.
package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

func statusKB(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, field+":") {
			fs := strings.Fields(line[len(field)+1:])
			v, _ := strconv.ParseInt(fs[0], 10, 64)
			return v
		}
	}
	return 0
}

func heapKB() float64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(m.HeapInuse+m.StackInuse) / 1024
}

func result(metric string, format string, v interface{}) {
	fmt.Printf("RESULT leaks %s "+format+"\n", metric, v)
}

func free(n int) {
	runtime.GC()
	runtime.GC()
	kb0, rss0 := heapKB(), statusKB("VmRSS")
	for i := 0; i < n; i++ {
		go func(ch chan int) { <-ch }(make(chan int))
	}
	runtime.Gosched()
	time.Sleep(100 * time.Millisecond)
	kb1, rss1 := heapKB(), statusKB("VmRSS")
	runtime.GC()
	runtime.GC()
	kb2, rss2 := heapKB(), statusKB("VmRSS")
	result("goroutines_after", "%d", runtime.NumGoroutine()-1)
	result("heap_kb_before", "%.0f", kb0)
	result("heap_kb_parked", "%.0f", kb1)
	result("heap_kb_after", "%.0f", kb2)
	result("heap_after_over_before", "%.3f", kb2/kb0)
	result("rss_kb_before", "%d", rss0)
	result("rss_kb_parked", "%d", rss1)
	result("rss_kb_after", "%d", rss2)
}

func gc(n int) {
	ch := make(chan int)
	for i := 0; i < n; i++ {
		go func() { <-ch }()
	}
	time.Sleep(100 * time.Millisecond)
	t0 := time.Now()
	runtime.GC()
	result("first_gc_s", "%.3f", time.Since(t0).Seconds())
	ts := make([]float64, 5)
	for i := range ts {
		t0 = time.Now()
		runtime.GC()
		ts[i] = time.Since(t0).Seconds()
	}
	sort.Float64s(ts)
	result("gc_s_"+strconv.Itoa(n), "%.3f", ts[2])
	close(ch)
}

func main() {
	mode := "free"
	if len(os.Args) > 1 {
		mode = os.Args[1]
	}
	n := 0
	if len(os.Args) > 2 {
		n, _ = strconv.Atoi(os.Args[2])
	}
	if mode == "gc" {
		if n == 0 {
			n = 1000000
		}
		gc(n)
		return
	}
	if n == 0 {
		n = 100000
	}
	free(n)
}
