package broker

import (
	"fmt"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gustfaas/gust/cluster/clustertest"
)

func TestDefaultReplicas(t *testing.T) {
	for servers, want := range map[int]int{0: 1, 1: 1, 2: 1, 3: 3, 5: 3} {
		if got := DefaultReplicas(servers); got != want {
			t.Errorf("DefaultReplicas(%d) = %d, want %d", servers, got, want)
		}
	}
}

// Replicas left at zero follow the cluster: 3 on three servers, whichever
// one gust is pointed at, and 1 on a lone server or embedded.
func TestReplicasFollowClusterSize(t *testing.T) {
	ctx := testCtx(t)
	ns := clustertest.Start(t, 3)
	for _, url := range []string{ns.URL(1), ns.URLs()} {
		b, err := Start(ctx, Config{URL: url, Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		if b.ClusterSize() != 3 || b.Replicas() != 3 {
			b.Close()
			t.Fatalf("--nats %s: cluster size %d, replicas %d; want 3 and 3", url, b.ClusterSize(), b.Replicas())
		}
		kv, err := b.EnsureKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "replicas"})
		if err != nil {
			b.Close()
			t.Fatal(err)
		}
		st, err := kv.Status(ctx)
		b.Close()
		if err != nil {
			t.Fatal(err)
		}
		if c := st.(*jetstream.KeyValueBucketStatus).StreamInfo().Config; c.Replicas != 3 || c.AllowDirect {
			t.Fatalf("bucket replicas = %d, direct gets %v; want 3 replicas read through the leader", c.Replicas, c.AllowDirect)
		}
	}

	lone := runServer(t, true)
	b, err := Start(ctx, Config{URL: lone.ClientURL(), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.ClusterSize() != 1 || b.Replicas() != 1 {
		t.Fatalf("lone server: cluster size %d, replicas %d", b.ClusterSize(), b.Replicas())
	}
	emb, err := Start(ctx, Config{DataDir: t.TempDir(), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	if emb.Replicas() != 1 {
		t.Fatalf("embedded replicas = %d", emb.Replicas())
	}
}

// A value written through one server is read at once through every other:
// replicated buckets are read from their leader, never from a replica that
// lags behind the write quorum.
func TestReplicatedReadsSeeEveryAcknowledgedWrite(t *testing.T) {
	ctx := testCtx(t)
	ns := clustertest.Start(t, 3)
	var kvs []jetstream.KeyValue
	var stores []jetstream.ObjectStore
	for i := range ns.Servers {
		b, err := Start(ctx, Config{URL: ns.URL(i), Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		kv, err := b.EnsureKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "fresh"})
		if err != nil {
			t.Fatal(err)
		}
		obs, err := b.EnsureObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: "fresh"})
		if err != nil {
			t.Fatal(err)
		}
		kvs, stores = append(kvs, kv), append(stores, obs)
	}
	for round := 0; round < 20; round++ {
		w := round % 3
		key := fmt.Sprintf("k%d", round)
		if _, err := kvs[w].Put(ctx, key, []byte(key)); err != nil {
			t.Fatal(err)
		}
		if _, err := stores[w].PutBytes(ctx, key, []byte(key)); err != nil {
			t.Fatal(err)
		}
		for r := range kvs {
			if e, err := kvs[r].Get(ctx, key); err != nil || string(e.Value()) != key {
				t.Fatalf("round %d: KV read through server %d after a write through %d: %v", round, r, w, err)
			}
			if b, err := stores[r].GetBytes(ctx, key); err != nil || string(b) != key {
				t.Fatalf("round %d: object read through server %d after a write through %d: %v", round, r, w, err)
			}
		}
	}
}
