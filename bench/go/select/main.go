// select: the cost of a 4-way select, in two settings.
//
// poll -- one goroutine, no partner. The four cases are a receive from
// and a send to channel a (capacity 1), a receive from b (always empty)
// and a send to c (always full). Exactly one case is ready at each select:
// the send when a is empty, the receive when it is full. This measures
// select itself: the cases, locking three channels, polling them.
//
// fanin -- four producer goroutines each send M/4 integers into their own
// buffered channel (capacity 64); the consumer receives all M values
// through a 4-way select over the four channels. This adds the producers'
// sends and the park/wake traffic of a typical fan-in loop.
//
// Output, M being the first argument (default 1000000):
//
//	RESULT select ns_per_select_poll <ns>
//	RESULT select ns_per_select_fanin <ns>
package main

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

// poll runs n selects with exactly one ready case and returns the time.
func poll(n int) time.Duration {
	a := make(chan int, 1)
	b := make(chan int, 1) // stays empty: its receive case is never ready
	c := make(chan int, 1) // stays full: its send case is never ready
	c <- 0
	sum := 0
	start := time.Now()
	for i := 0; i < n; i++ {
		select {
		case v := <-a:
			sum += v
		case a <- i:
		case v := <-b:
			sum += v
		case c <- i:
		}
	}
	elapsed := time.Since(start)
	if sum != (n/2)*(n/2-1) {
		// The alternation send, receive, send, ... is deterministic.
		panic(fmt.Sprintf("select poll: bad sum %d", sum))
	}
	return elapsed
}

// fanin receives n values (n a multiple of 4) from four producers through
// one select and returns the time, producers' start included.
func fanin(n int) time.Duration {
	var chs [4]chan int
	for k := range chs {
		chs[k] = make(chan int, 64)
	}
	start := time.Now()
	for k := range chs {
		go func(ch chan<- int, m int) {
			for i := 0; i < m; i++ {
				ch <- i
			}
		}(chs[k], n/4)
	}
	for i := 0; i < n; i++ {
		select {
		case <-chs[0]:
		case <-chs[1]:
		case <-chs[2]:
		case <-chs[3]:
		}
	}
	return time.Since(start)
}

func main() {
	n := 1000000
	if len(os.Args) > 1 {
		n, _ = strconv.Atoi(os.Args[1])
	}
	n -= n % 4
	poll(n / 20) // warm-up: same code path, not measured
	d := poll(n)
	fmt.Printf("RESULT select ns_per_select_poll %.1f\n",
		float64(d.Nanoseconds())/float64(n))
	fanin(n / 20 / 4 * 4)
	d = fanin(n)
	fmt.Printf("RESULT select ns_per_select_fanin %.1f\n",
		float64(d.Nanoseconds())/float64(n))
}
