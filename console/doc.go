// Package console is gust's web console: a single page of plain HTML, CSS
// and JavaScript embedded in the binary and served at /console/. The page
// signs in with an admin token and is a client of the admin API (/v1,
// bearer token) and the gateway (/fn) like the CLI: it lists functions,
// invokes them, follows their logs, charts their live statistics and
// shows usage.
//
// The token is held in the page's memory only, so a reload asks for it
// again: functions are served from the console's own origin (/fn/NAME),
// and a page a function serves could read whatever the console kept in
// sessionStorage or localStorage.
//
// The package only serves files. It must not grow API routes or server
// state of its own, so everything the console shows stays reachable with
// curl and the CLI. There is no build step: what is in static/ is what the
// browser runs.
package console
