package node

import (
	"bufio"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/client"
	"github.com/gustfaas/gust/wasm/wasmtest"
)

const chattyGuest = `package main

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"github.com/gustfaas/gust/sdk"
)

func init() {
	sdk.HandleFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(os.Stderr, "handling %s\n", r.URL.Query().Get("tag"))
		fmt.Println("to stdout")
		if r.URL.Query().Get("long") != "" {
			fmt.Fprintln(os.Stderr, strings.Repeat("y", 20000))
		}
		if r.URL.Query().Get("loop") != "" {
			for {
			}
		}
		w.Write([]byte("ok"))
	})
}

func main() {}
`

func readLogs(t *testing.T, c *client.Client, name string, q client.LogQuery) []client.LogEntry {
	t.Helper()
	body, err := c.Logs(context.Background(), name, q)
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	var out []client.LogEntry
	sc := bufio.NewScanner(body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e client.LogEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func TestLogsAndInvocationHistory(t *testing.T) {
	n, c := testNode(t, "", nil)
	deploy(t, c, "chatty", gust.Spec{Timeout: gust.Duration(300 * time.Millisecond)}, wasmtest.Code(t, wasmtest.GoGuest(t, chattyGuest)))
	first := do(t, "GET", n.URL()+"/fn/chatty?tag=first", nil)
	second := do(t, "GET", n.URL()+"/fn/chatty?tag=second&long=1", nil)
	slow := do(t, "GET", n.URL()+"/fn/chatty?tag=slow&loop=1", nil)
	if first.status != 200 || second.status != 200 || slow.status != 504 {
		t.Fatalf("statuses %d %d %d", first.status, second.status, slow.status)
	}
	id1 := first.header.Get("X-Gust-Invocation-Id")
	id3 := slow.header.Get("X-Gust-Invocation-Id")

	one := readLogs(t, c, "chatty", client.LogQuery{Invocation: id1})
	var msgs []string
	for _, e := range one {
		if e.Invocation != id1 || e.Function != "chatty" || e.Version != 1 {
			t.Fatalf("entry of another invocation: %+v", e)
		}
		msgs = append(msgs, e.Stream+":"+e.Message)
	}
	for _, want := range []string{"stderr:handling first", "stdout:to stdout", "gust:cold start"} {
		if !strings.Contains(strings.Join(msgs, "\n"), want) {
			t.Fatalf("logs of %s lack %q: %q", id1, want, msgs)
		}
	}
	all := readLogs(t, c, "chatty", client.LogQuery{})
	var truncated, timedOut bool
	for _, e := range all {
		if strings.HasSuffix(e.Message, "…[truncated]") && len(e.Message) < 10000 {
			truncated = true
		}
		if e.Invocation == id3 && e.Stream == "gust" && strings.Contains(e.Message, "timeout") {
			timedOut = true
		}
	}
	if !truncated || !timedOut {
		t.Fatalf("truncated=%v timedOut=%v in %d entries", truncated, timedOut, len(all))
	}
	if got := readLogs(t, c, "chatty", client.LogQuery{Since: time.Now().Add(time.Hour)}); len(got) != 0 {
		t.Fatalf("future since returned %d entries", len(got))
	}

	// Follow: a new invocation's line arrives on an open stream.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	body, err := c.Logs(ctx, "chatty", client.LogQuery{Follow: true, Since: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	go func() {
		time.Sleep(200 * time.Millisecond)
		do(t, "GET", n.URL()+"/fn/chatty?tag=followed", nil)
	}()
	sc := bufio.NewScanner(body)
	found := false
	for !found && sc.Scan() {
		found = strings.Contains(sc.Text(), "handling followed")
	}
	if !found {
		t.Fatalf("followed line never arrived: %v", sc.Err())
	}

	recs, err := c.Invocations(context.Background(), client.HistoryQuery{Function: "chatty"})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) < 3 || recs[len(recs)-1].ID != id1 || !recs[len(recs)-1].Cold {
		t.Fatalf("history: %+v", recs)
	}
	timeouts, err := c.Invocations(context.Background(), client.HistoryQuery{Function: "chatty", Status: "timeout"})
	if err != nil || len(timeouts) != 1 || timeouts[0].ID != id3 || timeouts[0].BilledMs < 300 {
		t.Fatalf("timeouts: %+v %v", timeouts, err)
	}
}

// Many short invocations, each writing one line: their lines are stored
// in shared batches, yet each invocation's line is found by its id, the
// function's log lists them in the order they ran, and what is still
// buffered when the node closes cleanly is there after a restart.
func TestLogsOfManyInvocations(t *testing.T) {
	dir := t.TempDir()
	n, c := testNode(t, dir, nil)
	deploy(t, c, "traced", gust.Spec{}, wasmtest.Code(t, wasmtest.GoGuest(t, traceGuest)))
	var ids []string
	for i := 0; i < 30; i++ {
		r := do(t, "GET", n.URL()+"/fn/traced?log=1", nil)
		if r.status != 200 {
			t.Fatalf("call %d = %d %s", i, r.status, r.body)
		}
		ids = append(ids, r.header.Get("X-Gust-Invocation-Id"))
	}
	for _, i := range []int{0, 17, 29} {
		var got []string
		for _, e := range readLogs(t, c, "traced", client.LogQuery{Invocation: ids[i]}) {
			if e.Invocation != ids[i] {
				t.Fatalf("invocation %s's log holds %+v", ids[i], e)
			}
			got = append(got, e.Stream+":"+e.Message)
		}
		if !slices.Contains(got, "stderr:handling "+ids[i]) {
			t.Fatalf("invocation %d's log is %q", i, got)
		}
	}
	var order []string
	for _, e := range readLogs(t, c, "traced", client.LogQuery{}) {
		if e.Stream == "stderr" {
			order = append(order, strings.TrimPrefix(e.Message, "handling "))
		}
	}
	if !slices.Equal(order, ids) {
		t.Fatalf("the function's log lists\n%q\nwant the calls in order\n%q", order, ids)
	}

	last := do(t, "GET", n.URL()+"/fn/traced?log=1", nil).header.Get("X-Gust-Invocation-Id")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n.Close(ctx)
	_, c = testNode(t, dir, nil)
	got := readLogs(t, c, "traced", client.LogQuery{Invocation: last})
	if len(got) != 1 || got[0].Message != "handling "+last {
		t.Fatalf("after a restart the last call's log is %+v", got)
	}
}
