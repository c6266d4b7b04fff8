// Command hold opens a panns index, searches it, then sleeps while holding it open: a process
// for measuring how memory-mapped index pages are shared between processes
// (scripts/pss-share.sh).
//
//	hold -index FILE [-queries 100] [-k 10] [-linear 5] [-sleep 60s]
//
// It prints "ready pid=PID items=N" once the searches are done, then sleeps until -sleep
// elapses or it is interrupted.
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"syscall"
	"time"

	panns "github.com/panns/panns/bindings/go"
)

func main() {
	path := flag.String("index", "", "index file to open (required)")
	queries := flag.Int("queries", 100, "number of random approximate searches")
	linear := flag.Int("linear", 2, "number of exact searches (each reads every vector)")
	k := flag.Int("k", 10, "neighbours per search")
	sleep := flag.Duration("sleep", time.Minute, "how long to hold the index open")
	flag.Parse()
	if *path == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*path, *queries, *linear, *k, *sleep); err != nil {
		fmt.Fprintln(os.Stderr, "hold:", err)
		os.Exit(1)
	}
}

// run opens the index, searches it and sleeps.
func run(path string, queries, linear, k int, sleep time.Duration) error {
	ix, err := panns.Open(path)
	if err != nil {
		return err
	}
	defer ix.Close()
	r := rand.New(rand.NewPCG(uint64(os.Getpid()), 7))
	q := make([]float32, ix.Dim())
	for i := 0; i < queries+linear; i++ {
		for j := range q {
			q[j] = float32(r.NormFloat64())
		}
		if i < queries {
			_, err = ix.Search(q, k, 0)
		} else {
			_, err = ix.LinearSearch(q, k)
		}
		if err != nil {
			return err
		}
	}
	fmt.Printf("ready pid=%d items=%d\n", os.Getpid(), ix.Len())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	select {
	case <-time.After(sleep):
	case <-sig:
	}
	return nil
}
