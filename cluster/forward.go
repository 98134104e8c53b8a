package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gustfaas/gust"
)

// ForwardSlack is added to a function's timeout to bound how long a sender
// waits for a forwarded call: the receiving node may first have to fetch
// and compile the code.
const ForwardSlack = 10 * time.Second

// metaHeader is the NATS header that carries a forwarded call's request or
// response metadata as JSON; the message data is the body, unencoded.
const metaHeader = "Gust-Meta"

// forwardRequest is a sync invocation sent to another node.
type forwardRequest struct {
	ID       string      `json:"id"`
	Function string      `json:"function"`
	Version  int         `json:"version"`
	Method   string      `json:"method"`
	Path     string      `json:"path"`
	RawPath  string      `json:"rawPath,omitempty"`
	Query    string      `json:"query,omitempty"`
	Header   http.Header `json:"header,omitempty"`
	Trigger  string      `json:"trigger,omitempty"`
	// RemainingMs is the sender's deadline as a duration, not an instant,
	// so the two machines' clocks need not agree.
	RemainingMs int64  `json:"remainingMs"`
	From        string `json:"from"`
}

// forwardResponse is the answer. Refused means the call did not run (the
// node was full), so the sender may try another node; any other error ran
// the call, or may have, and is final.
type forwardResponse struct {
	Status  int         `json:"status,omitempty"`
	Header  http.Header `json:"header,omitempty"`
	Code    string      `json:"code,omitempty"`
	Message string      `json:"message,omitempty"`
	// Fields are the error's own fields for its JSON body (a Lambda
	// handler's errorMessage, errorType and stackTrace; see ErrorFields),
	// as JSON values so that they arrive exactly as the function gave them.
	Fields  map[string]json.RawMessage `json:"fields,omitempty"`
	Refused bool                       `json:"refused,omitempty"`
}

// fielder is an error with fields of its own for its JSON body beside
// "error" and "code" (process.FunctionError is one; httperr writes them).
type fielder interface{ ErrorFields() map[string]any }

// errorFields returns the fields of the first fielder in err's chain,
// each encoded as JSON, or nil.
func errorFields(err error) map[string]json.RawMessage {
	var f fielder
	if !errors.As(err, &f) {
		return nil
	}
	fields := f.ErrorFields()
	if len(fields) == 0 {
		return nil
	}
	out := make(map[string]json.RawMessage, len(fields))
	for k, v := range fields {
		b, err := json.Marshal(v)
		if err != nil {
			continue // a field that cannot be encoded is left out, as httperr would fail on it
		}
		out[k] = b
	}
	return out
}

// remoteError is the cause of an error that another node's call ended
// with, when that error had fields of its own: it gives them back, so the
// caller here gets the body it would have got from the node that ran it.
type remoteError struct {
	node   string
	fields map[string]json.RawMessage
}

func (e *remoteError) Error() string { return "reported by node " + e.node }

// ErrorFields returns the fields as the other node encoded them.
func (e *remoteError) ErrorFields() map[string]any {
	out := make(map[string]any, len(e.fields))
	for k, v := range e.fields {
		out[k] = v
	}
	return out
}

// Resolve implements the gateway's Invoker.
func (c *Cluster) Resolve(ctx context.Context, name, ref string) (*gust.Version, error) {
	return c.cfg.Local.Resolve(ctx, name, ref)
}

// Invoke implements the gateway's Invoker: it runs req here if this node
// is under its share of v's max concurrency and its memory budget, else on
// the least loaded node with room, else here once a place frees up within
// v's queue timeout, else it answers ETHROTTLED.
func (c *Cluster) Invoke(ctx context.Context, v *gust.Version, req *gust.Request) (*gust.Response, error) {
	k := keyOf(v.Function, v.Number)
	peers := c.peers()
	if !c.isRunning() || len(peers) == 0 {
		// A lone node: its pool alone limits and queues. The gate still
		// counts, so a node that joins later sees this one's load.
		c.gate.tryAcquire(k, 0)
		defer c.gate.release(k)
		return c.cfg.Local.Invoke(ctx, v, req)
	}
	if req.ID == "" {
		req.ID = newInvocationID()
	}
	spec := v.Spec.WithDefaults()
	share := Share(spec.MaxConcurrency, len(peers)+1)
	if c.gate.tryAcquire(k, share) {
		resp, err := c.runLocal(ctx, k, v, req)
		if code := gust.ErrorCode(err); code != gust.ECAPACITY && code != gust.ETHROTTLED || ctx.Err() != nil {
			// A caller that has gone (its context ended while the call
			// queued here) is not run on another node for nobody.
			return resp, err
		}
	}
	resp, err, handled := c.forward(ctx, v, req, peers, share)
	if handled {
		return resp, err
	}
	tooLarge := err
	shareNow := func() int { return Share(spec.MaxConcurrency, len(c.peers())+1) }
	if c.gate.acquire(ctx, k, shareNow, spec.QueueTimeout.D()) {
		return c.runLocal(ctx, k, v, req)
	}
	if tooLarge != nil {
		return nil, gust.WrapError(gust.ETHROTTLED, tooLarge, "function %s is at its share of max concurrency %d on this node, and the %s", v.Function, spec.MaxConcurrency, gust.ErrorMessage(tooLarge))
	}
	return nil, gust.Errorf(gust.ETHROTTLED, "function %s is at its max concurrency of %d across %d nodes; retry later", v.Function, spec.MaxConcurrency, len(peers)+1)
}

