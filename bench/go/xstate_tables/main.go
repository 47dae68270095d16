// xstate_tables: small records from a goroutine to main.
//
// A producer goroutine sends N values struct{id int; name string} with
// name "x" + i on a channel of capacity 1024 and closes it; main receives
// them with range, checks every id and, for one value in 1,000, the name.
// A warm-up of N/20 runs first, untimed.
//
// Output, N being the first argument (default 100000):
//
//	RESULT xstate_tables msgs_per_sec <N / wall time>
package main

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

type item struct {
	id   int
	name string
}

func producer(ch chan<- item, n int) {
	for i := 1; i <= n; i++ {
		ch <- item{id: i, name: "x" + strconv.Itoa(i)}
	}
	close(ch)
}

// run moves n values and returns the elapsed wall time.
func run(n int) time.Duration {
	ch := make(chan item, 1024)
	start := time.Now()
	go producer(ch, n)
	i := 0
	for v := range ch {
		i++
		if v.id != i {
			panic(fmt.Sprintf("xstate_tables: id %d, want %d", v.id, i))
		}
		if i%1000 == 0 && v.name != "x"+strconv.Itoa(i) {
			panic("xstate_tables: bad name " + v.name)
		}
	}
	elapsed := time.Since(start)
	if i != n {
		panic(fmt.Sprintf("xstate_tables: received %d", i))
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
	fmt.Printf("RESULT xstate_tables msgs_per_sec %.0f\n", float64(n)/d.Seconds())
}
