package broker

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// EnsureKeyValue creates the KV bucket cfg describes, or updates it to cfg if
// it exists, so every node converges on the same settings. A zero
// cfg.Replicas becomes the broker's replica count.
func (b *Broker) EnsureKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	if cfg.Replicas == 0 {
		cfg.Replicas = b.cfg.Replicas
	}
	return EnsureKeyValue(ctx, b.js, cfg)
}

// EnsureObjectStore is EnsureKeyValue for an object store.
func (b *Broker) EnsureObjectStore(ctx context.Context, cfg jetstream.ObjectStoreConfig) (jetstream.ObjectStore, error) {
	if cfg.Replicas == 0 {
		cfg.Replicas = b.cfg.Replicas
	}
	return EnsureObjectStore(ctx, b.js, cfg)
}

// EnsureStream is EnsureKeyValue for a stream.
func (b *Broker) EnsureStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	if cfg.Replicas == 0 {
		cfg.Replicas = b.cfg.Replicas
	}
	return EnsureStream(ctx, b.js, cfg)
}

// EnsureKeyValue creates or updates a KV bucket on js, for packages that are
// handed a jetstream.JetStream rather than a Broker. A zero cfg.Replicas
// means 1.
func EnsureKeyValue(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("create or update KV bucket %q (replicas %d): %w", cfg.Bucket, cfg.Replicas, err)
	}
	return kv, nil
}

// EnsureObjectStore creates or updates an object store on js. A zero
// cfg.Replicas means 1.
func EnsureObjectStore(ctx context.Context, js jetstream.JetStream, cfg jetstream.ObjectStoreConfig) (jetstream.ObjectStore, error) {
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	obs, err := js.CreateOrUpdateObjectStore(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("create or update object store %q (replicas %d): %w", cfg.Bucket, cfg.Replicas, err)
	}
	return obs, nil
}

// EnsureStream creates or updates a stream on js. A zero cfg.Replicas
// means 1.
func EnsureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	s, err := js.CreateOrUpdateStream(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("create or update stream %q (replicas %d): %w", cfg.Name, cfg.Replicas, err)
	}
	return s, nil
}