// runLocal runs req here under a gate place already taken for k.
func (c *Cluster) runLocal(ctx context.Context, k gateKey, v *gust.Version, req *gust.Request) (*gust.Response, error) {
	defer c.gate.release(k)
	return c.cfg.Local.Invoke(ctx, v, req)
}

func (c *Cluster) isRunning() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.running && !c.closed
}

// forward tries peers, those with room and least loaded first. handled is
// false when no peer took the call; err is then non-nil only if the
// request could not be sent at all (over NATS max payload).
func (c *Cluster) forward(ctx context.Context, v *gust.Version, req *gust.Request, peers []Member, share int) (_ *gust.Response, _ error, handled bool) {
	if c.nc.Status() != nats.CONNECTED {
		// While NATS reconnects, nats.go would buffer the request and
		// deliver it later, after this caller got its timeout: a client
		// that retried would then run it twice. Queue here instead.
		return nil, nil, false
	}
	k := keyOf(v.Function, v.Number).String()
	spec := v.Spec.WithDefaults()
	room := func(m Member) bool {
		if m.Busy[k] >= share {
			return false
		}
		free := m.MemoryBudgetMB - m.MemoryUsedMB
		return m.MemoryBudgetMB == 0 || free >= spec.MemoryMB || m.Instances > m.InFlight
	}
	sort.SliceStable(peers, func(i, j int) bool {
		ri, rj := room(peers[i]), room(peers[j])
		if ri != rj {
			return ri
		}
		return peers[i].InFlight < peers[j].InFlight
	})
	wait := spec.Timeout.D() + ForwardSlack
	if dl, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(dl))
	}
	meta, err := json.Marshal(forwardRequest{
		ID: req.ID, Function: v.Function, Version: v.Number, Method: req.Method, Path: req.Path,
		RawPath: req.RawPath, Query: req.Query, Header: req.Header, Trigger: req.Trigger,
		RemainingMs: wait.Milliseconds(), From: c.cfg.ID,
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: encoding a forwarded request: %w", err), true
	}
	if size, limit := int64(len(meta)+len(req.Body)+len(metaHeader)+16), c.nc.MaxPayload(); size > limit {
		return nil, gust.Errorf(gust.ETOOLARGE, "request of %d bytes is over the NATS max payload of %d bytes, so it cannot be forwarded to another node (raise max_payload on the NATS servers)", size, limit), false
	}
	for _, p := range peers {
		msg := &nats.Msg{
			Subject: p.Subject,
			Header:  nats.Header{metaHeader: []string{string(meta)}},
			Data:    req.Body,
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), wait)
		reply, err := c.nc.RequestMsgWithContext(rctx, msg)
		cancel()
		if errors.Is(err, nats.ErrNoResponders) {
			continue // the node is gone; nothing ran there
		}
		if err != nil {
			// It may have run: trying another node could run it twice.
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) {
				return nil, gust.WrapError(gust.ETIMEOUT, err, "function %s forwarded to node %s did not answer within %s", v.Function, p.ID, wait), true
			}
			return nil, gust.WrapError(gust.EUNAVAILABLE, err, "forwarding function %s to node %s", v.Function, p.ID), true
		}
		var fr forwardResponse
		if err := json.Unmarshal([]byte(reply.Header.Get(metaHeader)), &fr); err != nil {
			return nil, fmt.Errorf("cluster: bad answer from node %s: %w", p.ID, err), true
		}
		if fr.Refused {
			continue
		}
		if fr.Code != "" {
			if len(fr.Fields) > 0 {
				return nil, gust.WrapError(fr.Code, &remoteError{node: p.ID, fields: fr.Fields}, "%s", fr.Message), true
			}
			return nil, gust.Errorf(fr.Code, "%s", fr.Message), true
		}
		return &gust.Response{Status: fr.Status, Header: fr.Header, Body: reply.Data}, nil, true
	}
	return nil, nil, false
}

