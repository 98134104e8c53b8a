package main

import (
	"syscall"
	"time"
)

// sleepUntil waits until t with nanosleep(2). Go's timers wake through the
// network poller, whose timeout is in milliseconds: on this kind of machine
// a 200 µs time.Sleep overslept by about 0.9 ms, nanosleep by about 0.1 ms.
// That matters to an open-loop generator measuring fractions of a
// millisecond. The blocked thread costs nothing while it waits.
func sleepUntil(t time.Time) {
	for range 100 { // bounded: each EINTR retry sleeps what is left
		d := time.Until(t)
		if d <= 0 {
			return
		}
		ts := syscall.NsecToTimespec(int64(d))
		if err := syscall.Nanosleep(&ts, nil); err == nil {
			return
		}
	}
}
