// trace: the cost of the execution trace (runtime/trace) on pingpong's
// round trips, as bench/trace.lua measures GOROUTINES_TRACE's.
//
// Five untraced and traced runs alternately; the medians.
//
// Output: RESULT trace ns_per_roundtrip_off <ns>
//         RESULT trace ns_per_roundtrip_traced <ns>
//         RESULT trace traced_over_off <ratio>
package main

import (
	"fmt"
	"os"
	"runtime/trace"
	"sort"
	"strconv"
	"time"
)

func run(n int) time.Duration {
	ping := make(chan int)
	pong := make(chan int)
	go func() {
		for v := range ping {
			pong <- v
		}
	}()
	start := time.Now()
	for i := 0; i < n; i++ {
		ping <- i
		<-pong
	}
	elapsed := time.Since(start)
	close(ping)
	return elapsed
}

func median(v []float64) float64 {
	c := append([]float64(nil), v...)
	sort.Float64s(c)
	m := len(c) / 2
	if len(c)%2 == 1 {
		return c[m]
	}
	return (c[m-1] + c[m]) / 2
}

func main() {
	n := 200000
	if len(os.Args) > 1 {
		n, _ = strconv.Atoi(os.Args[1])
	}
	const pairs = 5 // untraced and traced runs, alternately
	run(n / 20)
	var offs, ons, ratios []float64
	for i := 0; i < pairs; i++ {
		off := run(n)
		f, err := os.CreateTemp("", "trace")
		if err != nil {
			panic(err)
		}
		if err := trace.Start(f); err != nil {
			panic(err)
		}
		on := run(n)
		trace.Stop()
		f.Close()
		os.Remove(f.Name())
		offs = append(offs, float64(off.Nanoseconds())/float64(n))
		ons = append(ons, float64(on.Nanoseconds())/float64(n))
		ratios = append(ratios, float64(on)/float64(off))
	}
	fmt.Printf("RESULT trace ns_per_roundtrip_off %.1f\n", median(offs))
	fmt.Printf("RESULT trace ns_per_roundtrip_traced %.1f\n", median(ons))
	fmt.Printf("RESULT trace traced_over_off %.2f\n", median(ratios))
}
