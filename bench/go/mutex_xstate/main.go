// mutex_xstate: one sync.Mutex locked by two goroutines at once.
//
// Main and one goroutine each do N Lock/Unlock pairs on the same mutex;
// the critical section only counts the pairs. The partner says it is
// ready over a channel; the clock starts when main has heard it and
// stops when both have done their N (the partner sends its count back).
// A warm-up of 1/20 of the size runs first, untimed, as
// bench/mutex_xstate.lua does (there the partner is a g.parallel
// goroutine on another thread; here the runtime places it).
//
// Output: RESULT mutex_xstate ns_per_pair <ns>
package main

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

func partner(mu *sync.Mutex, ready chan bool, done chan int, n int) {
	ready <- true
	count := 0
	for i := 0; i < n; i++ {
		mu.Lock()
		count++
		mu.Unlock()
	}
	done <- count
}

func run(n int) time.Duration {
	mu := &sync.Mutex{}
	ready, done := make(chan bool), make(chan int)
	go partner(mu, ready, done, n)
	<-ready
	start := time.Now()
	count := 0
	for i := 0; i < n; i++ {
		mu.Lock()
		count++
		mu.Unlock()
	}
	theirs := <-done
	elapsed := time.Since(start)
	if count != n || theirs != n {
		panic(fmt.Sprintf("mutex_xstate: counted %d and %d, want %d",
			count, theirs, n))
	}
	return elapsed
}

func main() {
	n := 200000
	if len(os.Args) > 1 {
		n, _ = strconv.Atoi(os.Args[1])
	}
	run(n / 20)
	d := run(n)
	fmt.Printf("RESULT mutex_xstate ns_per_pair %.1f\n",
		float64(d.Nanoseconds())/float64(2*n))
}
