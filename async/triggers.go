package async

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gustfaas/gust"
)

// Trigger defaults.
const (
	DefaultBatchSize      = 10
	DefaultMaxConcurrency = 1
	DefaultMaxDeliveries  = 5
)

// ValidateSpec checks the triggers of spec: cron expressions and time
// zones parse and fire, subjects and stream names are valid and are not
// gust's own, webhook paths are unique and stripe tolerances within what
// replays are caught for. Whether another function has a webhook path is
// CheckWebhookPaths's to say.
// Errors: EINVALID naming the trigger and the problem.
func ValidateSpec(spec gust.Spec) error {
	hooks := map[string]int{}
	for i, t := range spec.Triggers {
		err := validateTrigger(t)
		if err == nil {
			err = checkTolerance(t.Webhook)
		}
		if err != nil {
			return gust.Errorf(gust.EINVALID, "trigger %d (%s): %s", i+1, describe(t), gust.ErrorMessage(err))
		}
		if t.Webhook != nil {
			if j, dup := hooks[t.Webhook.Path]; dup {
				return gust.Errorf(gust.EINVALID, "trigger %d (%s): trigger %d has the same path; a path has one webhook", i+1, describe(t), j+1)
			}
			hooks[t.Webhook.Path] = i
		}
	}
	return nil
}

var streamNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)

func validateTrigger(t gust.Trigger) error {
	n := 0
	for _, set := range []bool{t.Cron != "", t.Subject != "", t.Stream != "", t.Webhook != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return gust.Errorf(gust.EINVALID, "set exactly one of cron, subject, stream and webhook")
	}
	if t.Webhook != nil {
		return validateWebhook(t)
	}
	if t.BatchSize < 0 || t.MaxConcurrency < 0 || t.MaxDeliveries < 0 || t.CatchUp < 0 {
		return gust.Errorf(gust.EINVALID, "batchSize, maxConcurrency, maxDeliveries and catchUp must not be negative")
	}
	if t.BatchSize > 1000 || t.MaxConcurrency > 1000 {
		return gust.Errorf(gust.EINVALID, "batchSize and maxConcurrency must be at most 1000")
	}
	switch {
	case t.Cron != "":
		if t.Filter != "" {
			return gust.Errorf(gust.EINVALID, "filter applies to stream triggers only")
		}
		_, err := parseSchedule(t.Cron, t.Timezone)
		return err
	case t.Subject != "":
		if t.Timezone != "" || t.Filter != "" {
			return gust.Errorf(gust.EINVALID, "timezone and filter do not apply to a subject trigger")
		}
		return validateSubject(t.Subject, "subject")
	default:
		if t.Timezone != "" {
			return gust.Errorf(gust.EINVALID, "timezone applies to cron triggers only")
		}
		if !streamNameRE.MatchString(t.Stream) {
			return gust.Errorf(gust.EINVALID, "invalid stream name %q: use letters, digits, '-' and '_'", t.Stream)
		}
		if strings.HasPrefix(strings.ToUpper(t.Stream), "GUST_") || strings.HasPrefix(t.Stream, "KV_") || strings.HasPrefix(t.Stream, "OBJ_") {
			return gust.Errorf(gust.EINVALID, "stream %q belongs to gust or to a KV bucket or object store", t.Stream)
		}
		if t.Filter != "" {
			return validateSubject(t.Filter, "filter")
		}
	}
	return nil
}

// validateSubject accepts a NATS subject (wildcards allowed) that is not in
// gust's own or the system's namespace: a function must not read gust's
// queues or JetStream's API traffic.
func validateSubject(s, what string) error {
	if s == "" || len(s) > 255 || strings.ContainsAny(s, " \t\r\n") {
		return gust.Errorf(gust.EINVALID, "invalid %s %q: want tokens separated by '.', without spaces", what, s)
	}
	toks := strings.Split(s, ".")
	for i, tok := range toks {
		if tok == "" {
			return gust.Errorf(gust.EINVALID, "invalid %s %q: empty token", what, s)
		}
		if tok == ">" && i != len(toks)-1 {
			return gust.Errorf(gust.EINVALID, "invalid %s %q: '>' must be the last token", what, s)
		}
		if strings.ContainsAny(tok, "*>") && len(tok) > 1 {
			return gust.Errorf(gust.EINVALID, "invalid %s %q: a wildcard must be a whole token", what, s)
		}
	}
	if toks[0] == "gust" || toks[0] == "*" || toks[0] == ">" || strings.HasPrefix(toks[0], "$") || strings.HasPrefix(toks[0], "_INBOX") {
		return gust.Errorf(gust.EINVALID, "%s %q is reserved: gust.*, $-subjects and _INBOX are internal, and a leading wildcard would match them", what, s)
	}
	return nil
}

// triggerManager keeps the runners of every function in step with its live
// version's triggers.
type triggerManager struct {
	a       *Async
	changes chan string
	mu      sync.Mutex
	running map[string]*fnRunners
}