// onForward takes a call forwarded by another node. It runs here or is
// refused; it is never forwarded again.
func (c *Cluster) onForward(msg *nats.Msg) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		c.reply(msg, nil, gust.Errorf(gust.EUNAVAILABLE, "node %s is leaving the cluster", c.cfg.ID), true)
		return
	}
	c.serving.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.serving.Done()
		c.serveForward(msg)
	}()
}

func (c *Cluster) serveForward(msg *nats.Msg) {
	var fr forwardRequest
	if err := json.Unmarshal([]byte(msg.Header.Get(metaHeader)), &fr); err != nil {
		c.reply(msg, nil, gust.WrapError(gust.EINVALID, err, "bad forwarded request"), false)
		return
	}
	wait := time.Duration(fr.RemainingMs) * time.Millisecond
	if wait <= 0 {
		c.reply(msg, nil, gust.Errorf(gust.ETIMEOUT, "forwarded call of %s arrived after its deadline", fr.Function), false)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	v, err := c.cfg.Local.Resolve(ctx, fr.Function, strconv.Itoa(fr.Version))
	if err != nil {
		// Not found may only mean that this node's registry has not seen
		// the deploy yet: the sender may try elsewhere.
		c.reply(msg, nil, err, didNotRun(err))
		return
	}
	k := keyOf(v.Function, v.Number)
	if !c.gate.tryAcquire(k, Share(v.Spec.WithDefaults().MaxConcurrency, len(c.peers())+1)) {
		c.reply(msg, nil, gust.Errorf(gust.ETHROTTLED, "node %s is at its share of %s", c.cfg.ID, k), true)
		return
	}
	req := &gust.Request{
		ID: fr.ID, Method: fr.Method, Path: fr.Path, RawPath: fr.RawPath, Query: fr.Query,
		Header: fr.Header, Body: msg.Data, Trigger: fr.Trigger,
	}
	resp, err := c.runLocal(ctx, k, v, req)
	c.reply(msg, resp, err, didNotRun(err))
}

// didNotRun reports whether an invocation error means the function did not
// start here (no memory, no place, not loaded, not known yet), so that
// another node may run it without running it twice.
func didNotRun(err error) bool {
	switch gust.ErrorCode(err) {
	case gust.ECAPACITY, gust.ETHROTTLED, gust.EUNAVAILABLE, gust.ENOTFOUND:
		return true
	}
	return false
}

func (c *Cluster) reply(msg *nats.Msg, resp *gust.Response, err error, refused bool) {
	var fr forwardResponse
	var body []byte
	if err != nil {
		fr = forwardResponse{Code: gust.ErrorCode(err), Message: gust.ErrorMessage(err), Refused: refused}
		if fr.Code != gust.EINTERNAL {
			// As httperr does: an internal error's details stay here.
			fr.Fields = errorFields(err)
		}
	} else {
		fr = forwardResponse{Status: resp.Status, Header: resp.Header}
		body = resp.Body
	}
	meta, mErr := json.Marshal(fr)
	if mErr == nil && fr.Fields != nil && int64(len(meta)+len(metaHeader)+16) > c.nc.MaxPayload() {
		// A stack trace too long to carry: the error itself still goes.
		fr.Fields = nil
		meta, mErr = json.Marshal(fr)
	}
	if mErr != nil {
		meta = []byte(`{"code":"internal","message":"encoding the answer failed"}`)
		body = nil
	}
	if size, limit := int64(len(meta)+len(body)+len(metaHeader)+16), c.nc.MaxPayload(); size > limit {
		meta, _ = json.Marshal(forwardResponse{
			Code:    gust.ETOOLARGE,
			Message: fmt.Sprintf("the response of %d bytes is over the NATS max payload of %d bytes, so node %s cannot return it to the node that forwarded the call", size, limit, c.cfg.ID),
		})
		body = nil
	}
	out := &nats.Msg{Subject: msg.Reply, Header: nats.Header{metaHeader: []string{string(meta)}}, Data: body}
	if err := msg.RespondMsg(out); err != nil {
		c.log.Warn("answering a forwarded call", "err", err)
	}
}

func newInvocationID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
