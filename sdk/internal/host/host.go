package host

import (
	"encoding/binary"
	"errors"
)

// Result codes of the host functions.
const (
	codeOK       = 0
	codeNotFound = 1
	codeDenied   = 2
	codeInvalid  = 3
	codeFailed   = 4
	codeLimit    = 5
	// codeUnavailable never comes from the host: the stubs outside
	// wasip1 return it.
	codeUnavailable = 255
)

// Errors a host call can match with errors.Is.
var (
	// ErrNotFound: the key does not exist.
	ErrNotFound = errors.New("gust: not found")
	// ErrDenied: the function's manifest does not grant the capability
	// (no kv: true, a host not in allowedHosts, an IP address, a
	// redirect to an unlisted host).
	ErrDenied = errors.New("gust: denied")
	// ErrLimit: a limit was hit (requests per invocation, response or
	// value size).
	ErrLimit = errors.New("gust: limit exceeded")
	// ErrInvalid: bad arguments (a malformed key or URL).
	ErrInvalid = errors.New("gust: invalid argument")
	// ErrUnavailable: not running inside gust.
	ErrUnavailable = errors.New("gust: host functions are only available to a function running in gust (GOOS=wasip1)")
)

// Error is a failed host call; it matches one of the errors above with
// errors.Is.
type Error struct {
	code uint32
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// Is reports whether target is the kind of this error.
func (e *Error) Is(target error) bool {
	switch e.code {
	case codeNotFound:
		return target == ErrNotFound
	case codeDenied:
		return target == ErrDenied
	case codeInvalid:
		return target == ErrInvalid
	case codeLimit:
		return target == ErrLimit
	case codeUnavailable:
		return target == ErrUnavailable
	}
	return false
}

// result turns a host function's code and payload into a value or an
// error.
func result(op string, code uint32, payload []byte) ([]byte, error) {
	switch code {
	case codeOK:
		return payload, nil
	case codeNotFound:
		return nil, &Error{code: code, Msg: "gust: " + op + ": not found"}
	case codeUnavailable:
		return nil, &Error{code: code, Msg: ErrUnavailable.Error()}
	}
	msg := string(payload)
	if msg == "" {
		msg = op + " failed"
	}
	return nil, &Error{code: code, Msg: "gust: " + msg}
}

// KV is the function's own key-value store; the zero value is ready to
// use. The function must declare `kv: true` in its manifest, or every
// call fails with ErrDenied. Keys are 1 to 512 characters of letters,
// digits and - / _ = . (not starting or ending with '.'); values are at
// most 1 MiB. Each call is a round trip to JetStream.
type KV struct{}

// Get returns the value of key, or an error matching ErrNotFound.
func (KV) Get(key string) ([]byte, error) {
	code, p := kvGet(key)
	return result("kv get "+key, code, p)
}

// Set sets the value of key.
func (KV) Set(key string, value []byte) error {
	code, p := kvSet(key, value)
	_, err := result("kv set "+key, code, p)
	return err
}

// Delete removes key; removing a missing key is not an error.
func (KV) Delete(key string) error {
	code, p := kvDelete(key)
	_, err := result("kv delete "+key, code, p)
	return err
}

// List returns the keys that start with prefix, sorted, at most 1000.
func (KV) List(prefix string) ([]string, error) {
	code, p := kvList(prefix)
	b, err := result("kv list", code, p)
	if err != nil {
		return nil, err
	}
	if len(b) < 4 {
		return nil, errors.New("gust: kv list: malformed answer")
	}
	n := binary.LittleEndian.Uint32(b)
	b = b[4:]
	keys := make([]string, 0, min(n, 1000))
	for i := uint32(0); i < n; i++ {
		if len(b) < 4 || uint64(binary.LittleEndian.Uint32(b)) > uint64(len(b)-4) {
			return nil, errors.New("gust: kv list: malformed answer")
		}
		l := binary.LittleEndian.Uint32(b)
		keys = append(keys, string(b[4:4+l]))
		b = b[4+l:]
	}
	return keys, nil
}

// Fetch sends an HTTP request through the host and returns the response;
// see package sdk's Transport for the rules. Response header keys are
// canonical, as the host's net/http made them.
func Fetch(method, url string, header map[string][]string, body []byte) (status int, respHeader map[string][]string, respBody []byte, err error) {
	count := 0
	size := 16 + len(method) + len(url) + len(body)
	for k, vs := range header {
		count += len(vs)
		for _, v := range vs {
			size += 8 + len(k) + len(v)
		}
	}
	enc := make([]byte, 0, size)
	enc = PutString(enc, method)
	enc = PutString(enc, url)
	enc = PutU32(enc, uint32(count))
	for k, vs := range header {
		for _, v := range vs {
			enc = PutString(enc, k)
			enc = PutString(enc, v)
		}
	}
	enc = PutBytes(enc, body)
	code, p := httpRequest(enc)
	out, err := result("http", code, p)
	if err != nil {
		return 0, nil, nil, err
	}
	r := Reader{B: out}
	status = int(r.U32())
	n := r.U32()
	if r.Err == nil && uint64(n)*8 > uint64(len(r.B)) {
		return 0, nil, nil, errors.New("gust: http: malformed response")
	}
	respHeader = make(map[string][]string, n)
	for i := uint32(0); i < n && r.Err == nil; i++ {
		k, v := r.Bytes(), r.Bytes()
		respHeader[string(k)] = append(respHeader[string(k)], string(v))
	}
	respBody = r.Bytes()
	if r.Err != nil {
		return 0, nil, nil, errors.New("gust: http: malformed response")
	}
	return status, respHeader, respBody, nil
}

// Appender helpers for the encoding: a u32 length then the bytes.

// PutString appends s with its length.
func PutString(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// PutBytes appends p with its length.
func PutBytes(b []byte, p []byte) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(p)))
	return append(b, p...)
}

// PutU32 appends v.
func PutU32(b []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(b, v) }

// Reader reads the encoding.
type Reader struct {
	B   []byte
	Err error
}

// U32 reads a u32.
func (r *Reader) U32() uint32 {
	if r.Err != nil {
		return 0
	}
	if len(r.B) < 4 {
		r.Err = errors.New("truncated")
		return 0
	}
	v := binary.LittleEndian.Uint32(r.B)
	r.B = r.B[4:]
	return v
}

// Bytes reads a length-prefixed byte string (a view of the input).
func (r *Reader) Bytes() []byte {
	n := r.U32()
	if r.Err != nil {
		return nil
	}
	if uint64(n) > uint64(len(r.B)) {
		r.Err = errors.New("truncated")
		return nil
	}
	v := r.B[:n]
	r.B = r.B[n:]
	return v
}
