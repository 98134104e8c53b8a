package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/gustfaas/gust"
)

func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// printJSON writes v as indented JSON. A json.RawMessage is re-indented,
// not re-encoded, so fields this CLI does not know pass through unchanged.
func printJSON(w io.Writer, v any) error {
	if raw, ok := v.(json.RawMessage); ok {
		var buf bytes.Buffer
		if err := json.Indent(&buf, raw, "", "  "); err != nil {
			return fmt.Errorf("server sent invalid JSON: %w", err)
		}
		buf.WriteByte('\n')
		_, err := w.Write(buf.Bytes())
		return err
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// ago says how long before now t was, in the largest unit that fits.
func ago(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return t.Local().Format("2006-01-02 15:04")
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d/time.Hour))
	case d < 60*24*time.Hour:
		return fmt.Sprintf("%dd ago", int(d/(24*time.Hour)))
	}
	return t.Local().Format("2006-01-02")
}

// targetsText renders an alias's routing: "3", or "3 (90%), 4 (10%)".
func targetsText(ts []gust.AliasTarget) string {
	if len(ts) == 1 && ts[0].Weight == 100 {
		return fmt.Sprint(ts[0].Version)
	}
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = fmt.Sprintf("%d (%d%%)", t.Version, t.Weight)
	}
	return strings.Join(parts, ", ")
}

// aliasNames returns the names of aliases, live first, then by name.
func aliasNames(as map[string]gust.Alias) []string {
	names := make([]string, 0, len(as))
	for n := range as {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		if (names[i] == gust.AliasLive) != (names[j] == gust.AliasLive) {
			return names[i] == gust.AliasLive
		}
		return names[i] < names[j]
	})
	return names
}

// The status and usage documents belong to the server and grow with it,
// so they are rendered from their JSON shape rather than from a Go type:
// scalars become "key  value" lines, and lists of objects (or objects of
// objects) become tables, keeping the server's field order.

// field is one member of a JSON object, in document order.
type field struct {
	key string
	val any
}

// object is a JSON object that remembers its key order.
type object []field

// decodeOrdered decodes one JSON value into object, []any, json.Number,
// string, bool or nil.
func decodeOrdered(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			var o object
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				v, err := decodeOrdered(dec)
				if err != nil {
					return nil, err
				}
				o = append(o, field{kt.(string), v})
			}
			_, err := dec.Token()
			return o, err
		case '[':
			a := []any{}
			for dec.More() {
				v, err := decodeOrdered(dec)
				if err != nil {
					return nil, err
				}
				a = append(a, v)
			}
			_, err := dec.Token()
			return a, err
		}
		return nil, fmt.Errorf("unexpected %v", t)
	default:
		return t, nil
	}
}

// renderDocument prints a JSON document as text for people, leaving out
// the top-level members named in skip.
func renderDocument(w io.Writer, raw json.RawMessage, skip ...string) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	doc, err := decodeOrdered(dec)
	if err != nil {
		return fmt.Errorf("server sent invalid JSON: %w", err)
	}
	tw := newTable(w)
	switch d := doc.(type) {
	case object:
		var sections []field
		for _, f := range d {
			if slices.Contains(skip, f.key) {
				continue
			}
			if isTable(f.val) {
				sections = append(sections, f)
				continue
			}
			for _, c := range flatten(f.key, f.val) {
				fmt.Fprintf(tw, "%s:\t%s\n", label(c.key), c.val)
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		for _, s := range sections {
			fmt.Fprintf(w, "\n%s:\n", s.key)
			if err := renderTable(w, s.val); err != nil {
				return err
			}
		}
		return nil
	case []any:
		return renderTable(w, d)
	default:
		_, err := fmt.Fprintln(w, scalarText("", d))
		return err
	}
}

// isTable reports whether v reads best as a table: a non-empty list of
// objects, or an object whose members are all objects (keyed rows).
func isTable(v any) bool {
	switch t := v.(type) {
	case []any:
		if len(t) == 0 {
			return false
		}
		for _, e := range t {
			if _, ok := e.(object); !ok {
				return false
			}
		}
		return true
	case object:
		if len(t) == 0 {
			return false
		}
		for _, f := range t {
			if _, ok := f.val.(object); !ok {
				return false
			}
		}
		return true
	}
	return false
}

type cell struct{ key, val string }

// flatten turns a value into cells: nested objects become dotted keys,
// lists of scalars a comma-separated list, anything deeper compact JSON.
func flatten(key string, v any) []cell {
	switch t := v.(type) {
	case object:
		var cells []cell
		for _, f := range t {
			k := f.key
			if key != "" {
				k = key + "." + f.key
			}
			cells = append(cells, flatten(k, f.val)...)
		}
		return cells
	case []any:
		parts := make([]string, 0, len(t))
		for _, e := range t {
			switch e.(type) {
			case object, []any:
				return []cell{{key, compactJSON(t)}}
			}
			parts = append(parts, scalarText("", e))
		}
		return []cell{{key, strings.Join(parts, ", ")}}
	}
	return []cell{{key, scalarText(key, v)}}
}

// scalarText renders a scalar. Numbers in fields named "...Ns" or "...Us"
// are nano- or microseconds (the conventions of gust.Invocation and the
// meter) and print as durations, under the label without the unit (see
// label); money ("...Cost", "price...") prints as dollars in fixed
// decimals, never in e-notation.
func scalarText(key string, v any) string {
	switch t := v.(type) {
	case nil:
		return "-"
	case string:
		if t == "" {
			return "-"
		}
		return t
	case json.Number:
		if unit := durationUnit(key); unit != 0 {
			if n, err := t.Int64(); err == nil {
				return (time.Duration(n) * unit).String()
			}
			if f, err := t.Float64(); err == nil && math.Abs(f*float64(unit)) < math.MaxInt64 {
				return time.Duration(f * float64(unit)).String()
			}
		}
		if isMoney(key) {
			if f, err := t.Float64(); err == nil {
				return dollars(f)
			}
		}
		return t.String()
	}
	return fmt.Sprint(v)
}

func durationUnit(key string) time.Duration {
	switch {
	case strings.HasSuffix(key, "Ns"):
		return time.Nanosecond
	case strings.HasSuffix(key, "Us"):
		return time.Microsecond
	}
	return 0
}

// label is the name a "key: value" line shows for key: a duration field
// loses its unit suffix, since its value prints as a duration with its own
// unit ("total.durationUs" → "total.duration: 920.368ms"), as a column
// header does.
func label(key string) string {
	if durationUnit(key) != 0 {
		return key[:len(key)-2]
	}
	return key
}

// isMoney reports whether key (dotted) names an amount of money: the
// meter's "estimatedCost" and its prices "pricePerGBSecond" and
// "pricePerMillionRequests".
func isMoney(key string) bool {
	if i := strings.LastIndexByte(key, '.'); i >= 0 {
		key = key[i+1:]
	}
	return strings.HasSuffix(key, "Cost") || strings.EqualFold(key, "cost") || strings.HasPrefix(key, "price")
}

// dollars formats an amount of money in fixed decimals: six significant
// digits, at least two decimals ("$0.20", "$0.0000166667",
// "$0.000000402083"), trailing zeros past the second decimal dropped.
// Float sums carry noise in their last digits, which six digits round off.
func dollars(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Sprint(f)
	}
	decimals := 2
	if a := math.Abs(f); a > 0 && a < 1 {
		decimals = max(2, 5-int(math.Floor(math.Log10(a))))
	}
	s := strconv.FormatFloat(f, 'f', decimals, 64)
	if dot := strings.IndexByte(s, '.'); dot >= 0 {
		for len(s) > dot+3 && s[len(s)-1] == '0' {
			s = s[:len(s)-1]
		}
	}
	if s == "-0.00" {
		s = "0.00"
	}
	if s[0] == '-' {
		return "-$" + s[1:]
	}
	return "$" + s
}

