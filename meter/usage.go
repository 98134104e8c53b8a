package meter

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gustfaas/gust"
)

// Counters are the metered quantities of an hour or a total. Invocations
// counts invocations that ran (throttled ones did not, and are billed
// nothing); Errors counts those that ended in error, timeout or oom.
type Counters struct {
	Invocations int64   `json:"invocations"`
	Errors      int64   `json:"errors"`
	Throttles   int64   `json:"throttles"`
	ColdStarts  int64   `json:"coldStarts"`
	BilledMs    int64   `json:"billedMs"`
	GBSeconds   float64 `json:"gbSeconds"`
	DurationUs  int64   `json:"durationUs"`

	mbMs int64
}

func (c *Counters) addAggregate(a *aggregate) {
	c.Invocations += a.Invocations
	c.Errors += a.Errors
	c.Throttles += a.Throttles
	c.ColdStarts += a.ColdStarts
	c.BilledMs += a.BilledMs
	c.DurationUs += a.DurationUs
	c.mbMs += a.MBMs
	c.GBSeconds = gbSeconds(c.mbMs)
}

// Row is one function's usage in one UTC hour.
type Row struct {
	Function string    `json:"function"`
	Hour     time.Time `json:"hour"`
	Counters
}

// Total is usage summed over a report's hours, with its estimated cost.
type Total struct {
	Function string `json:"function,omitempty"` // "" for the grand total
	Counters
	EstimatedCost float64 `json:"estimatedCost"`
}

// Report answers a usage query: the hourly rows of the hours that overlap
// [Since, Until), totals per function and overall, and the prices the
// estimate used.
type Report struct {
	Since                   time.Time `json:"since"`
	Until                   time.Time `json:"until"`
	PricePerGBSecond        float64   `json:"pricePerGBSecond"`
	PricePerMillionRequests float64   `json:"pricePerMillionRequests"`
	Rows                    []Row     `json:"rows"`      // by function, then hour
	Functions               []Total   `json:"functions"` // by function
	Total                   Total     `json:"total"`
}

// Cost estimates the price of c: GB-seconds plus requests. Throttled
// invocations are not requests that ran, so they cost nothing.
func (m *Meter) Cost(c Counters) float64 {
	return c.GBSeconds*m.cfg.PricePerGBSecond + float64(c.Invocations)/1e6*m.cfg.PricePerMillionRequests
}

// Usage reports the hourly aggregates of function ("" for all) for the
// hours that overlap [since, until). A zero until means now; a zero since
// means 24 hours before until. Aggregates lag records by up to the flush
// interval; call Flush first for read-your-writes. Errors: EINVALID.
func (m *Meter) Usage(ctx context.Context, function string, since, until time.Time) (*Report, error) {
	if function != "" {
		if err := gust.ValidateName(function); err != nil {
			return nil, err
		}
	}
	if until.IsZero() {
		until = time.Now()
	}
	if since.IsZero() {
		since = until.Add(-24 * time.Hour)
	}
	since, until = since.UTC(), until.UTC()
	if !since.Before(until) {
		return nil, gust.Errorf(gust.EINVALID, "invalid range: since %s is not before until %s", since.Format(time.RFC3339), until.Format(time.RFC3339))
	}
	pattern := ">"
	if function != "" {
		pattern = function + ".*"
	}
	w, err := m.kv.Watch(ctx, pattern, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("read usage aggregates: %w", err)
	}
	defer func() { _ = w.Stop() }()

	first := since.Truncate(time.Hour)
	rep := &Report{
		Since:                   since,
		Until:                   until,
		PricePerGBSecond:        m.cfg.PricePerGBSecond,
		PricePerMillionRequests: m.cfg.PricePerMillionRequests,
		Rows:                    []Row{},
		Functions:               []Total{},
	}
	totals := map[string]*Total{}
	// The watch sends every current value, then nil; bounded by the
	// number of keys in the bucket.
	for {
		var entry jetstream.KeyValueEntry
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("read usage aggregates: watch ended early")
			}
			entry = e
		case <-ctx.Done():
			return nil, fmt.Errorf("read usage aggregates: %w", ctx.Err())
		}
		if entry == nil {
			break
		}
		key := entry.Key()
		dot := strings.LastIndexByte(key, '.')
		if dot < 0 {
			continue
		}
		hour, err := time.Parse(hourKeyFormat, key[dot+1:])
		if err != nil || hour.Before(first) || !hour.Before(until) {
			continue
		}
		var a aggregate
		if err := json.Unmarshal(entry.Value(), &a); err != nil {
			m.log.Warn("malformed usage aggregate skipped", "key", key, "err", err)
			continue
		}
		row := Row{Function: a.Function, Hour: hour}
		row.addAggregate(&a)
		rep.Rows = append(rep.Rows, row)
		t := totals[a.Function]
		if t == nil {
			t = &Total{Function: a.Function}
			totals[a.Function] = t
		}
		t.addAggregate(&a)
		rep.Total.addAggregate(&a)
	}
	sort.Slice(rep.Rows, func(i, j int) bool {
		if rep.Rows[i].Function != rep.Rows[j].Function {
			return rep.Rows[i].Function < rep.Rows[j].Function
		}
		return rep.Rows[i].Hour.Before(rep.Rows[j].Hour)
	})
	for _, t := range totals {
		t.EstimatedCost = m.Cost(t.Counters)
		rep.Functions = append(rep.Functions, *t)
	}
	sort.Slice(rep.Functions, func(i, j int) bool { return rep.Functions[i].Function < rep.Functions[j].Function })
	rep.Total.EstimatedCost = m.Cost(rep.Total.Counters)
	return rep, nil
}
