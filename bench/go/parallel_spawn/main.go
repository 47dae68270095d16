// parallel_spawn: the cost of starting goroutines that each send one value.
//
// Main starts N goroutines, each given one shared unbuffered channel and
// its index i; each sends i back and ends. Main receives all N values
// after starting them all and checks their sum. A warm-up of N/20 runs
// first, untimed.
//
// Output, N being the first argument (default 100000):
//
//	RESULT parallel_spawn us_per_goroutine <wall time / N, in microseconds>
package main

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

func worker(ch chan<- int, i int) { ch <- i }

// run starts n goroutines, receives their values and returns the time.
func run(n int) time.Duration {
	ch := make(chan int)
	start := time.Now()
	for i := 1; i <= n; i++ {
		go worker(ch, i)
	}
	sum := 0
	for i := 0; i < n; i++ {
		sum += <-ch
	}
	elapsed := time.Since(start)
	if sum != n*(n+1)/2 {
		panic(fmt.Sprintf("parallel_spawn: bad sum %d", sum))
	}
	return elapsed
}

func main() {
	n := 100000
	if len(os.Args) > 1 {
		n, _ = strconv.Atoi(os.Args[1])
	}
	run(n / 20) // warm-up: not measured
	d := run(n)
	fmt.Printf("RESULT parallel_spawn us_per_goroutine %.3f\n",
		float64(d.Nanoseconds())/1e3/float64(n))
}
