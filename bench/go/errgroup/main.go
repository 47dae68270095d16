// errgroup: a group of 10,000 members that each do nothing, then Wait.
//
// The group is x/sync/errgroup's (a WaitGroup, a channel of tokens for
// the limit, a Once for the first error), written out here because the Go
// side builds offline, without golang.org/x/sync. Measures Go for every
// member plus Wait, per member, with no limit and with SetLimit(100); the
// best of 5, as bench/errgroup.lua does.
//
// Output: RESULT errgroup ns_per_member <ns>, then
// RESULT errgroup ns_per_member_limit100 <ns>
package main

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

type group struct {
	wg      sync.WaitGroup
	sem     chan struct{}
	errOnce sync.Once
	err     error
}

func (g *group) setLimit(n int) { g.sem = make(chan struct{}, n) }

func (g *group) goFunc(f func() error) {
	if g.sem != nil {
		g.sem <- struct{}{}
	}
	g.wg.Add(1)
	go func() {
		defer func() {
			if g.sem != nil {
				<-g.sem
			}
			g.wg.Done()
		}()
		if err := f(); err != nil {
			g.errOnce.Do(func() { g.err = err })
		}
	}()
}

func (g *group) wait() error {
	g.wg.Wait()
	return g.err
}

func run(n, limit int) time.Duration {
	g := &group{}
	if limit > 0 {
		g.setLimit(limit)
	}
	member := func() error { return nil }
	start := time.Now()
	for i := 0; i < n; i++ {
		g.goFunc(member)
	}
	if g.wait() != nil {
		panic("a member failed")
	}
	return time.Since(start)
}

func main() {
	n := 10000
	if len(os.Args) > 1 {
		n, _ = strconv.Atoi(os.Args[1])
	}
	run(n/10, 0)
	run(n/10, 100)
	best, bestlim := time.Duration(1<<62), time.Duration(1<<62)
	for i := 0; i < 5; i++ {
		if d := run(n, 0); d < best {
			best = d
		}
		if d := run(n, 100); d < bestlim {
			bestlim = d
		}
	}
	fmt.Printf("RESULT errgroup ns_per_member %.1f\n",
		float64(best.Nanoseconds())/float64(n))
	fmt.Printf("RESULT errgroup ns_per_member_limit100 %.1f\n",
		float64(bestlim.Nanoseconds())/float64(n))
}
