// semaphore: acquire/release pairs on one weighted semaphore.
//
// The semaphore is x/sync/semaphore's algorithm (a mutex, a count and a
// FIFO list of waiters, each with its own channel), written out here
// because the Go side builds offline, without golang.org/x/sync.
// uncontended: one goroutine, size 1, N pairs. contended: 4 goroutines
// share a semaphore of size 2, N/4 pairs each, yielding every 8 pairs
// while holding a unit, as bench/semaphore.lua does.
//
// Output: RESULT semaphore ns_per_pair_uncontended <ns>, then
// RESULT semaphore ns_per_pair_contended <ns>
package main

import (
	"container/list"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"
)

type waiter struct {
	n     int64
	ready chan struct{}
}

type weighted struct {
	size    int64
	cur     int64
	mu      sync.Mutex
	waiters list.List
}

func (s *weighted) acquire(n int64) {
	s.mu.Lock()
	if s.size-s.cur >= n && s.waiters.Len() == 0 {
		s.cur += n
		s.mu.Unlock()
		return
	}
	ready := make(chan struct{})
	s.waiters.PushBack(waiter{n: n, ready: ready})
	s.mu.Unlock()
	<-ready
}

func (s *weighted) release(n int64) {
	s.mu.Lock()
	s.cur -= n
	if s.cur < 0 {
		s.mu.Unlock()
		panic("semaphore: released more than held")
	}
	for {
		next := s.waiters.Front()
		if next == nil {
			break
		}
		w := next.Value.(waiter)
		if s.size-s.cur < w.n {
			break
		}
		s.cur += w.n
		s.waiters.Remove(next)
		close(w.ready)
	}
	s.mu.Unlock()
}

func uncontended(n int) time.Duration {
	sem := &weighted{size: 1}
	start := time.Now()
	for i := 0; i < n; i++ {
		sem.acquire(1)
		sem.release(1)
	}
	return time.Since(start)
}

func contended(n int) time.Duration {
	sem := &weighted{size: 2}
	var wg sync.WaitGroup
	wg.Add(4)
	start := time.Now()
	for g := 0; g < 4; g++ {
		go func() {
			for i := 1; i <= n/4; i++ {
				sem.acquire(1)
				if i%8 == 0 {
					runtime.Gosched()
				}
				sem.release(1)
			}
			wg.Done()
		}()
	}
	wg.Wait()
	return time.Since(start)
}

func main() {
	n := 1000000
	if len(os.Args) > 1 {
		n, _ = strconv.Atoi(os.Args[1])
	}
	uncontended(n / 20)
	contended(n / 20)
	fmt.Printf("RESULT semaphore ns_per_pair_uncontended %.1f\n",
		float64(uncontended(n).Nanoseconds())/float64(n))
	fmt.Printf("RESULT semaphore ns_per_pair_contended %.1f\n",
		float64(contended(n).Nanoseconds())/float64(n))
}
