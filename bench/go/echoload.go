// echoload: the load generator of the echo benchmark (bench/echo.sh). It
// opens -c TCP connections to the echo server at -addr (all of them before
// any traffic, -dialers at a time), then each connection does -m closed-loop
// round trips: write -size bytes, read exactly -size bytes back, check them.
//
// Output, one line:
//
//	RESULT echo c=C m=M rtt_per_s=R p50_us=.. p99_us=.. elapsed_s=..
//
// rtt_per_s is c*m over the time from the start signal to the last round
// trip; latencies are one sample per round trip (write start to the last
// byte read), exact percentiles (nearest rank).
//
// -hold (memory mode): after the round trips (-m 1: every connection has
// been accepted and served once) print "HOLDING c=C" and keep every
// connection open and idle until stdin closes or a line arrives on it.
//
// It raises RLIMIT_NOFILE to c + 64 within the hard limit, and fails with
// status 2 saying so when the hard limit is lower. Any error (dial, short
// read, wrong bytes) is fatal: status 1, no RESULT line.
//
// build: GO111MODULE=off go build -o echoload echoload.go
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"sync"
	"syscall"
	"time"
)

func die(code int, format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "echoload: "+format+"\n", a...)
	os.Exit(code)
}

func raiseNofile(need uint64) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		die(2, "getrlimit: %v", err)
	}
	if lim.Cur >= need {
		return
	}
	if lim.Max < need {
		die(2, "need %d file descriptors, the hard RLIMIT_NOFILE is %d", need, lim.Max)
	}
	lim.Cur = need
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		die(2, "setrlimit(%d): %v", need, err)
	}
}

// pct is the p-th percentile (nearest rank) of sorted samples, in µs.
func pct(s []time.Duration, p float64) float64 {
	k := int(p/100*float64(len(s))+0.999999) - 1
	if k < 0 {
		k = 0
	}
	if k >= len(s) {
		k = len(s) - 1
	}
	return float64(s[k].Nanoseconds()) / 1e3
}

func main() {
	addr := flag.String("addr", "127.0.0.1:7000", "server address")
	c := flag.Int("c", 100, "connections")
	m := flag.Int("m", 1000, "round trips per connection")
	size := flag.Int("size", 64, "bytes per request and response")
	dialers := flag.Int("dialers", 64, "connections dialed at a time")
	hold := flag.Bool("hold", false, "memory mode: hold the connections open until stdin has a line or closes")
	flag.Parse()
	if *c < 1 || *m < 1 || *size < 1 || *dialers < 1 {
		die(2, "need -c, -m, -size, -dialers >= 1")
	}
	raiseNofile(uint64(*c) + 64)

	conns := make([]net.Conn, *c)
	next := make(chan int)
	var dialErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < *dialers && w < *c; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := net.Dialer{Timeout: 30 * time.Second}
			for i := range next {
				cn, err := d.Dial("tcp", *addr)
				if err != nil {
					mu.Lock()
					dialErr = fmt.Errorf("connection %d of %d: %v", i+1, *c, err)
					mu.Unlock()
					continue
				}
				conns[i] = cn
			}
		}()
	}
	for i := 0; i < *c; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	if dialErr != nil {
		die(1, "dial: %v", dialErr)
	}

	start := make(chan struct{})
	lat := make([][]time.Duration, *c)
	errs := make([]error, *c)
	for i := range conns {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			cn := conns[i]
			req := make([]byte, *size)
			resp := make([]byte, *size)
			l := make([]time.Duration, *m)
			<-start
			cn.SetDeadline(time.Now().Add(120 * time.Second))
			for j := 0; j < *m; j++ {
				for k := range req {
					req[k] = byte(i*7 + j*13 + k)
				}
				t0 := time.Now()
				if _, err := cn.Write(req); err != nil {
					errs[i] = fmt.Errorf("connection %d: write: %v", i+1, err)
					return
				}
				if _, err := io.ReadFull(cn, resp); err != nil {
					errs[i] = fmt.Errorf("connection %d: read: %v", i+1, err)
					return
				}
				l[j] = time.Since(t0)
				if !bytes.Equal(req, resp) {
					errs[i] = fmt.Errorf("connection %d: echoed bytes differ", i+1)
					return
				}
			}
			cn.SetDeadline(time.Time{})
			lat[i] = l
		}(i)
	}
	t1 := time.Now()
	close(start)
	wg.Wait()
	elapsed := time.Since(t1).Seconds()
	for _, err := range errs {
		if err != nil {
			die(1, "%v", err)
		}
	}
	if *hold {
		fmt.Printf("HOLDING c=%d\n", *c)
		bufio.NewReader(os.Stdin).ReadString('\n')
	}
	for _, cn := range conns {
		cn.Close()
	}
	all := make([]time.Duration, 0, *c**m)
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(a, b int) bool { return all[a] < all[b] })
	fmt.Printf("RESULT echo c=%d m=%d rtt_per_s=%.0f p50_us=%.1f p99_us=%.1f elapsed_s=%.3f\n",
		*c, *m, float64(len(all))/elapsed, pct(all, 50), pct(all, 99), elapsed)
}
