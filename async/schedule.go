package async

import (
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // time zones must resolve on hosts without /usr/share/zoneinfo: gust is one binary

	"github.com/robfig/cron/v3"

	"github.com/gustfaas/gust"
)

// schedule yields the tick after t, or the zero time if there is none.
type schedule interface {
	Next(t time.Time) time.Time
}

// every ticks at the multiples of d since the Unix epoch. robfig/cron's
// @every counts from when it was started instead, so two nodes started at
// different times would tick at different instants and a tick could not be
// deduplicated between them.
type every struct{ d time.Duration }

func (e every) Next(t time.Time) time.Time {
	n := t.UnixNano() / int64(e.d)
	return time.Unix(0, (n+1)*int64(e.d)).In(t.Location())
}

// zoned evaluates a cron expression in a time zone.
type zoned struct {
	s   cron.Schedule
	loc *time.Location
}

func (z zoned) Next(t time.Time) time.Time { return z.s.Next(t.In(z.loc)) }

// minEvery is the shortest @every period.
const minEvery = time.Second

// parseSchedule parses a trigger's cron expression: five fields
// ("*/5 * * * *"), a descriptor ("@hourly", "@daily") or "@every DUR",
// evaluated in the IANA zone tz (UTC if empty). Errors: EINVALID.
func parseSchedule(expr, tz string) (schedule, error) {
	loc := time.UTC
	if tz != "" {
		l, err := time.LoadLocation(tz)
		if err != nil {
			return nil, gust.Errorf(gust.EINVALID, "invalid timezone %q: want an IANA name such as Europe/Paris", tz)
		}
		loc = l
	}
	expr = strings.TrimSpace(expr)
	if rest, ok := strings.CutPrefix(expr, "@every "); ok {
		d, err := time.ParseDuration(strings.TrimSpace(rest))
		if err != nil || d < minEvery {
			return nil, gust.Errorf(gust.EINVALID, "invalid cron %q: @every wants a duration of at least %s, such as @every 30s", expr, minEvery)
		}
		return every{d}, nil
	}
	if strings.HasPrefix(expr, "TZ=") || strings.HasPrefix(expr, "CRON_TZ=") {
		return nil, gust.Errorf(gust.EINVALID, "invalid cron %q: set the trigger's timezone field instead of a TZ= prefix", expr)
	}
	s, err := cron.ParseStandard(expr)
	if err != nil {
		return nil, gust.Errorf(gust.EINVALID, "invalid cron %q: %v (want five fields such as \"*/5 * * * *\", @hourly or @every 30s)", expr, err)
	}
	return zoned{s: s, loc: loc}, nil
}

// latestTick returns the last tick of s in (from, to], or the zero time.
// The walk is bounded: a schedule that ticks more than max times in the
// window only looks at the first max ticks' worth of it from the end.
func latestTick(s schedule, from, to time.Time) time.Time {
	const max = 1 << 20
	if e, ok := s.(every); ok {
		t := time.Unix(0, to.UnixNano()/int64(e.d)*int64(e.d))
		if t.After(from) {
			return t
		}
		return time.Time{}
	}
	var last time.Time
	for i, t := 0, s.Next(from); i < max && !t.IsZero() && !t.After(to); i, t = i+1, s.Next(t) {
		last = t
	}
	return last
}

func describe(t gust.Trigger) string {
	switch {
	case t.Cron != "":
		return fmt.Sprintf("cron %q", t.Cron)
	case t.Subject != "":
		return fmt.Sprintf("subject %q", t.Subject)
	case t.Webhook != nil:
		return fmt.Sprintf("webhook %q", t.Webhook.Path)
	default:
		return fmt.Sprintf("stream %q", t.Stream)
	}
}
