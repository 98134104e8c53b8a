//go:build !wasip1

package host

// Outside gust there is no host: every call is refused the same way.

func unavailable() (uint32, []byte) { return codeUnavailable, nil }

func httpRequest([]byte) (uint32, []byte)   { return unavailable() }
func kvGet(string) (uint32, []byte)         { return unavailable() }
func kvSet(string, []byte) (uint32, []byte) { return unavailable() }
func kvDelete(string) (uint32, []byte)      { return unavailable() }
func kvList(string) (uint32, []byte)        { return unavailable() }
