// trace: the cost of the execution trace (runtime/trace) on pingpong's
// round trips, as bench/trace.lua measures GOROUTINES_TRACE's.
//
// Output: RESULT trace ns_per_roundtrip_off <ns>
//         RESULT trace ns_per_roundtrip_traced <ns>
package main

import (
	"fmt"
	"os"
	"runtime/trace"
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

func main() {
	n := 200000
	if len(os.Args) > 1 {
		n, _ = strconv.Atoi(os.Args[1])
	}
	run(n / 20)
	off := run(n)
	f, err := os.CreateTemp("", "trace")
	if err != nil {
		panic(err)
	}
	defer os.Remove(f.Name())
	if err := trace.Start(f); err != nil {
		panic(err)
	}
	on := run(n)
	trace.Stop()
	f.Close()
	fmt.Printf("RESULT trace ns_per_roundtrip_off %.1f\n",
		float64(off.Nanoseconds())/float64(n))
	fmt.Printf("RESULT trace ns_per_roundtrip_traced %.1f\n",
		float64(on.Nanoseconds())/float64(n))
}
