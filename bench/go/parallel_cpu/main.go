// parallel_cpu: does a CPU-bound kernel scale over two cores?
//
// The kernel is an integer loop (a linear congruential generator whose
// outputs are summed), the same as in parallel_cpu.lua, with the same
// number of iterations (so it runs far shorter than the Lua one).
//
//	main1 -- the kernel once in the main goroutine (the baseline);
//	par1  -- the kernel once in another goroutine, timed inside it;
//	seq2  -- the kernel twice in sequence in the main goroutine;
//	par2  -- two goroutines each run the kernel at once; main waits for
//	         both results on a channel.
//
// Every run must return the same sum (checked).
//
// Output, the first argument being the iterations (default 150000000):
//
//	RESULT parallel_cpu kernel_ms_main <main1, ms>
//	RESULT parallel_cpu speedup_2 <seq2 / par2; 2.0 = perfect on 2 cores>
//	RESULT parallel_cpu kernel_ratio_parallel_vs_main <par1 / main1>
package main

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

func kernel(n int) int64 {
	var x, s int64 = 1, 0
	for i := 0; i < n; i++ {
		x = (x*1103515245 + 12345) & 0x7fffffff
		s += x >> 16
	}
	return s
}

type result struct {
	sum  int64
	secs float64
}

func job(n int, out chan<- result) {
	t0 := time.Now()
	s := kernel(n)
	out <- result{s, time.Since(t0).Seconds()}
}

func main() {
	n := 150000000
	if len(os.Args) > 1 {
		n, _ = strconv.Atoi(os.Args[1])
	}
	out := make(chan result)

	t0 := time.Now()
	expect := kernel(n)
	main1 := time.Since(t0).Seconds()

	go job(n, out)
	r := <-out
	if r.sum != expect {
		panic("parallel_cpu: bad sum in a goroutine")
	}
	par1 := r.secs

	t0 = time.Now()
	s1, s2 := kernel(n), kernel(n)
	seq2 := time.Since(t0).Seconds()
	if s1 != expect || s2 != expect {
		panic("parallel_cpu: bad sum")
	}

	t0 = time.Now()
	go job(n, out)
	go job(n, out)
	ra, rb := <-out, <-out
	par2 := time.Since(t0).Seconds()
	if ra.sum != expect || rb.sum != expect {
		panic("parallel_cpu: bad sum in par2")
	}

	fmt.Printf("RESULT parallel_cpu kernel_ms_main %.1f\n", main1*1e3)
	fmt.Printf("RESULT parallel_cpu speedup_2 %.3f\n", seq2/par2)
	fmt.Printf("RESULT parallel_cpu kernel_ratio_parallel_vs_main %.3f\n", par1/main1)
}