func compactJSON(v any) string {
	var b strings.Builder
	writeCompact(&b, v)
	return b.String()
}

func writeCompact(b *strings.Builder, v any) {
	switch t := v.(type) {
	case object:
		b.WriteByte('{')
		for i, f := range t {
			if i > 0 {
				b.WriteByte(',')
			}
			k, _ := json.Marshal(f.key)
			b.Write(k)
			b.WriteByte(':')
			writeCompact(b, f.val)
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, e := range t {
			if i > 0 {
				b.WriteByte(',')
			}
			writeCompact(b, e)
		}
		b.WriteByte(']')
	default:
		j, _ := json.Marshal(t)
		b.Write(j)
	}
}

// renderTable prints a list of objects, or an object of objects with its
// keys as a first NAME column. Columns are the union of the rows' fields
// in first-seen order, so rows of different shapes still line up.
func renderTable(w io.Writer, v any) error {
	var rows [][]cell
	switch t := v.(type) {
	case []any:
		for _, e := range t {
			rows = append(rows, flatten("", e))
		}
	case object:
		for _, f := range t {
			rows = append(rows, append([]cell{{"name", f.key}}, flatten("", f.val)...))
		}
	default:
		_, err := fmt.Fprintln(w, scalarText("", v))
		return err
	}
	var cols []string
	seen := map[string]bool{}
	for _, r := range rows {
		for _, c := range r {
			if !seen[c.key] {
				seen[c.key] = true
				cols = append(cols, c.key)
			}
		}
	}
	tw := newTable(w)
	heads := make([]string, len(cols))
	for i, c := range cols {
		heads[i] = header(c)
	}
	fmt.Fprintln(tw, strings.Join(heads, "\t"))
	for _, r := range rows {
		vals := make(map[string]string, len(r))
		for _, c := range r {
			vals[c.key] = c.val
		}
		line := make([]string, len(cols))
		for i, c := range cols {
			if s, ok := vals[c]; ok {
				line[i] = s
			} else {
				line[i] = "-"
			}
		}
		fmt.Fprintln(tw, strings.Join(line, "\t"))
	}
	return tw.Flush()
}

// header turns a JSON field name into a column title: "coldStarts" →
// "COLD STARTS", "memoryMB" → "MEMORY MB", "durationNs" → "DURATION".
func header(key string) string {
	if durationUnit(key) != 0 {
		key = key[:len(key)-2]
	}
	var b strings.Builder
	prev := rune(0)
	for _, r := range key {
		if r == '.' || r == '_' || r == '-' {
			b.WriteByte(' ')
			prev = ' '
			continue
		}
		if unicode.IsUpper(r) && (unicode.IsLower(prev) || unicode.IsDigit(prev)) {
			b.WriteByte(' ')
		}
		b.WriteRune(unicode.ToUpper(r))
		prev = r
	}
	return b.String()
}
