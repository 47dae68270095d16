// exec: N `true` processes, at most 8 running at a time, through
// os/exec (each goroutine runs one Cmd.Run), as bench/exec.lua does.
//
// Output: RESULT exec ms_total <ms>, then RESULT exec us_per_process <us>
package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"
)

func run(n int) time.Duration {
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	t0 := time.Now()
	wg.Add(n)
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		go func() {
			if err := exec.Command("true").Run(); err != nil {
				panic(err)
			}
			<-sem
			wg.Done()
		}()
	}
	wg.Wait()
	return time.Since(t0)
}

func main() {
	n := 100
	if len(os.Args) > 1 {
		v, err := strconv.Atoi(os.Args[1])
		if err != nil {
			panic(err)
		}
		n = v
	}
	run(8) // warm-up, as the Lua side
	t := run(n)
	fmt.Printf("RESULT exec ms_total %.1f\n", float64(t)/1e6)
	fmt.Printf("RESULT exec us_per_process %.0f\n", float64(t)/1e3/float64(n))
}
