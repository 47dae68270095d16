// timers: N goroutines each sleep a random 0-200 ms, then signal a wait
// group; main waits for all of them. The ideal wall time is the longest
// sleep, just under 200 ms; the excess is the cost of creating, running
// and firing N timers.
//
// Output: RESULT timers ms_wall <ms>   (N is the first argument, default 100000)
package main

import (
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"sync"
	"time"
)

func main() {
	n := 100000
	if len(os.Args) > 1 {
		n, _ = strconv.Atoi(os.Args[1])
	}
	// Draw the sleeps first, with a fixed seed, so that only the goroutines
	// and timers are measured.
	r := rand.New(rand.NewSource(1))
	sleeps := make([]time.Duration, n)
	for i := range sleeps {
		sleeps[i] = time.Duration(r.Float64() * float64(200*time.Millisecond))
	}

	var wg sync.WaitGroup
	wg.Add(n)
	start := time.Now()
	for i := 0; i < n; i++ {
		go func(d time.Duration) {
			time.Sleep(d)
			wg.Done()
		}(sleeps[i])
	}
	wg.Wait()
	elapsed := time.Since(start)
	fmt.Printf("RESULT timers ms_wall %.1f\n",
		float64(elapsed.Nanoseconds())/1e6)
}
