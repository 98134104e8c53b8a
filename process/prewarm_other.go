//go:build !linux

package process

import (
	"context"
	"errors"
)

// Outside Linux there is no sandbox to pre-warm.
type worker struct{}

func (s *sandbox) prewarmSupport() error { return errors.New("it needs Linux") }

func (d *Driver) startWorker(ctx context.Context, runtime string) (*worker, error) {
	return nil, errors.New("no pre-warmed workers outside Linux")
}

func (w *worker) alive() bool { return false }

func (w *worker) discard() {}

func (m *module) fromWorker(ctx context.Context, in *instance, w *worker) (*lambdaInstance, bool, error) {
	return nil, true, errors.New("no pre-warmed workers outside Linux")
}
