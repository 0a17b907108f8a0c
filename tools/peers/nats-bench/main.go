// nats-bench: publishes N records to a NATS JetStream stream on file storage with
// asynchronous publishes, and prints one JSON line: records, seconds,
// records_per_sec, mb_per_sec and latency_ms.p99 (publish → stream ack).
// Built by tools/compare-peers.sh from Debian's golang-go and
// golang-github-nats-io-go-nats-dev (GO111MODULE=off GOPATH=/usr/share/gocode).
package main

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/nats-io/nats.go"
)

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "nats-bench:", err)
		os.Exit(1)
	}
}

type pending struct {
	future nats.PubAckFuture
	sent   time.Time
	index  int
}

func main() {
	url := flag.String("url", "nats://127.0.0.1:4222", "server URL")
	n := flag.Int("n", 1000000, "records")
	size := flag.Int("size", 100, "bytes per record")
	flag.Parse()

	nc, err := nats.Connect(*url)
	check(err)
	defer nc.Close()
	js, err := nc.JetStream(nats.PublishAsyncMaxPending(8192))
	check(err)
	_, err = js.AddStream(&nats.StreamConfig{Name: "BENCH", Subjects: []string{"bench"}, Storage: nats.FileStorage})
	check(err)

	payload := []byte(fmt.Sprintf("{\"ts\":1700000000000,\"user\":\"user-42\",\"action\":\"click\",\"item\":4711,\"pad\":\"%s\"}", "abcdefghijklmnopqrstuvwxyz0123456789"))
	for len(payload) < *size {
		payload = append(payload, 'x')
	}
	payload = payload[:*size]

	latencies := make([]time.Duration, *n)
	acks := make(chan pending, 16384)
	done := make(chan struct{})
	go func() {
		for p := range acks {
			select {
			case <-p.future.Ok():
				latencies[p.index] = time.Since(p.sent)
			case err := <-p.future.Err():
				check(err)
			}
		}
		close(done)
	}()

	start := time.Now()
	for i := 0; i < *n; i++ {
		sent := time.Now()
		f, err := js.PublishAsync("bench", payload)
		check(err)
		acks <- pending{f, sent, i}
	}
	close(acks)
	<-done
	elapsed := time.Since(start).Seconds()

	sort.Slice(latencies, func(a, b int) bool { return latencies[a] < latencies[b] })
	p99 := latencies[int(float64(*n-1)*0.99)].Seconds() * 1000
	fmt.Printf("{\"records\":%d,\"seconds\":%.3f,\"records_per_sec\":%.1f,\"mb_per_sec\":%.3f,\"latency_ms\":{\"p99\":%.3f}}\n",
		*n, elapsed, float64(*n)/elapsed, float64(*n**size)/elapsed/1048576, p99)
}
