package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// A duration prints under a label without its unit suffix (the value
// carries its own unit), and money prints as dollars in fixed decimals,
// never in e-notation: as lines and as table columns.
func TestUsageDurationsAndMoney(t *testing.T) {
	raw := json.RawMessage(`{"pricePerGBSecond":0.0000166667,"pricePerMillionRequests":0.2,` +
		`"functions":[{"function":"hello","durationUs":920368,"estimatedCost":4.020833375e-7}],` +
		`"total":{"durationUs":920368,"billedMs":921,"estimatedCost":4.020833375e-7,"other":1e-7}}`)
	var b bytes.Buffer
	if err := renderDocument(&b, raw); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		got = append(got, strings.Join(strings.Fields(l), " "))
	}
	want := []string{
		"pricePerGBSecond: $0.0000166667",
		"pricePerMillionRequests: $0.20",
		"total.duration: 920.368ms",
		"total.billedMs: 921",
		"total.estimatedCost: $0.000000402083",
		"total.other: 1e-7", // not money: as the server sent it
		"",
		"functions:",
		"FUNCTION DURATION ESTIMATED COST",
		"hello 920.368ms $0.000000402083",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestDollars(t *testing.T) {
	for _, tc := range []struct {
		f    float64
		want string
	}{
		{0, "$0.00"},
		{0.01, "$0.01"},
		{0.2, "$0.20"},
		{0.1 + 0.2, "$0.30"},
		{12.5, "$12.50"},
		{1234.5678, "$1234.57"},
		{0.0000166667, "$0.0000166667"},
		{4.020833375e-7, "$0.000000402083"},
		{-0.5, "-$0.50"},
	} {
		if got := dollars(tc.f); got != tc.want {
			t.Errorf("dollars(%v) = %q, want %q", tc.f, got, tc.want)
		}
	}
}

// The price flags of serve show their defaults in fixed decimals and take
// a leading "$".
func TestPriceFlag(t *testing.T) {
	cmd := newServeCmd()
	f := cmd.Flags().Lookup("price-gb-second")
	if f.DefValue != "$0.0000166667" {
		t.Fatalf("default shows as %q", f.DefValue)
	}
	if err := cmd.Flags().Set("price-million-requests", "$0.25"); err != nil {
		t.Fatal(err)
	}
	if got := cmd.Flags().Lookup("price-million-requests").Value.String(); got != "$0.25" {
		t.Fatalf("after set: %q", got)
	}
	if err := cmd.Flags().Set("price-gb-second", "-1"); err == nil {
		t.Fatal("a negative price was accepted")
	}
}
