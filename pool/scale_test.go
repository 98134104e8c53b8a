package pool

import (
	"slices"
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	idle := func(d time.Duration) InstanceState { return InstanceState{LastUsed: at(d)} }
	busy := func(d time.Duration) InstanceState { return InstanceState{LastUsed: at(d), Busy: true} }
	now := at(10 * time.Minute)
	tests := []struct {
		name      string
		state     State
		spec      Spec
		wantReap  []int
		wantStart int
	}{
		{name: "empty pool, no minimum", spec: Spec{IdleTimeout: time.Minute}},
		{
			name:      "empty pool starts the minimum",
			spec:      Spec{MinInstances: 3, IdleTimeout: time.Minute},
			wantStart: 3,
		},
		{
			name:      "starting instances count toward the minimum",
			state:     State{Instances: []InstanceState{idle(9 * time.Minute)}, Starting: 1},
			spec:      Spec{MinInstances: 3, IdleTimeout: time.Minute},
			wantStart: 1,
		},
		{
			name:  "nothing expired",
			state: State{Instances: []InstanceState{idle(9*time.Minute + 30*time.Second), idle(9 * time.Minute)}},
			spec:  Spec{IdleTimeout: 5 * time.Minute},
		},
		{
			name:     "expired at exactly the idle timeout",
			state:    State{Instances: []InstanceState{idle(5 * time.Minute)}},
			spec:     Spec{IdleTimeout: 5 * time.Minute},
			wantReap: []int{0},
		},
		{
			name:     "scale to zero reaps least recently used first",
			state:    State{Instances: []InstanceState{idle(3 * time.Minute), idle(1 * time.Minute), idle(2 * time.Minute)}},
			spec:     Spec{IdleTimeout: time.Minute},
			wantReap: []int{1, 2, 0},
		},
		{
			name:  "busy instances are never reaped",
			state: State{Instances: []InstanceState{busy(0), idle(0), busy(time.Minute)}},
			spec:  Spec{IdleTimeout: time.Minute},
			// only the idle one
			wantReap: []int{1},
		},
		{
			name:     "minimum keeps the most recently used",
			state:    State{Instances: []InstanceState{idle(1 * time.Minute), idle(3 * time.Minute), idle(2 * time.Minute)}},
			spec:     Spec{MinInstances: 1, IdleTimeout: time.Minute},
			wantReap: []int{0, 2},
		},
		{
			name:  "busy instances count toward the minimum",
			state: State{Instances: []InstanceState{busy(0), idle(0), idle(time.Minute)}},
			spec:  Spec{MinInstances: 2, IdleTimeout: time.Minute},
			// three live, two kept: one to reap, the least recently used idle
			wantReap: []int{1},
		},
		{
			name:  "at the minimum nothing is reaped",
			state: State{Instances: []InstanceState{idle(0), idle(0)}},
			spec:  Spec{MinInstances: 2, IdleTimeout: time.Minute},
		},
		{
			name:     "starting instances do not protect live ones",
			state:    State{Instances: []InstanceState{idle(0), idle(time.Minute)}, Starting: 1},
			spec:     Spec{MinInstances: 1, IdleTimeout: time.Minute},
			wantReap: []int{0},
		},
		{
			name:      "below the minimum starts the rest and reaps nothing",
			state:     State{Instances: []InstanceState{idle(0)}},
			spec:      Spec{MinInstances: 3, IdleTimeout: time.Minute},
			wantStart: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Decide(now, tt.state, tt.spec)
			if !slices.Equal(got.Reap, tt.wantReap) {
				t.Errorf("Reap = %v, want %v", got.Reap, tt.wantReap)
			}
			if got.Start != tt.wantStart {
				t.Errorf("Start = %d, want %d", got.Start, tt.wantStart)
			}
		})
	}
}

func TestAdmit(t *testing.T) {
	tests := []struct {
		name string
		load load
		want admission
	}{
		{"closed wins over everything", load{Closed: true, Available: 3, MaxConcurrency: 10, CanWait: true}, admitClosed},
		{"warm instance", load{Available: 1, InFlight: 5, MaxConcurrency: 10}, admitIdle},
		{"free slot on a shared instance at max queues", load{Available: 1, InFlight: 10, MaxConcurrency: 10, CanWait: true}, admitQueue},
		{"free slot on a shared instance at max without a queue", load{Available: 1, InFlight: 10, MaxConcurrency: 10}, admitThrottle},
		{"cold start below max", load{InFlight: 9, MaxConcurrency: 10}, admitStart},
		{"queue at max", load{InFlight: 10, MaxConcurrency: 10, CanWait: true}, admitQueue},
		{"throttle at max without a queue", load{InFlight: 10, MaxConcurrency: 10}, admitThrottle},
		{"waiters ahead keep their turn", load{Available: 1, InFlight: 1, Waiting: 2, MaxConcurrency: 10, CanWait: true}, admitQueue},
		{"waiters ahead and no queue", load{Waiting: 1, MaxConcurrency: 10}, admitThrottle},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := admit(tt.load); got != tt.want {
				t.Errorf("admit(%+v) = %v, want %v", tt.load, got, tt.want)
			}
		})
	}
}

func TestTickInterval(t *testing.T) {
	tests := []struct {
		idle, want time.Duration
	}{
		{5 * time.Minute, time.Second},
		{2 * time.Second, 500 * time.Millisecond},
		{20 * time.Millisecond, 10 * time.Millisecond},
		{0, 10 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.idle.String(), func(t *testing.T) {
			if got := tickInterval(tt.idle); got != tt.want {
				t.Errorf("tickInterval(%s) = %s, want %s", tt.idle, got, tt.want)
			}
		})
	}
}
