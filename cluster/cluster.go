package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gustfaas/gust"
)

// Subjects every node of a cluster uses.
const (
	// HeartbeatSubject carries every node's Member, as JSON, every interval.
	HeartbeatSubject = "gust.cluster.heartbeat"
	// invokePrefix + node id is the subject a node takes forwarded calls on.
	invokePrefix = "gust.cluster.invoke."
)

// Defaults for Config's zero fields.
const (
	DefaultInterval = time.Second
	DefaultMissed   = 3
)

// InvokeSubject is the prefix of the subject node id takes forwarded
// invocations on (see Member.Subject).
func InvokeSubject(id string) string { return invokePrefix + id }

// Local is what the cluster needs from this node's invoker (invoke.Invoker).
type Local interface {
	Resolve(ctx context.Context, name, ref string) (*gust.Version, error)
	Invoke(ctx context.Context, v *gust.Version, req *gust.Request) (*gust.Response, error)
	Stats() []gust.PoolStats
}

// Config configures a Cluster.
type Config struct {
	// Conn is the node's NATS connection; every node of a cluster must
	// reach the same NATS (cluster).
	Conn *nats.Conn
	// Local runs invocations on this node.
	Local Local
	// ID names the node; it must be unique in the cluster. Default: the
	// host name and 6 random hex digits.
	ID string
	// Version is the gust version the node runs, shown by `gust nodes`.
	Version string
	// Budget returns the node's memory budget and the part in use, in MB;
	// nil: none reported.
	Budget func() (totalMB, usedMB int)
	// Interval between heartbeats. Default DefaultInterval.
	Interval time.Duration
	// Missed is how many intervals without a heartbeat drop a node.
	// Default DefaultMissed.
	Missed int
	// Logger; nil: slog.Default().
	Logger *slog.Logger
	// Now tells the time; nil: time.Now.
	Now func() time.Time
}

// Member is one node as the cluster sees it, as listed by GET /v1/nodes.
type Member struct {
	ID             string    `json:"id"`
	Address        string    `json:"address"`
	Version        string    `json:"version"`
	InFlight       int       `json:"inFlight"`
	Instances      int       `json:"instances"`
	MemoryUsedMB   int       `json:"memoryUsedMB"`
	MemoryBudgetMB int       `json:"memoryBudgetMB"`
	Started        time.Time `json:"started"`
	LastSeen       time.Time `json:"lastSeen"`
	Self           bool      `json:"self,omitempty"`
	// Busy is the calls in flight per function version ("name@3") counted
	// against this node's shares, so a sender can skip a full node.
	Busy map[string]int `json:"busy,omitempty"`
	// Leaving is set on the last heartbeat of a node that is closing.
	Leaving bool `json:"leaving,omitempty"`
	// Subject is where the node takes forwarded calls: its id and a random
	// suffix, so two nodes misconfigured with one id never both run a call.
	Subject string `json:"subject,omitempty"`
}

// Cluster is this node's view of the cluster and its forwarding. It is safe
// for concurrent use.
type Cluster struct {
	cfg     Config
	log     *slog.Logger
	nc      *nats.Conn
	gate    *gate
	started time.Time
	subject string // InvokeSubject(id) and a random suffix

	mu      sync.Mutex
	addr    string
	members map[string]*Member // other nodes, by id
	live    int                // len(members)+1 as of the last change, for logs
	running bool
	hbSub   *nats.Subscription
	invSub  *nats.Subscription

	stop    chan struct{}
	loops   sync.WaitGroup // the heartbeat loop
	serving sync.WaitGroup // forwarded calls being run here
	closed  bool
}

// New returns a Cluster that is not yet part of the cluster: until Start its
// Invoke runs every call here, as a lone node.
func New(cfg Config) (*Cluster, error) {
	if cfg.Conn == nil || cfg.Local == nil {
		return nil, fmt.Errorf("cluster: a NATS connection and a local invoker are required")
	}
	if cfg.ID == "" {
		cfg.ID = newID()
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Missed <= 0 {
		cfg.Missed = DefaultMissed
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	var nonce [4]byte
	_, _ = rand.Read(nonce[:])
	return &Cluster{
		cfg: cfg, log: cfg.Logger, nc: cfg.Conn, gate: newGate(),
		subject: InvokeSubject(cfg.ID) + "." + hex.EncodeToString(nonce[:]),
		started: cfg.Now().UTC(), members: map[string]*Member{}, live: 1,
		stop: make(chan struct{}),
	}, nil
}

func newID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "gust"
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	return host + "-" + hex.EncodeToString(b[:])
}

// ID is this node's id.
func (c *Cluster) ID() string { return c.cfg.ID }

// Start joins the cluster: it listens to heartbeats and to forwarded calls,
// and heartbeats with address (the node's base URL) until Close.
func (c *Cluster) Start(address string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running || c.closed {
		return fmt.Errorf("cluster: Start called twice or after Close")
	}
	c.addr = address
	var err error
	c.hbSub, err = c.nc.Subscribe(HeartbeatSubject, c.onHeartbeat)
	if err != nil {
		return fmt.Errorf("cluster: subscribe to heartbeats: %w", err)
	}
	c.invSub, err = c.nc.Subscribe(c.subject, c.onForward)
	if err != nil {
		_ = c.hbSub.Unsubscribe()
		return fmt.Errorf("cluster: subscribe to forwarded invocations: %w", err)
	}
	// The subscriptions must be known to the server before the first
	// heartbeat, or the answers it prompts from the others could be missed.
	if err := c.nc.Flush(); err != nil {
		_ = c.hbSub.Unsubscribe()
		_ = c.invSub.Unsubscribe()
		return fmt.Errorf("cluster: flush subscriptions: %w", err)
	}
	c.running = true
	c.loops.Add(1)
	go c.heartbeatLoop()
	c.log.Info("joined the cluster", "node", c.cfg.ID, "address", address)
	return nil
}

func (c *Cluster) heartbeatLoop() {
	defer c.loops.Done()
	t := time.NewTicker(c.cfg.Interval)
	defer t.Stop()
	c.publish(false)
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		c.publish(false)
		c.prune()
	}
}

