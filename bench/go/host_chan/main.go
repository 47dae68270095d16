// host_chan: a locked OS thread sends to a goroutine over a buffered(1024)
// channel: first n integers, then n 64-byte strings (bench/host_chan.c
// does the same from a host thread to a Lua goroutine).
//
// Output: RESULT host_chan ints_msgs_per_s <n>, strings_msgs_per_s <n>
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"time"
)

func run(n int, strs bool) float64 {
	ints := make(chan int, 1024)
	ss := make(chan string, 1024)
	done := make(chan int)
	s64 := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	go func() {
		k := 0
		if strs {
			for range ss {
				k++
			}
		} else {
			for range ints {
				k++
			}
		}
		done <- k
	}()
	start := time.Now()
	go func() {
		runtime.LockOSThread()
		for i := 0; i < n; i++ {
			if strs {
				ss <- s64
			} else {
				ints <- i
			}
		}
		close(ints)
		close(ss)
	}()
	<-done
	return float64(n) / time.Since(start).Seconds()
}

func main() {
	n := 1000000
	if len(os.Args) > 1 {
		n, _ = strconv.Atoi(os.Args[1])
	}
	fmt.Printf("RESULT host_chan ints_msgs_per_s %.0f\n", run(n, false))
	fmt.Printf("RESULT host_chan strings_msgs_per_s %.0f\n", run(n, true))
}
