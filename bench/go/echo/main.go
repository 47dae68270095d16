// echo: TCP round trips of 64 bytes over loopback, a goroutine per
// connection on the server side, C client connections doing M round trips
// each, server and clients in one process with GOMAXPROCS=1 (the Lua side
// runs in one state, on one thread).
//
// Output: RESULT echo roundtrips_per_s <n>
//         RESULT echo p99_latency_us <us>
package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"time"
)

func serve(ln net.Listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			buf := make([]byte, 64)
			for {
				n, err := conn.Read(buf)
				if err != nil {
					break
				}
				if _, err := conn.Write(buf[:n]); err != nil {
					break
				}
			}
			conn.Close()
		}()
	}
}

func client(addr string, m int, lat *[]time.Duration, mu *sync.Mutex, wg *sync.WaitGroup) {
	defer wg.Done()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		panic(err)
	}
	msg := make([]byte, 64)
	buf := make([]byte, 64)
	mine := make([]time.Duration, 0, m)
	for i := 0; i < m; i++ {
		t0 := time.Now()
		if _, err := conn.Write(msg); err != nil {
			panic(err)
		}
		if _, err := io.ReadFull(conn, buf); err != nil {
			panic(err)
		}
		mine = append(mine, time.Since(t0))
	}
	conn.Close()
	mu.Lock()
	*lat = append(*lat, mine...)
	mu.Unlock()
}

func run(addr string, c, m int) (time.Duration, []time.Duration) {
	var lat []time.Duration
	var mu sync.Mutex
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := 0; i < c; i++ {
		wg.Add(1)
		go client(addr, m, &lat, &mu, &wg)
	}
	wg.Wait()
	return time.Since(t0), lat
}

func main() {
	runtime.GOMAXPROCS(1)
	c, m := 100, 200
	if len(os.Args) > 1 {
		c, _ = strconv.Atoi(os.Args[1])
	}
	if len(os.Args) > 2 {
		m, _ = strconv.Atoi(os.Args[2])
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go serve(ln)
	run(ln.Addr().String(), 10, 20) // warm-up
	d, lat := run(ln.Addr().String(), c, m)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	p99 := lat[(len(lat)*99+99)/100-1]
	fmt.Printf("RESULT echo roundtrips_per_s %.0f\n", float64(c*m)/d.Seconds())
	fmt.Printf("RESULT echo p99_latency_us %.1f\n", float64(p99.Nanoseconds())/1e3)
	ln.Close()
}