// self is this node's Member, measured now.
func (c *Cluster) self() Member {
	m := Member{
		ID: c.cfg.ID, Version: c.cfg.Version, Started: c.started,
		LastSeen: c.cfg.Now().UTC(), Self: true, Busy: c.gate.snapshot(), Subject: c.subject,
	}
	c.mu.Lock()
	m.Address = c.addr
	c.mu.Unlock()
	for _, s := range c.cfg.Local.Stats() {
		m.InFlight += s.InFlight
		m.Instances += s.Idle + s.Busy
	}
	if c.cfg.Budget != nil {
		m.MemoryBudgetMB, m.MemoryUsedMB = c.cfg.Budget()
	}
	return m
}

func (c *Cluster) publish(leaving bool) {
	m := c.self()
	m.Self = false
	m.Leaving = leaving
	b, err := json.Marshal(m)
	if err != nil {
		c.log.Error("encoding heartbeat", "err", err)
		return
	}
	if err := c.nc.Publish(HeartbeatSubject, b); err != nil {
		c.log.Warn("publishing heartbeat", "err", err)
	}
}

func (c *Cluster) onHeartbeat(msg *nats.Msg) {
	var m Member
	if err := json.Unmarshal(msg.Data, &m); err != nil || m.ID == "" {
		c.log.Warn("ignoring a bad heartbeat", "err", err)
		return
	}
	if m.ID == c.cfg.ID {
		if m.Subject != c.subject {
			c.log.Warn("another node heartbeats with this node's id; give each node its own --node-id", "node", m.ID, "address", m.Address)
		}
		return
	}
	if m.Subject == "" {
		return // not a node that can take forwarded calls
	}
	// The receiver's clock decides staleness, so clock skew between
	// machines cannot keep a dead node listed or drop a live one.
	m.LastSeen = c.cfg.Now().UTC()
	c.mu.Lock()
	_, known := c.members[m.ID]
	if m.Leaving {
		delete(c.members, m.ID)
	} else {
		c.members[m.ID] = &m
	}
	changed := c.noteChangeLocked()
	c.mu.Unlock()
	if changed != 0 {
		c.log.Info("cluster membership changed; shares rebalance", "node", m.ID, "leaving", m.Leaving, "live", changed)
	}
	// A newcomer learns of this node now rather than an interval later.
	if !known && !m.Leaving {
		c.publish(false)
	}
}

// noteChangeLocked returns the new live count if it changed, else 0.
func (c *Cluster) noteChangeLocked() int {
	live := len(c.members) + 1
	if live == c.live {
		return 0
	}
	c.live = live
	return live
}

// prune drops the nodes not heard from for Missed intervals.
func (c *Cluster) prune() {
	cutoff := c.cfg.Now().Add(-time.Duration(c.cfg.Missed) * c.cfg.Interval)
	c.mu.Lock()
	var dropped []string
	for id, m := range c.members {
		if m.LastSeen.Before(cutoff) {
			delete(c.members, id)
			dropped = append(dropped, id)
		}
	}
	live := c.noteChangeLocked()
	c.mu.Unlock()
	if len(dropped) > 0 {
		c.log.Warn("dropped nodes that stopped heartbeating; shares rebalance", "nodes", dropped, "live", live)
	}
}

// Members lists the live nodes, this one included, sorted by id.
func (c *Cluster) Members() []Member {
	c.prune()
	out := []Member{c.self()}
	c.mu.Lock()
	for _, m := range c.members {
		out = append(out, *m)
	}
	c.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Live is how many nodes are live, this one included.
func (c *Cluster) Live() int {
	c.prune()
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.members) + 1
}

// peers returns the other live nodes.
func (c *Cluster) peers() []Member {
	cutoff := c.cfg.Now().Add(-time.Duration(c.cfg.Missed) * c.cfg.Interval)
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Member, 0, len(c.members))
	for _, m := range c.members {
		if !m.LastSeen.Before(cutoff) {
			out = append(out, *m)
		}
	}
	return out
}

// Close leaves the cluster: the others are told at once, forwarded calls
// already running here finish (bounded by ctx), and no new ones are taken.
func (c *Cluster) Close(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	running := c.running
	c.mu.Unlock()
	if !running {
		return nil
	}
	close(c.stop)
	c.loops.Wait()
	_ = c.hbSub.Unsubscribe()
	// Stop taking forwarded calls before saying goodbye, so no sender picks
	// this node after it has left.
	_ = c.invSub.Unsubscribe()
	c.publish(true)
	_ = c.nc.Flush()
	done := make(chan struct{})
	go func() {
		c.serving.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("cluster: forwarded calls still running at close: %w", ctx.Err())
	}
}
