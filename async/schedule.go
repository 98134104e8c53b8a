package async

import (
	"fmt"
	"strconv"
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

// zoned evaluates a cron expression in a time zone, with Vixie cron's rules
// for the hours a daylight-saving change skips or repeats (robfig/cron's
// own Next fires a repeated hour's ticks twice and drops a skipped hour's):
//
//   - A fixed-time job (neither its minute nor its hour field starts with
//     '*') whose time falls in the hour that clocks skip runs once, at the
//     instant of the change: `30 2 * * *` runs at 03:00 on the day clocks
//     spring forward from 02:00 to 03:00.
//   - A fixed-time job runs once in the hour that clocks repeat: `30 1 * *
//     *` runs at the first 01:30, not again an hour later.
//   - Other jobs (`*/15 * * * *`, `0 * * * *`) run by elapsed time: every
//     real quarter or hour, through both copies of a repeated hour, with
//     nothing made up for a skipped one.
type zoned struct {
	s     cron.Schedule
	spec  *cron.SpecSchedule // s, or nil if it is not a SpecSchedule
	fixed bool
	loc   *time.Location
}

func (z zoned) Next(t time.Time) time.Time {
	t = t.In(z.loc)
	if !z.fixed || z.spec == nil {
		return z.s.Next(t)
	}
	// Each pass skips one repeated tick; a repeated hour holds at most 60
	// minute ticks, and a repeated stretch is never more than a few hours.
	for range 1000 {
		c := z.s.Next(t)
		if g, ok := z.skippedTick(t, c); ok {
			return g
		}
		if c.IsZero() || !repeatedWall(c) {
			return c
		}
		t = c
	}
	return time.Time{}
}

// skippedTick returns the instant of the first forward change of the zone's
// offset in (t, c] whose skipped wall-clock times hold a tick of the
// schedule (c zero: up to a year after t).
func (z zoned) skippedTick(t, c time.Time) (time.Time, bool) {
	end := c
	if end.IsZero() {
		end = t.AddDate(1, 0, 0)
	}
	// The wall clock as if it were UTC: the schedule matched against it
	// ticks at every wall time it lists, including those a change skips.
	wall := *z.spec
	wall.Location = time.UTC
	for from := t; from.Before(end); {
		g, ok := nextForwardChange(from, end)
		if !ok {
			return time.Time{}, false
		}
		_, before := g.Add(-time.Second).Zone()
		_, after := g.Zone()
		skipFrom := time.Unix(g.Unix()+int64(before), 0).UTC()
		skipTo := skipFrom.Add(time.Duration(after-before) * time.Second)
		if n := wall.Next(skipFrom.Add(-time.Second)); !n.IsZero() && n.Before(skipTo) {
			return g.In(z.loc), true
		}
		from = g
	}
	return time.Time{}, false
}

// changeStep is how far apart offsets are sampled looking for a change:
// zones never change twice within it.
const changeStep = 6 * time.Hour

// nextForwardChange returns the first instant in (from, to] at which the
// offset of from's zone increases (clocks spring forward), to the second.
func nextForwardChange(from, to time.Time) (time.Time, bool) {
	_, off := from.Zone()
	for lo := from; lo.Before(to); {
		hi := lo.Add(changeStep)
		if hi.After(to) {
			hi = to
		}
		_, hiOff := hi.Zone()
		if hiOff == off {
			lo = hi
			continue
		}
		// The change is in (lo, hi]: narrow it down to the second.
		a, b := lo, hi
		for b.Sub(a) > time.Second {
			m := a.Add(b.Sub(a) / 2).Truncate(time.Second)
			if !m.After(a) {
				m = a.Add(time.Second)
			}
			if _, o := m.Zone(); o == off {
				a = m
			} else {
				b = m
			}
		}
		if hiOff > off {
			return b, true
		}
		off, lo = hiOff, hi
	}
	return time.Time{}, false
}

// repeatedWall reports whether c's wall-clock time occurred once already,
// before clocks were set back.
func repeatedWall(c time.Time) bool {
	_, off := c.Zone()
	for back := 15 * time.Minute; back <= 3*time.Hour; back += 15 * time.Minute {
		_, o := c.Add(-back).Zone()
		if o > off {
			d := time.Duration(o-off) * time.Second
			_, oe := c.Add(-d).Zone()
			return oe == o
		}
		if o != off {
			return false
		}
	}
	return false
}

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
	std, err := sundaySeven(expr)
	if err != nil {
		return nil, err
	}
	s, err := cron.ParseStandard(std)
	if err != nil {
		return nil, gust.Errorf(gust.EINVALID, "invalid cron %q: %v (want five fields such as \"*/5 * * * *\", @hourly or @every 30s)", expr, err)
	}
	// robfig/cron looks five years ahead, which holds a 29 February: a
	// schedule with no tick there has none at all.
	if s.Next(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero() {
		return nil, gust.Errorf(gust.EINVALID, "cron %q never fires: no date has its day of the month in its months (such as 31 February)", expr)
	}
	z := zoned{s: s, loc: loc, fixed: fixedTime(std)}
	z.spec, _ = s.(*cron.SpecSchedule)
	return z, nil
}

// fixedTime reports whether expr is a fixed-time job in Vixie cron's sense
// (see zoned): neither its minute nor its hour field starts with '*'.
func fixedTime(expr string) bool {
	f := strings.Fields(expr)
	if len(f) == 1 {
		return f[0] != "@hourly"
	}
	return len(f) == 5 && !strings.HasPrefix(f[0], "*") && !strings.HasPrefix(f[1], "*")
}

// sundaySeven rewrites the day-of-week field of a five-field expression so
// that 7 means Sunday, as in Vixie cron and crontab(5) (robfig/cron knows
// only 0): "0 0 * * 7" is "0 0 * * 0", "0 0 * * 5-7" is "0 0 * * 5,6,0".
func sundaySeven(expr string) (string, error) {
	f := strings.Fields(expr)
	if len(f) != 5 {
		return expr, nil
	}
	items := strings.Split(f[4], ",")
	changed := false
	for i, item := range items {
		rng, stepText, stepped := strings.Cut(item, "/")
		lo, hi, isRange := strings.Cut(rng, "-")
		a, aerr := strconv.Atoi(lo)
		if aerr != nil {
			continue // "*", a name: robfig/cron reads those
		}
		b := a
		if isRange {
			var err error
			if b, err = strconv.Atoi(hi); err != nil {
				continue
			}
		} else if stepped {
			b = 7 // "a/s" is a through the end of the week
		}
		if a != 7 && b != 7 {
			continue
		}
		step := 1
		if stepped {
			s, err := strconv.Atoi(stepText)
			if err != nil || s <= 0 {
				return "", gust.Errorf(gust.EINVALID, "invalid cron %q: bad step in day of week %q", expr, item)
			}
			step = s
		}
		if a < 0 || a > b {
			return "", gust.Errorf(gust.EINVALID, "invalid cron %q: bad day-of-week range %q", expr, item)
		}
		var days []string
		for d := a; d <= b; d += step {
			days = append(days, strconv.Itoa(d%7))
		}
		items[i], changed = strings.Join(days, ","), true
	}
	if !changed {
		return expr, nil
	}
	f[4] = strings.Join(items, ",")
	return strings.Join(f, " "), nil
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
