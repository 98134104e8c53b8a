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
	if cfg.Replicas == 1 {
		return kv, nil
	}
	if err := readFromLeader(ctx, js, "KV_"+cfg.Bucket); err != nil {
		return nil, fmt.Errorf("KV bucket %q: %w", cfg.Bucket, err)
	}
	// Bound again, so the handle sees the new setting.
	kv, err = js.KeyValue(ctx, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("bind KV bucket %q: %w", cfg.Bucket, err)
	}
	return kv, nil
}

// readFromLeader turns off direct gets on a replicated stream. With them
// on (the nats.go default for KV buckets and object stores) any replica
// answers a read, and one that lags behind the write quorum answers with
// an old value or "not found": a node would 404 a function deployed a
// moment ago on another node, or refuse a token just created there. Reads
// through the leader cost a hop and see every acknowledged write.
func readFromLeader(ctx context.Context, js jetstream.JetStream, stream string) error {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("stream info: %w", err)
	}
	cfg := s.CachedInfo().Config
	if !cfg.AllowDirect {
		return nil
	}
	cfg.AllowDirect = false
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("turn off direct gets: %w", err)
	}
	return nil
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
	if cfg.Replicas == 1 {
		return obs, nil
	}
	if err := readFromLeader(ctx, js, "OBJ_"+cfg.Bucket); err != nil {
		return nil, fmt.Errorf("object store %q: %w", cfg.Bucket, err)
	}
	obs, err = js.ObjectStore(ctx, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("bind object store %q: %w", cfg.Bucket, err)
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

// NewPublisher makes a JetStream context of its own on js's connection,
// addressing the same domain or API prefix, with opts added (typically
// the async-publish window and timeout). A part that publishes in bulk
// with PublishAsync takes one so its pending acknowledgements and their
// limit are not shared with every other user of js.
func NewPublisher(js jetstream.JetStream, opts ...jetstream.JetStreamOpt) (jetstream.JetStream, error) {
	o := js.Options()
	if o.DefaultTimeout > 0 {
		opts = append([]jetstream.JetStreamOpt{jetstream.WithDefaultTimeout(o.DefaultTimeout)}, opts...)
	}
	var (
		pub jetstream.JetStream
		err error
	)
	switch {
	case o.Domain != "":
		pub, err = jetstream.NewWithDomain(js.Conn(), o.Domain, opts...)
	case o.APIPrefix != "":
		pub, err = jetstream.NewWithAPIPrefix(js.Conn(), o.APIPrefix, opts...)
	default:
		pub, err = jetstream.New(js.Conn(), opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("JetStream publisher: %w", err)
	}
	return pub, nil
}
