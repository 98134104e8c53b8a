package abi

import "runtime"

// restoreHooks run, in registration order, in every instance the host
// starts from a pre-initialized snapshot instead of running init.
var restoreHooks []func()

// OnRestore registers f to run in an instance restored from a snapshot,
// before its first request. Call it from init.
func OnRestore(f func()) { restoreHooks = append(restoreHooks, f) }

// RunRestoreHooks runs the hooks OnRestore registered.
func RunRestoreHooks() {
	for _, f := range restoreHooks {
		f()
	}
}

// Reasons SnapshotCheck gives for refusing a snapshot. The host maps them
// to text for its log; 0 means the instance may be snapshotted.
const (
	SnapshotOK         = 0
	SnapshotGoroutines = 1 // init left goroutines running
)

// SnapshotCheck tells the host whether the instance's state after init may
// be captured and cloned. Goroutines that init started would be cloned
// mid-flight into every instance, each resuming work it did not start, so
// they veto the snapshot. baseline is the goroutine count of an instance
// whose init started none (the goroutine running the export).
func SnapshotCheck(baseline int) uint32 {
	settle()
	if runtime.NumGoroutine() > baseline {
		return SnapshotGoroutines
	}
	return SnapshotOK
}

// settle finishes the work init left to the runtime's background
// goroutines (sweeping the heap init built, chiefly), which would
// otherwise run at the first request of every instance restored from the
// snapshot, and collects init's garbage so a restored heap starts compact.
func settle() {
	runtime.GC()
	for range 4 {
		runtime.Gosched()
	}
}
