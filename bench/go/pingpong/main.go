// pingpong: round trips between two goroutines over two unbuffered channels.
//
// The main goroutine sends an integer on ping; the partner goroutine
// receives it and sends it back on pong. One round trip is therefore two
// unbuffered channel hand-offs and two goroutine switches.
//
// Output: RESULT pingpong ns_per_roundtrip <ns>
package main

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

// run does n round trips and returns the elapsed wall time.
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
	run(n / 20) // warm-up: same code path, not measured
	d := run(n)
	fmt.Printf("RESULT pingpong ns_per_roundtrip %.1f\n",
		float64(d.Nanoseconds())/float64(n))
}
