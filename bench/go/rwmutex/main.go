// rwmutex: 8 readers and 1 writer share one sync.RWMutex.
//
// Each reader does N RLock/RUnlock pairs, the writer N/8 Lock/Unlock
// pairs; each yields (runtime.Gosched) every 16 pairs (the writer every 2)
// while it holds no lock, as bench/rwmutex.lua does.
//
// Output: RESULT rwmutex ns_per_lock <ns>
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"
)

func run(n int) (time.Duration, int) {
	var rw sync.RWMutex
	var wg sync.WaitGroup
	shared := 0
	wg.Add(9)
	start := time.Now()
	for r := 0; r < 8; r++ {
		go func() {
			for i := 1; i <= n; i++ {
				rw.RLock()
				_ = shared
				rw.RUnlock()
				if i%16 == 0 {
					runtime.Gosched()
				}
			}
			wg.Done()
		}()
	}
	go func() {
		for i := 1; i <= n/8; i++ {
			rw.Lock()
			shared++
			rw.Unlock()
			if i%2 == 0 {
				runtime.Gosched()
			}
		}
		wg.Done()
	}()
	wg.Wait()
	return time.Since(start), 8*n + n/8
}

func main() {
	n := 200000
	if len(os.Args) > 1 {
		n, _ = strconv.Atoi(os.Args[1])
	}
	run(n / 20)
	d, ops := run(n)
	fmt.Printf("RESULT rwmutex ns_per_lock %.1f\n",
		float64(d.Nanoseconds())/float64(ops))
}
