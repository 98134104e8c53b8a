package main

import (
	"strings"
	"testing"
)

func TestParseGoBench(t *testing.T) {
	out := `goos: linux
BenchmarkReactorColdStart-2       	     100	  12345678 ns/op	   4325376 idle-mem-bytes/instance	16280772 B/op	   62921 allocs/op
BenchmarkReactorWarm64KiB-2       	     931	    111095 ns/op	 589.91 MB/s	   71797 B/op	      15 allocs/op
BenchmarkLoadCached               	       1	 199818470 ns/op
PASS
`
	got, err := parseGoBench(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("parsed %d benchmarks, want 3: %v", len(got), got)
	}
	if c := got["BenchmarkReactorColdStart"]; c.NsPerOp != 12345678 || c.Metrics["idle-mem-bytes/instance"] != 4325376 {
		t.Errorf("cold start: %+v", c)
	}
	if w := got["BenchmarkReactorWarm64KiB"]; w.Metrics["MB/s"] != 589.91 || w.Metrics["allocs/op"] != 15 {
		t.Errorf("warm 64KiB: %+v", w)
	}
	if l := got["BenchmarkLoadCached"]; l.NsPerOp != 199818470 {
		t.Errorf("load cached: %+v", l)
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{7}, 7},
	} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
