package asyncbench

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// meta is about what async's Gust-Event header carries for a one-byte POST.
const meta = `{"id":"01JDV5Q0X4T8K2M9ZC7N3W6Y5R","function":"noop","version":1,"method":"POST","path":"/","header":{"Accept":["*/*"],"Content-Length":["1"],"Content-Type":["text/plain"],"User-Agent":["wrk"]},"trigger":"async","acceptedAt":"2026-11-26T18:10:00.123456789Z"}`

func startJS(b *testing.B, cfg jetstream.StreamConfig, tcp bool) (jetstream.JetStream, *nats.Conn, func()) {
	opts := &server.Options{ServerName: "b", JetStream: true, StoreDir: b.TempDir(), DontListen: !tcp, NoSigs: true}
	if tcp {
		opts.Host, opts.Port = "127.0.0.1", server.RANDOM_PORT
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		b.Fatal(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		b.Fatal("not ready")
	}
	conn := nats.InProcessServer(srv)
	if tcp {
		conn = func(*nats.Options) error { return nil }
	}
	nc, err := nats.Connect(srv.ClientURL(), conn)
	if err != nil {
		b.Fatal(err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := js.CreateStream(context.Background(), cfg); err != nil {
		b.Fatal(err)
	}
	return js, nc, func() { nc.Close(); srv.Shutdown(); srv.WaitForShutdown() }
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkStoreVariants: one async publish per op from 8 goroutines, each
// waiting for its own ack, as async.store does, with variants of the
// message and the stream.
func BenchmarkStoreVariants(b *testing.B) {
	base := jetstream.StreamConfig{
		Name: "A", Subjects: []string{"gust.async.>"}, Retention: jetstream.WorkQueuePolicy,
		Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute,
	}
	type variant struct {
		name     string
		cfg      func(*jetstream.StreamConfig)
		unique   bool // a subject per message
		inHeader bool // meta in a header, else in the data
		request  bool // nc.RequestMsg instead of PublishMsgAsync
		tcp      bool // a TCP loopback connection instead of an in-process pipe
	}
	for _, v := range []variant{
		{"unique-header", nil, true, true, false, false},
		{"shared-header", nil, false, true, false, false},
		{"unique-data", nil, true, false, false, false},
		{"shared-data", nil, false, false, false, false},
		{"unique-header-nodup", func(c *jetstream.StreamConfig) { c.Duplicates = 0 }, true, true, false, false},
		{"unique-header-asyncpersist", func(c *jetstream.StreamConfig) { c.PersistMode = jetstream.AsyncPersistMode }, true, true, false, false},
		{"unique-header-request", nil, true, true, true, false},
		{"unique-data-request", nil, true, false, true, false},
		{"unique-header-tcp", nil, true, true, false, true},
		{"unique-data-tcp", nil, true, false, false, true},
	} {
		b.Run(v.name, func(b *testing.B) {
			cfg := base
			if v.cfg != nil {
				v.cfg(&cfg)
			}
			js, nc, stop := startJS(b, cfg, v.tcp)
			defer stop()
			var n atomic.Int64
			var failed atomic.Int64
			b.SetParallelism(8)
			b.ResetTimer()
			c0 := cpuTime()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					id := fmt.Sprintf("01JDV5Q0X4T8K2M9%010d", i)
					subj := "gust.async.noop"
					if v.unique {
						subj += "." + id
					}
					m := nats.NewMsg(subj)
					if v.inHeader {
						m.Header.Set("Gust-Event", meta)
						m.Data = []byte("x")
					} else {
						m.Data = append([]byte(strconv.Itoa(len(meta))+"\n"+meta), 'x')
					}
					if v.request {
						r, err := nc.RequestMsg(m, 10*time.Second)
						if err != nil || len(r.Data) == 0 || r.Data[2] != 's' {
							failed.Add(1)
						}
						continue
					}
					f, err := js.PublishMsgAsync(m, jetstream.WithStallWait(10*time.Second))
					if err != nil {
						failed.Add(1)
						continue
					}
					select {
					case <-f.Ok():
					case <-f.Err():
						failed.Add(1)
					}
				}
			})
			b.StopTimer()
			if failed.Load() > 0 {
				b.Fatalf("%d failed", failed.Load())
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			b.ReportMetric(float64((cpuTime()-c0).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}
