// sieve: Go's classic concurrent prime sieve (a daisy chain of filters).
//
// generate sends 2, 3, 4, ... on an unbuffered channel; main takes the
// first value as a prime and inserts a filter goroutine for it at the end
// of the chain. Finding P primes builds a chain of P filters; every
// number travels through the filters of all primes below its smallest
// factor. The goroutines left at the end are abandoned, as in the Go tour.
//
// Output: RESULT sieve ms_total <ms>   (P is the first argument, default 2000)
package main

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

// generate sends the sequence 2, 3, 4, ... to channel ch.
func generate(ch chan<- int) {
	for i := 2; ; i++ {
		ch <- i
	}
}

// filter copies the values from in to out, dropping multiples of prime.
func filter(in <-chan int, out chan<- int, prime int) {
	for {
		i := <-in
		if i%prime != 0 {
			out <- i
		}
	}
}

func main() {
	n := 2000
	if len(os.Args) > 1 {
		n, _ = strconv.Atoi(os.Args[1])
	}
	start := time.Now()
	ch := make(chan int)
	go generate(ch)
	last := 0
	for i := 0; i < n; i++ {
		prime := <-ch
		last = prime
		ch1 := make(chan int)
		go filter(ch, ch1, prime)
		ch = ch1
	}
	elapsed := time.Since(start)
	if n == 2000 && last != 17389 { // the 2000th prime
		panic(fmt.Sprintf("sieve: prime %d is %d, want 17389", n, last))
	}
	fmt.Printf("RESULT sieve ms_total %.1f\n",
		float64(elapsed.Nanoseconds())/1e6)
}
