package async

import (
	"strings"
	"testing"
	"time"

	"github.com/gustfaas/gust"
)

// Ticks across daylight-saving changes follow Vixie cron: a fixed-time job
// runs once in a repeated hour and at the change for a skipped one; other
// jobs run by elapsed time. Fixed dates, no sleeping.
func TestScheduleDaylightSaving(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		name, expr, tz string
		from           time.Time
		want           []string // the next ticks, UTC
	}{
		{"fall back: a fixed time in the repeated hour runs once", "30 1 * * *", "America/New_York",
			time.Date(2026, 11, 1, 0, 0, 0, 0, ny),
			[]string{"2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z", "2026-11-03T06:30:00Z"}},
		{"spring forward: a fixed time in the skipped hour runs at 03:00", "30 2 * * *", "America/New_York",
			time.Date(2026, 3, 8, 0, 0, 0, 0, ny),
			[]string{"2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z", "2026-03-10T06:30:00Z"}},
		{"spring forward: several skipped ticks run once", "0,30 2 * * *", "America/New_York",
			time.Date(2026, 3, 8, 0, 0, 0, 0, ny),
			[]string{"2026-03-08T07:00:00Z", "2026-03-09T06:00:00Z", "2026-03-09T06:30:00Z"}},
		{"spring forward: from the change itself, the next day", "30 2 * * *", "America/New_York",
			utc("2026-03-08T07:00:00Z"),
			[]string{"2026-03-09T06:30:00Z"}},
		{"spring forward: a fixed time at the change runs once", "0 2,3 * * *", "America/New_York",
			time.Date(2026, 3, 8, 0, 0, 0, 0, ny),
			[]string{"2026-03-08T07:00:00Z", "2026-03-09T06:00:00Z", "2026-03-09T07:00:00Z"}},
		{"hourly runs every real hour through a repeated hour", "0 * * * *", "America/New_York",
			time.Date(2026, 11, 1, 0, 30, 0, 0, ny),
			[]string{"2026-11-01T05:00:00Z", "2026-11-01T06:00:00Z", "2026-11-01T07:00:00Z"}},
		{"hourly makes nothing up for a skipped hour", "0 * * * *", "America/New_York",
			time.Date(2026, 3, 8, 0, 30, 0, 0, ny),
			[]string{"2026-03-08T06:00:00Z", "2026-03-08T07:00:00Z", "2026-03-08T08:00:00Z"}},
		{"a minute wildcard runs through both copies", "*/30 1 * * *", "America/New_York",
			time.Date(2026, 11, 1, 0, 0, 0, 0, ny),
			[]string{"2026-11-01T05:00:00Z", "2026-11-01T05:30:00Z", "2026-11-01T06:00:00Z", "2026-11-01T06:30:00Z", "2026-11-02T06:00:00Z"}},
		{"@daily is fixed at midnight", "@daily", "America/New_York",
			time.Date(2026, 3, 7, 12, 0, 0, 0, ny),
			[]string{"2026-03-08T05:00:00Z", "2026-03-09T04:00:00Z"}},
		{"weekly on the skipped hour, far apart", "30 2 * * 0", "America/New_York",
			time.Date(2026, 3, 1, 3, 0, 0, 0, ny),
			[]string{"2026-03-08T07:00:00Z", "2026-03-15T06:30:00Z"}},
		{"UTC has no changes", "30 1 * * *", "",
			utc("2026-11-01T00:00:00Z"),
			[]string{"2026-11-01T01:30:00Z", "2026-11-02T01:30:00Z"}},
		{"Lord Howe repeats half an hour", "45 1 * * *", "Australia/Lord_Howe",
			utc("2026-04-04T12:00:00Z"),
			[]string{"2026-04-04T14:45:00Z", "2026-04-05T15:15:00Z"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := parseSchedule(tc.expr, tc.tz)
			if err != nil {
				t.Fatal(err)
			}
			at := tc.from
			for i, w := range tc.want {
				at = s.Next(at)
				if got := at.UTC().Format(time.RFC3339); got != w {
					t.Fatalf("tick %d after %s = %s (%s), want %s", i+1, tc.from, got, at, w)
				}
			}
		})
	}
}

// latestTick agrees with Next across a change: the catch-up of a node that
// was down over the repeated hour fires the first 01:30, once.
func TestLatestTickDaylightSaving(t *testing.T) {
	s, err := parseSchedule("30 1 * * *", "America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	from := time.Date(2026, 11, 1, 5, 0, 0, 0, time.UTC)
	to := time.Date(2026, 11, 1, 7, 0, 0, 0, time.UTC)
	if got := latestTick(s, from, to).UTC(); !got.Equal(time.Date(2026, 11, 1, 5, 30, 0, 0, time.UTC)) {
		t.Fatalf("latest tick = %s, want 05:30Z (the second 01:30 is no tick)", got)
	}
}

// Sunday may be written 7, as crontab(5) allows.
func TestCronSundaySeven(t *testing.T) {
	sunday := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC) // a Sunday
	for _, tc := range []struct {
		expr string
		want []time.Time
	}{
		{"0 0 * * 7", []time.Time{sunday, sunday.AddDate(0, 0, 7)}},
		{"0 0 * * 6-7", []time.Time{sunday, sunday.AddDate(0, 0, 6), sunday.AddDate(0, 0, 7)}},
		{"0 0 * * 5-7/2", []time.Time{sunday, sunday.AddDate(0, 0, 5)}},
		{"0 0 * * 1,7", []time.Time{sunday, sunday.AddDate(0, 0, 1), sunday.AddDate(0, 0, 7)}},
		{"0 0 * * 0", []time.Time{sunday, sunday.AddDate(0, 0, 7)}},
	} {
		s, err := parseSchedule(tc.expr, "")
		if err != nil {
			t.Fatalf("%q: %v", tc.expr, err)
		}
		at := sunday.Add(-time.Minute)
		for _, w := range tc.want {
			if at = s.Next(at); !at.Equal(w) {
				t.Fatalf("%q: tick %s, want %s", tc.expr, at, w)
			}
		}
	}
	for _, bad := range []string{"0 0 * * 8", "0 0 * * 7-1", "0 0 * * 5-7/0"} {
		if _, err := parseSchedule(bad, ""); gust.ErrorCode(err) != gust.EINVALID {
			t.Fatalf("%q: err %v, want EINVALID", bad, err)
		}
	}
}

// A cron expression that never fires is refused at deploy, by name.
func TestCronNeverFiresRefused(t *testing.T) {
	for _, expr := range []string{"0 0 31 2 *", "0 0 30 2 *", "0 0 31 4,6,9,11 *"} {
		err := ValidateSpec(gust.Spec{Triggers: []gust.Trigger{{Cron: expr}}})
		if gust.ErrorCode(err) != gust.EINVALID || !strings.Contains(err.Error(), expr) || !strings.Contains(err.Error(), "never fires") {
			t.Fatalf("%q: err %v, want EINVALID naming it as never firing", expr, err)
		}
	}
	// Rare is not never: 29 February, and 31 February on Mondays.
	for _, expr := range []string{"0 0 29 2 *", "0 0 31 2 1"} {
		if err := ValidateSpec(gust.Spec{Triggers: []gust.Trigger{{Cron: expr}}}); err != nil {
			t.Fatalf("%q: %v", expr, err)
		}
	}
}
