// Command httpfn is a process function for the tests: it serves HTTP on
// $PORT and reports what it sees of its sandbox.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

func main() {
	var (
		mu      sync.Mutex
		waiting int
		release = make(chan struct{})
	)
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Method", r.Method)
		w.Header().Set("X-Query", r.URL.RawQuery)
		w.Header().Set("X-Test", r.Header.Get("X-Test"))
		w.Header().Set("X-Invocation", r.Header.Get("X-Gust-Invocation-Id"))
		w.WriteHeader(201)
		w.Write(b)
	})
	// /uri/... reports the request's target as the function received it.
	mux.HandleFunc("/uri/", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"requestURI": r.RequestURI, "path": r.URL.Path, "query": r.URL.RawQuery})
	})
	mux.HandleFunc("/env", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(os.Environ())
	})
	mux.HandleFunc("/whoami", func(w http.ResponseWriter, r *http.Request) {
		wd, _ := os.Getwd()
		status, _ := os.ReadFile("/proc/self/status")
		var uidLine string
		caps := map[string]string{}
		for _, l := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(l, "Uid:") {
				uidLine = l
			}
			for _, k := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs"} {
				if v, ok := strings.CutPrefix(l, k+":"); ok {
					caps[k] = strings.TrimSpace(v)
				}
			}
		}
		json.NewEncoder(w).Encode(map[string]any{"uid": os.Getuid(), "gid": os.Getgid(), "pid": os.Getpid(), "wd": wd, "status": uidLine, "caps": caps})
	})
	mux.HandleFunc("/read", func(w http.ResponseWriter, r *http.Request) {
		_, err := os.ReadFile(r.URL.Query().Get("path"))
		fmt.Fprint(w, errString(err))
	})
	mux.HandleFunc("/list", func(w http.ResponseWriter, r *http.Request) {
		_, err := os.ReadDir(r.URL.Query().Get("path"))
		fmt.Fprint(w, errString(err))
	})
	mux.HandleFunc("/write", func(w http.ResponseWriter, r *http.Request) {
		err := os.WriteFile(r.URL.Query().Get("path"), []byte("x"), 0o644)
		fmt.Fprint(w, errString(err))
	})
	mux.HandleFunc("/dial", func(w http.ResponseWriter, r *http.Request) {
		c, err := net.DialTimeout("tcp", r.URL.Query().Get("addr"), 2*time.Second)
		if err == nil {
			c.Close()
		}
		fmt.Fprint(w, errString(err))
	})
	mux.HandleFunc("/procs", func(w http.ResponseWriter, r *http.Request) {
		entries, _ := os.ReadDir("/proc")
		n := 0
		for _, e := range entries {
			if _, err := strconv.Atoi(e.Name()); err == nil {
				n++
			}
		}
		fmt.Fprint(w, n)
	})
	mux.HandleFunc("/sleep", func(w http.ResponseWriter, r *http.Request) {
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		time.Sleep(time.Duration(ms) * time.Millisecond)
		fmt.Fprint(w, "slept")
	})
	mux.HandleFunc("/alloc", func(w http.ResponseWriter, r *http.Request) {
		mb, _ := strconv.Atoi(r.URL.Query().Get("mb"))
		var keep [][]byte
		for i := 0; i < mb; i++ {
			b := make([]byte, 1<<20)
			for j := range b {
				b[j] = byte(j)
			}
			keep = append(keep, b)
		}
		fmt.Fprint(w, len(keep))
	})
	mux.HandleFunc("/log", func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("hello from stdout", r.URL.Query().Get("m"))
		fmt.Fprintln(os.Stderr, "hello from stderr")
		fmt.Fprint(w, "logged")
	})
	mux.HandleFunc("/exit", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(os.Stderr, "giving up")
		os.Exit(3)
	})
	// /barrier?n=N answers only once N requests wait in it at once: it
	// proves that one instance serves them concurrently.
	mux.HandleFunc("/barrier", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		mu.Lock()
		waiting++
		if waiting == n {
			close(release)
		}
		ch := release
		mu.Unlock()
		select {
		case <-ch:
			fmt.Fprint(w, "together")
		case <-time.After(10 * time.Second):
			http.Error(w, "alone", 500)
		}
	})
	// /listen opens and closes a listener on another port: listening must
	// keep working once the function is ready.
	mux.HandleFunc("/listen", func(w http.ResponseWriter, r *http.Request) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err == nil {
			ln.Close()
		}
		fmt.Fprint(w, errString(err))
	})
	if os.Getenv("LISTEN_FIRST") != "" {
		// Another listener before $PORT's, as a function with a metrics
		// or debug port may have: readiness is $PORT's.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer ln.Close()
		time.Sleep(20 * time.Millisecond)
	}
	addr := "127.0.0.1:" + os.Getenv("PORT")
	if err := http.ListenAndServe(addr, mux); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func errString(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}
