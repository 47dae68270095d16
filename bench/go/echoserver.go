// echoserver: Go's echo server of the echo benchmark (bench/echo.sh), the
// twin of bench/echo_server1.lua: a goroutine per connection reads into a
// 32 KiB buffer (io.Copy's) and writes back what it read, until EOF or an
// error. It prints "LISTENING host:port" once it accepts, and runs until
// killed. Run it with GOMAXPROCS=1 for the match with one Lua state.
//
// build: GO111MODULE=off go build -o echoserver echoserver.go
package main

import (
	"fmt"
	"net"
	"os"
	"time"
)

func serve(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 32*1024) // io.Copy's buffer
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func main() {
	addr := "127.0.0.1:0"
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "echoserver: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("LISTENING %s\n", ln.Addr())
	for {
		c, err := ln.Accept()
		if err != nil {
			fmt.Fprintf(os.Stderr, "echoserver: accept: %v\n", err)
			time.Sleep(5 * time.Millisecond)
			continue
		}
		go serve(c)
	}
}
