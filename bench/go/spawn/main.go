// spawn: N goroutines parked on one channel, then released and awaited.
//
// Each goroutine marks itself started on a wait group and blocks in a
// receive on one shared unbuffered channel. When all have started, main
// samples the resident set size (VmRSS, /proc/self/status); it then closes
// the channel, which releases every goroutine, and waits for all of them
// on a second wait group.
//
// Output, N being the first argument (default 1000000):
//
//	RESULT spawn us_per_goroutine_<N> <total time / N, in microseconds>
//	RESULT spawn bytes_per_goroutine_<N> <(VmRSS parked - VmRSS before) / N>
package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// statusKB returns a field of /proc/self/status ("VmRSS", "VmHWM") in kB.
func statusKB(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, field+":") {
			fs := strings.Fields(line[len(field)+1:])
			v, _ := strconv.ParseInt(fs[0], 10, 64)
			return v
		}
	}
	return 0
}

func main() {
	n := 1000000
	if len(os.Args) > 1 {
		n, _ = strconv.Atoi(os.Args[1])
	}
	runtime.GC()
	base := statusKB("VmRSS")

	ch := make(chan struct{})
	var started, done sync.WaitGroup
	started.Add(n)
	done.Add(n)
	start := time.Now()
	for i := 0; i < n; i++ {
		go func() {
			started.Done()
			<-ch // parked here until main closes ch
			done.Done()
		}()
	}
	started.Wait()
	// Every goroutine has started; let any that are between started.Done()
	// and the receive reach it before memory is sampled.
	runtime.Gosched()
	spawnPhase := time.Since(start)
	parked := statusKB("VmRSS") // not timed

	t0 := time.Now()
	close(ch)
	done.Wait()
	total := spawnPhase + time.Since(t0)

	fmt.Printf("RESULT spawn us_per_goroutine_%d %.3f\n", n,
		float64(total.Nanoseconds())/1e3/float64(n))
	fmt.Printf("RESULT spawn bytes_per_goroutine_%d %.0f\n", n,
		float64(parked-base)*1024/float64(n))
}
