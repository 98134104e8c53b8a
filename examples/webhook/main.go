// Command webhook checks and records GitHub push events.
//
// gust has verified the delivery's X-Hub-Signature-256 with the trigger's
// secret before this runs (a bad signature never reaches the function), so
// the function checks what only it knows: that the event is a push it can
// read. It records the push as log lines on stdout (`gust logs webhook`)
// and answers a JSON summary, kept in the invocation's status.
//
//   - ping (sent by GitHub when the hook is created): 200 {"ok":true}
//   - another event type: 202, ignored
//   - a push whose JSON lacks the repository or ref: 400, not retried
//     (an answer is a result; retrying bad input would not fix it)
//
// Build: gust build . -o webhook.wasm
package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/gustfaas/gust/sdk"
)

// push is the part of GitHub's push payload this function reads.
type push struct {
	Ref        string `json:"ref"`
	Before     string `json:"before"`
	After      string `json:"after"`
	Repository struct {
		FullName string `json:"full_name"`
	} `json:"repository"`
	Pusher struct {
		Name string `json:"name"`
	} `json:"pusher"`
	Commits []struct {
		ID      string `json:"id"`
		Message string `json:"message"`
		Author  struct {
			Name string `json:"name"`
		} `json:"author"`
	} `json:"commits"`
}

// Summary is the function's answer for a push.
type Summary struct {
	OK         bool     `json:"ok"`
	Event      string   `json:"event"`
	Delivery   string   `json:"delivery,omitempty"`
	Repository string   `json:"repository,omitempty"`
	Ref        string   `json:"ref,omitempty"`
	Branch     string   `json:"branch,omitempty"`
	Pusher     string   `json:"pusher,omitempty"`
	Head       string   `json:"head,omitempty"`
	Commits    int      `json:"commits"`
	Messages   []string `json:"messages,omitempty"`
	Error      string   `json:"error,omitempty"`
}

func init() { sdk.HandleFunc(handle) }

func handle(w http.ResponseWriter, r *http.Request) {
	s := Summary{Event: r.Header.Get("X-GitHub-Event"), Delivery: r.Header.Get("X-GitHub-Delivery")}
	switch s.Event {
	case "ping":
		s.OK = true
		answer(w, http.StatusOK, s)
		return
	case "push":
	default:
		s.Error = "ignored: not a push event"
		answer(w, http.StatusAccepted, s)
		return
	}
	var p push
	if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
		s.Error = "push payload is not JSON: " + err.Error()
		answer(w, http.StatusBadRequest, s)
		return
	}
	if p.Repository.FullName == "" || !strings.HasPrefix(p.Ref, "refs/") {
		s.Error = "push payload lacks repository.full_name or ref"
		answer(w, http.StatusBadRequest, s)
		return
	}
	s.OK, s.Repository, s.Ref, s.Pusher, s.Head = true, p.Repository.FullName, p.Ref, p.Pusher.Name, p.After
	s.Branch, _ = strings.CutPrefix(p.Ref, "refs/heads/")
	s.Commits = len(p.Commits)
	fmt.Printf("push to %s %s by %s: %d commit(s), %s..%s (delivery %s)\n",
		s.Repository, s.Ref, s.Pusher, s.Commits, short(p.Before), short(p.After), s.Delivery)
	for _, c := range p.Commits {
		msg, _, _ := strings.Cut(c.Message, "\n")
		fmt.Printf("  %s %s: %s\n", short(c.ID), c.Author.Name, msg)
		s.Messages = append(s.Messages, msg)
	}
	answer(w, http.StatusOK, s)
}

func short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

func answer(w http.ResponseWriter, status int, s Summary) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(s)
}

func main() {}
