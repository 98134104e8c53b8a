package wasm

import (
	"context"

	"github.com/tetratelabs/wazero/api"

	"github.com/gustfaas/gust"
)

// KV is one function's key-value store, as the host functions kv_* use
// it. Package kv implements it on a JetStream KV bucket per function.
type KV interface {
	// Get returns a key's value. Errors: ENOTFOUND, EINVALID (bad key).
	Get(ctx context.Context, key string) ([]byte, error)
	// Put sets a key's value. Errors: EINVALID (bad key).
	Put(ctx context.Context, key string, value []byte) error
	// Delete removes a key; removing a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// Keys lists the keys that start with prefix, sorted, at most limit.
	Keys(ctx context.Context, prefix string, limit int) ([]string, error)
}

// Limits of the key-value store as the guest sees it.
const (
	DefaultMaxValueBytes = 1 << 20
	maxListKeys          = 1000
)

// kvOf returns the call's store and the key (or prefix: what) that the
// first two arguments point at, or the refusal to answer with: for a
// function without kv: true, or a key outside the guest's memory.
func kvOf(c *call, mod api.Module, stack []uint64, op, what string) (KV, string, uint32, []byte) {
	if c.m.caps.kv == nil {
		c.event("kv %s denied: the function does not declare kv: true", op)
		return nil, "", resultDenied, errPayload("kv %s denied: the function does not declare kv: true", op)
	}
	key, ok := guestBytes(mod, stack[0], stack[1])
	if !ok {
		return nil, "", resultInvalid, errPayload("kv %s: %s outside the guest's memory", op, what)
	}
	return c.m.caps.kv, string(key), 0, nil
}

func kvFail(c *call, op string, err error) (uint32, []byte) {
	code := resultCode(err)
	if code == resultFailed {
		c.m.d.log.Warn("wasm kv failed", "function", c.m.function, "op", op, "err", err)
	}
	return code, []byte("kv " + op + ": " + gust.ErrorMessage(err))
}

// hostKVGet is kv_get(key_ptr, key_len); the result is the value.
func hostKVGet(ctx context.Context, c *call, mod api.Module, stack []uint64) (uint32, []byte) {
	kv, key, code, msg := kvOf(c, mod, stack, "get", "key")
	if kv == nil {
		return code, msg
	}
	v, err := kv.Get(ctx, key)
	if err != nil {
		if gust.ErrorCode(err) == gust.ENOTFOUND {
			return resultNotFound, nil
		}
		return kvFail(c, "get", err)
	}
	return resultOK, v
}

// hostKVSet is kv_set(key_ptr, key_len, val_ptr, val_len).
func hostKVSet(ctx context.Context, c *call, mod api.Module, stack []uint64) (uint32, []byte) {
	kv, key, code, msg := kvOf(c, mod, stack, "set", "key")
	if kv == nil {
		return code, msg
	}
	// An i32 argument is the low half of its stack slot; the high half
	// is not defined.
	if n := api.DecodeU32(stack[3]); int64(n) > int64(c.m.caps.maxValueBytes) {
		return resultLimit, errPayload("kv set: value of %d bytes is over the limit of %d", n, c.m.caps.maxValueBytes)
	}
	val, ok := guestBytes(mod, stack[2], stack[3])
	if !ok {
		return resultInvalid, errPayload("kv set: value outside the guest's memory")
	}
	if err := kv.Put(ctx, key, val); err != nil {
		return kvFail(c, "set", err)
	}
	return resultOK, nil
}

// hostKVDelete is kv_delete(key_ptr, key_len).
func hostKVDelete(ctx context.Context, c *call, mod api.Module, stack []uint64) (uint32, []byte) {
	kv, key, code, msg := kvOf(c, mod, stack, "delete", "key")
	if kv == nil {
		return code, msg
	}
	if err := kv.Delete(ctx, key); err != nil {
		return kvFail(c, "delete", err)
	}
	return resultOK, nil
}

// hostKVList is kv_list(prefix_ptr, prefix_len); the result is
// count (key)*, sorted, at most 1000 keys.
func hostKVList(ctx context.Context, c *call, mod api.Module, stack []uint64) (uint32, []byte) {
	kv, prefix, code, msg := kvOf(c, mod, stack, "list", "prefix")
	if kv == nil {
		return code, msg
	}
	keys, err := kv.Keys(ctx, prefix, maxListKeys)
	if err != nil {
		return kvFail(c, "list", err)
	}
	return resultOK, encodeStrings(keys)
}
