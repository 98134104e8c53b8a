//go:build wasip1

package host

import "unsafe"

//go:wasmimport gust http_request
func hostHTTPRequest(ptr unsafe.Pointer, n uint32) uint64

//go:wasmimport gust kv_get
func hostKVGet(ptr unsafe.Pointer, n uint32) uint64

//go:wasmimport gust kv_set
func hostKVSet(kptr unsafe.Pointer, kn uint32, vptr unsafe.Pointer, vn uint32) uint64

//go:wasmimport gust kv_delete
func hostKVDelete(ptr unsafe.Pointer, n uint32) uint64

//go:wasmimport gust kv_list
func hostKVList(ptr unsafe.Pointer, n uint32) uint64

//go:wasmimport gust result_read
func hostResultRead(ptr unsafe.Pointer, n uint32) uint32

// take reads the payload a host call left behind.
func take(r uint64) (uint32, []byte) {
	code, n := uint32(r>>32), uint32(r)
	if n == 0 {
		return code, nil
	}
	buf := make([]byte, n)
	got := hostResultRead(unsafe.Pointer(&buf[0]), n)
	if got > n {
		return codeFailed, []byte("result_read failed")
	}
	return code, buf[:got]
}

func bytesPtr(b []byte) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(b)) }

func strPtr(s string) unsafe.Pointer { return unsafe.Pointer(unsafe.StringData(s)) }

func httpRequest(req []byte) (uint32, []byte) {
	return take(hostHTTPRequest(bytesPtr(req), uint32(len(req))))
}

func kvGet(key string) (uint32, []byte) {
	return take(hostKVGet(strPtr(key), uint32(len(key))))
}

func kvSet(key string, value []byte) (uint32, []byte) {
	return take(hostKVSet(strPtr(key), uint32(len(key)), bytesPtr(value), uint32(len(value))))
}

func kvDelete(key string) (uint32, []byte) {
	return take(hostKVDelete(strPtr(key), uint32(len(key))))
}

func kvList(prefix string) (uint32, []byte) {
	return take(hostKVList(strPtr(prefix), uint32(len(prefix))))
}
