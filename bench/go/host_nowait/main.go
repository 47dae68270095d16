// host_nowait: the cost of runtime.Gosched() with no other goroutine
// ready, Go's nearest to bench/host_nowait.c's gr_run(L, GR_RUN_NOWAIT)
// on an idle state ("run what is ready, then come back"). Go has no
// host-driven frame, so the frame metric has no Go side.
//
// Output: RESULT host_nowait idle_ns_per_call <ns>
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"time"
)

func main() {
	n := 1000000
	if len(os.Args) > 1 {
		n, _ = strconv.Atoi(os.Args[1])
	}
	start := time.Now()
	for i := 0; i < n; i++ {
		runtime.Gosched()
	}
	fmt.Printf("RESULT host_nowait idle_ns_per_call %.1f\n",
		float64(time.Since(start).Nanoseconds())/float64(n))
}
