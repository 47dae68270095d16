// read_file: os.ReadFile of a 100 MiB file, then a bufio.Scanner over it
// (Text(): a string per line), in MB/s (10^6 bytes a second). The file is
// made in /tmp first (not timed) and removed at the end: lines of 100
// bytes, "line 00000001 " padded with x to 99, then "\n".
//
// Output: RESULT read_file read_file_MB_per_s <MB/s>
//         RESULT read_file lines_MB_per_s <MB/s>
// (the size in MiB is the first argument, default 100)
package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() {
	mib := 100
	if len(os.Args) > 1 {
		mib, _ = strconv.Atoi(os.Args[1])
	}
	nlines := mib * 1048576 / 100
	size := nlines * 100
	f, err := os.CreateTemp("", "read_file")
	if err != nil {
		panic(err)
	}
	path := f.Name()
	defer os.Remove(path)
	w := bufio.NewWriterSize(f, 1<<20)
	for i := 1; i <= nlines; i++ {
		s := fmt.Sprintf("line %08d ", i)
		w.WriteString(s + strings.Repeat("x", 99-len(s)) + "\n")
	}
	if err := w.Flush(); err != nil {
		panic(err)
	}
	f.Close()

	t0 := time.Now()
	data, err := os.ReadFile(path)
	secs := time.Since(t0).Seconds()
	if err != nil || len(data) != size {
		panic(fmt.Sprint("ReadFile read ", len(data), " bytes: ", err))
	}
	data = nil
	fmt.Printf("RESULT read_file read_file_MB_per_s %.1f\n", float64(size)/secs/1e6)

	t0 = time.Now()
	file, err := os.Open(path)
	if err != nil {
		panic(err)
	}
	s := bufio.NewScanner(file)
	n, bytes := 0, 0
	for s.Scan() {
		n++
		bytes += len(s.Text()) + 1
	}
	file.Close()
	secs = time.Since(t0).Seconds()
	if s.Err() != nil || n != nlines || bytes != size {
		panic(fmt.Sprint("Scanner read ", n, " lines: ", s.Err()))
	}
	fmt.Printf("RESULT read_file lines_MB_per_s %.1f\n", float64(size)/secs/1e6)
}
