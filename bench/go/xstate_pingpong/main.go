// xstate_pingpong: round trips between main and a goroutine, in
// microseconds (the Go counterpart of xstate_pingpong.lua; the same work
// as ../pingpong, with a check of each value).
//
// Main sends an integer on ping; the partner receives it and sends it back
// on pong; both channels are unbuffered. A warm-up of 1/20 of the size
// runs first, untimed.
//
// Output, the first argument being the round trips (default 200000):
//
//	RESULT xstate_pingpong us_per_roundtrip <us>
package main

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

func partner(ping <-chan int, pong chan<- int) {
	for v := range ping {
		pong <- v
	}
}

// run does n round trips and returns the elapsed wall time.
func run(n int) time.Duration {
	ping := make(chan int)
	pong := make(chan int)
	go partner(ping, pong)
	start := time.Now()
	for i := 1; i <= n; i++ {
		ping <- i
		if v := <-pong; v != i {
			panic(fmt.Sprintf("xstate_pingpong: got %d, want %d", v, i))
		}
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
	run(n / 20) // warm-up: not measured
	d := run(n)
	fmt.Printf("RESULT xstate_pingpong us_per_roundtrip %.3f\n",
		float64(d.Nanoseconds())/1e3/float64(n))
}
