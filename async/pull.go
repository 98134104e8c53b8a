package async

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// fetchWait bounds one pull request: slots freed while it is open are used
// by the next one.
const fetchWait = 2 * time.Second

// pull hands messages of cons to handle, each on its own goroutine, with at
// most slots in flight, until ctx ends. It asks the server only for as many
// messages as there are free slots: a message never waits in a local buffer
// while its AckWait runs out (which would make the server hand it to
// another worker while this one still holds it). wg tracks the handlers.
func (a *Async) pull(ctx context.Context, cons jetstream.Consumer, slots, maxBatch int, wg *sync.WaitGroup, what string, handle func(jetstream.Msg)) {
	free := make(chan struct{}, slots)
	for range slots {
		free <- struct{}{}
	}
	for ctx.Err() == nil {
		// Wait for one free slot, then take every other free one.
		select {
		case <-free:
		case <-ctx.Done():
			return
		}
		n := 1
		for n < maxBatch {
			select {
			case <-free:
				n++
				continue
			default:
			}
			break
		}
		fctx, cancel := context.WithTimeout(ctx, fetchWait)
		batch, err := cons.Fetch(n, jetstream.FetchContext(fctx))
		if err != nil {
			cancel()
			for range n {
				free <- struct{}{}
			}
			if ctx.Err() != nil {
				return
			}
			a.log.Warn("fetching messages", "from", what, "err", err)
			if !sleep(ctx, time.Second) {
				return
			}
			continue
		}
		got := 0
		for msg := range batch.Messages() {
			got++
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { free <- struct{}{} }()
				handle(msg)
			}()
		}
		for range n - got {
			free <- struct{}{}
		}
		cancel()
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, nats.ErrTimeout) && ctx.Err() == nil {
			a.log.Warn("fetching messages", "from", what, "err", err)
			if !sleep(ctx, time.Second) {
				return
			}
		}
	}
}
