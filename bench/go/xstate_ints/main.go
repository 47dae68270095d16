// xstate_ints: integers from a goroutine to main over a buffered channel.
//
// A producer goroutine sends the integers 1..N on a channel of capacity
// 1024 and closes it; main receives them with range and sums them
// (checked). A warm-up of N/20 runs first, untimed.
//
// Output, N being the first argument (default 1000000):
//
//	RESULT xstate_ints msgs_per_sec <N / wall time>
package main

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

func producer(ch chan<- int, n int) {
	for i := 1; i <= n; i++ {
		ch <- i
	}
	close(ch)
}

// run moves n integers and returns the elapsed wall time.
func run(n int) time.Duration {
	ch := make(chan int, 1024)
	start := time.Now()
	go producer(ch, n)
	sum := 0
	for v := range ch {
		sum += v
	}
	elapsed := time.Since(start)
	if sum != n*(n+1)/2 {
		panic(fmt.Sprintf("xstate_ints: bad sum %d", sum))
	}
	return elapsed
}

func main() {
	n := 1000000
	if len(os.Args) > 1 {
		n, _ = strconv.Atoi(os.Args[1])
	}
	run(n / 20) // warm-up: not measured
	d := run(n)
	fmt.Printf("RESULT xstate_ints msgs_per_sec %.0f\n", float64(n)/d.Seconds())
}