// fnRunners are the runners of one function's triggers.
type fnRunners struct {
	sig      string // the triggers they run, as JSON
	triggers []gust.Trigger
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

func newTriggerManager(a *Async) *triggerManager {
	return &triggerManager{a: a, changes: make(chan string, 256), running: map[string]*fnRunners{}}
}

func (m *triggerManager) run(ctx context.Context) {
	resync := make(chan struct{}, 1)
	if n, ok := m.a.cfg.Registry.(Notifier); ok {
		stop := n.OnChange(func(name string) {
			select {
			case m.changes <- name:
			default:
				// Too many changes at once: look at everything instead.
				select {
				case resync <- struct{}{}:
				default:
				}
			}
		})
		defer stop()
	}
	defer m.stopAll()
	m.syncAll(ctx)
	t := time.NewTicker(m.a.cfg.ResyncEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.syncAll(ctx)
		case <-resync:
			m.syncAll(ctx)
		case name := <-m.changes:
			m.sync(ctx, name)
		}
	}
}

func (m *triggerManager) syncAll(ctx context.Context) {
	fns, err := m.a.cfg.Registry.Functions(ctx)
	if err != nil {
		m.a.log.Warn("triggers: listing functions failed", "err", err)
		return
	}
	seen := map[string]bool{}
	for _, fn := range fns {
		seen[fn.Name] = true
		m.sync(ctx, fn.Name)
	}
	m.mu.Lock()
	var gone []string
	for name := range m.running {
		if !seen[name] {
			gone = append(gone, name)
		}
	}
	m.mu.Unlock()
	for _, name := range gone {
		m.replace(ctx, name, nil)
	}
}

// sync starts, replaces or stops the runners of name to match its live
// version.
func (m *triggerManager) sync(ctx context.Context, name string) {
	if ctx.Err() != nil {
		return
	}
	fn, err := m.a.cfg.Registry.Function(ctx, name)
	if gust.ErrorCode(err) == gust.ENOTFOUND || (err == nil && fn.Live == 0) {
		m.replace(ctx, name, nil)
		return
	}
	if err != nil {
		m.a.log.Warn("triggers: reading function failed", "function", name, "err", err)
		return
	}
	v, err := m.a.cfg.Registry.Version(ctx, name, fn.Live)
	if err != nil {
		m.a.log.Warn("triggers: reading live version failed", "function", name, "version", fn.Live, "err", err)
		return
	}
	m.replace(ctx, name, v.Spec.Triggers)
}

// replace swaps name's runners for runners of triggers, unless they already
// run exactly those. A stream trigger that disappears has its durable
// consumer deleted, so its stream stops keeping messages for it.
func (m *triggerManager) replace(ctx context.Context, name string, triggers []gust.Trigger) {
	b, _ := json.Marshal(triggers)
	sig := string(b)
	m.mu.Lock()
	old := m.running[name]
	if old != nil && old.sig == sig {
		m.mu.Unlock()
		return
	}
	delete(m.running, name)
	m.mu.Unlock()
	// Webhooks need no runner: the routes change with the live version.
	for _, path := range m.a.hooks.set(name, triggers) {
		m.a.log.Warn("triggers: webhook path claimed by more than one function; the first by name gets it", "path", path, "function", name)
	}
	if old != nil {
		old.cancel()
		old.wg.Wait()
		keep := map[string]bool{}
		for i, t := range triggers {
			if t.Stream != "" {
				keep[t.Stream+"/"+durableName(name, i)] = true
			}
		}
		for i, t := range old.triggers {
			if t.Stream != "" && !keep[t.Stream+"/"+durableName(name, i)] {
				if err := m.a.js.DeleteConsumer(ctx, t.Stream, durableName(name, i)); err != nil {
					m.a.log.Debug("triggers: deleting consumer", "stream", t.Stream, "consumer", durableName(name, i), "err", err)
				}
				m.a.purgeState(BucketHandbacks, handbacksSubject(t.Stream, durableName(name, i)))
			}
			if t.Cron != "" && triggers == nil {
				_ = m.a.triggers.Delete(ctx, cronKey(name, i))
			}
		}
		m.a.log.Info("triggers stopped", "function", name, "count", len(old.triggers))
	}
	if len(triggers) == 0 || ctx.Err() != nil {
		return
	}
	rctx, cancel := context.WithCancel(ctx)
	r := &fnRunners{sig: sig, triggers: triggers, cancel: cancel}
	for i, t := range triggers {
		if err := validateTrigger(t); err != nil {
			m.a.log.Error("triggers: skipping invalid trigger", "function", name, "trigger", i+1, "err", err)
			continue
		}
		if t.Webhook != nil {
			continue
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			switch {
			case t.Cron != "":
				m.a.runCron(rctx, name, i, t)
			case t.Subject != "":
				m.a.runSubject(rctx, name, i, t)
			default:
				m.a.runStream(rctx, name, i, t)
			}
		}()
	}
	m.mu.Lock()
	m.running[name] = r
	m.mu.Unlock()
	m.a.log.Info("triggers started", "function", name, "count", len(triggers))
}

func (m *triggerManager) stopAll() {
	m.mu.Lock()
	rs := m.running
	m.running = map[string]*fnRunners{}
	m.mu.Unlock()
	for _, r := range rs {
		r.cancel()
	}
	for _, r := range rs {
		r.wg.Wait()
	}
}

// durableName names the durable consumer of a function's stream trigger;
// consumer names may not contain '.'.
func durableName(function string, idx int) string {
	return "gust-" + function + "-" + strconv.Itoa(idx)
}

// queueName is the queue group of a function's subject trigger: one member
// per node, so one node gets each message.
func queueName(function string, idx int) string {
	return fmt.Sprintf("gust-%s-%d", function, idx)
}

func cronKey(function string, idx int) string {
	return fmt.Sprintf("cron.%s.%d", function, idx)
}
