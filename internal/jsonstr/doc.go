// Package jsonstr writes JSON strings without encoding/json's reflection.
//
// The hot encoders (log lines, usage records, async event metadata) each
// write a handful of fixed fields; encoding/json's per-value work was a
// large part of their cost. They build their objects by hand and quote
// their strings here, so all of them escape the same way encoding/json
// does. It only encodes; reading stays with encoding/json.
package jsonstr
