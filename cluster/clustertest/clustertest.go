// Package clustertest starts a NATS JetStream cluster on 127.0.0.1 for
// tests, of embedded nats-servers (Start) or of nats-server processes
// (StartProcs): routes between them on random ports, a file store per server
// in the test's temporary directory, and a way to stop and restart one.
//
// It is for tests only and must not be imported by gust's own code.
package clustertest

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NATS is a running cluster.
type NATS struct {
	Servers []*server.Server
	opts    []*server.Options
}

// URL is the client URL of server i.

// readyWait bounds a server's start. Generous: under -race on a busy
// 2-core machine a clustered server has taken over 10 s to accept clients.
const readyWait = 60 * time.Second

func (c *NATS) URL(i int) string { return c.Servers[i].ClientURL() }

// URLs is every server's client URL, comma-separated, as `--nats` takes it.
func (c *NATS) URLs() string {
	s := ""
	for i := range c.Servers {
		if i > 0 {
			s += ","
		}
		s += c.URL(i)
	}
	return s
}

// Start runs n clustered servers with JetStream and returns once the
// JetStream meta group has a leader and every server answers JetStream
// requests. They are shut down when the test ends.
func Start(t testing.TB, n int) *NATS {
	t.Helper()
	c := &NATS{}
	// JetStream in a cluster refuses to start without routes, so every
	// server is given all route ports before any starts.
	ports := make([]int, n)
	var routes []string
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", ports[i]))
	}
	for i := 0; i < n; i++ {
		opts := &server.Options{
			ServerName: fmt.Sprintf("nats-%d", i),
			Host:       "127.0.0.1",
			Port:       server.RANDOM_PORT,
			JetStream:  true,
			StoreDir:   filepath.Join(t.TempDir(), "js"),
			NoSigs:     true,
			NoLog:      true,
			Cluster: server.ClusterOpts{
				Name: "gust-test",
				Host: "127.0.0.1",
				Port: ports[i],
			},
			Routes: server.RoutesFromStr(strings.Join(routes, ",")),
		}
		srv, err := server.NewServer(opts)
		if err != nil {
			t.Fatalf("nats server %d: %v", i, err)
		}
		srv.Start()
		t.Cleanup(func() {
			srv.Shutdown()
			srv.WaitForShutdown()
		})
		if !srv.ReadyForConnections(readyWait) {
			t.Fatalf("nats server %d not ready", i)
		}
		c.Servers = append(c.Servers, srv)
		// The client port is kept so that a restarted server is found
		// again at the URL its clients were given.
		kept := opts.Clone()
		kept.Port = srv.Addr().(*net.TCPAddr).Port
		c.opts = append(c.opts, kept)
	}
	for i := range c.Servers {
		if err := waitJetStream(c.URL(i), n); err != nil {
			t.Fatalf("nats server %d: %v", i, err)
		}
	}
	return c
}

// Stop shuts server i down, as an operator stopping it would: the others
// keep their routes to its port and take it back when it restarts.
func (c *NATS) Stop(i int) {
	c.Servers[i].Shutdown()
	c.Servers[i].WaitForShutdown()
}

// Restart starts server i again on its client port, cluster port and file
// store, and returns once it answers JetStream requests with every server
// in view. It is shut down when the test ends.
func (c *NATS) Restart(t testing.TB, i int) {
	t.Helper()
	opts := c.opts[i].Clone()
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("nats server %d: %v", i, err)
	}
	srv.Start()
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	if !srv.ReadyForConnections(readyWait) {
		t.Fatalf("nats server %d not ready after restart", i)
	}
	c.Servers[i] = srv
	if err := waitJetStream(c.URL(i), len(c.Servers)); err != nil {
		t.Fatalf("nats server %d after restart: %v", i, err)
	}
}

// waitJetStream waits until the server at url answers JetStream account
// info and knows all n servers (routes formed, meta leader elected).
func waitJetStream(url string, n int) error {
	var last error
	for i := 0; i < 400; i++ {
		if i > 0 {
			time.Sleep(50 * time.Millisecond)
		}
		// A server process may not be listening yet.
		nc, err := nats.Connect(url)
		if err != nil {
			last = err
			continue
		}
		err = jetStreamReady(nc, n)
		nc.Close()
		if err == nil {
			return nil
		}
		last = err
	}
	return fmt.Errorf("JetStream not ready with %d servers: %v", n, last)
}

func jetStreamReady(nc *nats.Conn, n int) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := js.AccountInfo(ctx); err != nil {
		return err
	}
	if len(nc.Servers()) < n {
		return fmt.Errorf("%d of %d servers known", len(nc.Servers()), n)
	}
	return nil
}
