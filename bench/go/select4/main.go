// select4: a 4-way receive select, each channel fed by its own goroutine.
//
// Four unbuffered channels; one goroutine per channel sends 1, 2, 3, ...
// on it forever. Main runs selects over the four receives. Each channel's
// values must arrive in order, none lost or repeated (checked), and every
// channel must be taken. A warm-up of N/20 selects over the same channels
// runs first, untimed; the senders are abandoned at the end.
//
// Output: RESULT select4 ns_per_select <ns>   (selects: first argument, default 200000)
package main

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

// sender sends 1, 2, 3, ... on ch, forever.
func sender(ch chan<- int) {
	for i := 1; ; i++ {
		ch <- i
	}
}

var chans [4]chan int
var got [4]int // the last value taken from each channel

// run runs n selects and returns the elapsed wall time.
func run(n int) time.Duration {
	start := time.Now()
	for i := 0; i < n; i++ {
		var k, v int
		select {
		case v = <-chans[0]:
			k = 0
		case v = <-chans[1]:
			k = 1
		case v = <-chans[2]:
			k = 2
		case v = <-chans[3]:
			k = 3
		}
		if v != got[k]+1 {
			panic(fmt.Sprintf("select4: channel %d gave %d after %d", k+1, v, got[k]))
		}
		got[k] = v
	}
	return time.Since(start)
}

func main() {
	n := 200000
	if len(os.Args) > 1 {
		n, _ = strconv.Atoi(os.Args[1])
	}
	for k := range chans {
		chans[k] = make(chan int)
		go sender(chans[k])
	}
	warm := n / 20
	run(warm) // warm-up: same channels and code path, not measured
	d := run(n)
	if got[0]+got[1]+got[2]+got[3] != warm+n {
		panic(fmt.Sprintf("select4: %d values in %d selects", got[0]+got[1]+got[2]+got[3], warm+n))
	}
	for k := range got {
		if n >= 1000 && got[k] == 0 {
			panic(fmt.Sprintf("select4: channel %d never chosen", k+1))
		}
	}
	fmt.Printf("RESULT select4 ns_per_select %.1f\n", float64(d.Nanoseconds())/float64(n))
}
