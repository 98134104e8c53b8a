package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/gustfaas/gust/client"
)

func newLogsCmd(a *app) *cobra.Command {
	var (
		q      client.LogQuery
		since  string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "logs NAME",
		Short: "Show a function's log: its stdout, stderr and gust's events about its invocations",
		Example: `  gust logs hello --since 10m
  gust logs hello -f
  gust logs hello --invocation 0f9da94dea306c4ecbbf11d3d777b2d0`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if since != "" {
				if q.Since, err = parseWhen("since", since, a.now()); err != nil {
					return err
				}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			body, err := c.Logs(cmd.Context(), args[0], q)
			if err != nil {
				return err
			}
			defer body.Close()
			err = printLogs(cmd.OutOrStdout(), cmd.ErrOrStderr(), body, asJSON)
			if err != nil && q.Follow && cmd.Context().Err() != nil {
				return nil // Ctrl-C is how -f ends: not an error
			}
			return err
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&q.Follow, "follow", "f", false, "keep printing new lines until interrupted")
	f.StringVar(&since, "since", "", "only lines newer than this: a duration back from now (10m) or a time")
	f.StringVar(&q.Invocation, "invocation", "", "only lines of this invocation id")
	f.IntVar(&q.Limit, "limit", 0, "most lines of the backlog to show (default 1000, newest kept)")
	f.BoolVar(&asJSON, "json", false, "print each line as the server's JSON")
	return cmd
}

// maxLogLine bounds one line of the server's answer that printLogs
// holds. The server cuts function lines far shorter (8 KiB before JSON
// escaping); a longer line is skipped with a note, never the end of
// logs -f.
const maxLogLine = 1 << 20

// printLogs copies the server's log lines (JSON, one a line) to w: as
// they are with asJSON, else one readable line each, with the function's
// control characters escaped (escapeControl). Notes go to errw.
func printLogs(w, errw io.Writer, r io.Reader, asJSON bool) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, skipped, err := readLogLine(br)
		if skipped > 0 {
			if asJSON {
				// stdout stays one JSON document a line.
				fmt.Fprintf(errw, "gust: skipped a log line of %d bytes (over %d)\n", skipped, maxLogLine)
			} else {
				fmt.Fprintf(w, "(a log line of %d bytes was skipped: over %d)\n", skipped, maxLogLine)
			}
		}
		if len(line) > 0 {
			if asJSON {
				fmt.Fprintf(w, "%s\n", line)
			} else if perr := printLogEntry(w, line); perr != nil {
				return perr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// readLogLine reads the next line of br without its newline. A line over
// maxLogLine is read to its end and dropped: skipped is its length.
func readLogLine(br *bufio.Reader) (line []byte, skipped int, err error) {
	for {
		frag, err := br.ReadSlice('\n')
		if skipped == 0 && len(line)+len(frag) <= maxLogLine+1 {
			line = append(line, frag...)
		} else {
			if skipped == 0 {
				skipped, line = len(line), nil
			}
			skipped += len(frag)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if skipped > 0 {
			return nil, skipped, err
		}
		return bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r")), 0, err
	}
}

func printLogEntry(w io.Writer, line []byte) error {
	var e client.LogEntry
	if err := json.Unmarshal(line, &e); err != nil {
		return fmt.Errorf("server sent a malformed log line: %w", err)
	}
	inv := e.Invocation
	if len(inv) > 8 {
		inv = inv[:8]
	}
	if inv == "" {
		inv = "-"
	}
	_, err := fmt.Fprintf(w, "%s v%d %-8s %-6s %s\n", e.Time.Local().Format("2006-01-02T15:04:05.000"), e.Version,
		escapeControl(inv), escapeControl(e.Stream), escapeControl(e.Message))
	return err
}

// escapeControl writes the control characters of s as Go escapes (\n,
// \x1b, \u202e), tab aside, and invalid UTF-8 as \xNN. It applies
// whether or not stdout is a terminal: function output is anyone's
// input, and what goes to a file or a pipe is read on a terminal later
// (cat, less -R), where an escape sequence could rewrite the screen or
// the title, and a newline or carriage return could forge a log line of
// another invocation. --json prints the server's lines unchanged, with
// JSON's own escaping, for tools that want the exact bytes.
func escapeControl(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c >= 0x7f {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, "\\x%02x", s[i])
		case r == '\t':
			b.WriteByte('\t')
		case r == '\n':
			b.WriteString("\\n")
		case r == '\r':
			b.WriteString("\\r")
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, "\\x%02x", r)
		case unicode.IsControl(r) || bidiControl(r):
			fmt.Fprintf(&b, "\\u%04x", r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// bidiControl reports the Unicode bidirectional controls, which reorder
// how the rest of a line is shown.
func bidiControl(r rune) bool {
	return r == 0x061c || r == 0x200e || r == 0x200f || 0x202a <= r && r <= 0x202e || 0x2066 <= r && r <= 0x2069
}

func newInvocationsCmd(a *app) *cobra.Command {
	var (
		q     client.HistoryQuery
		since string
		out   string
	)
	cmd := &cobra.Command{
		Use:   "invocations [NAME]",
		Short: "List recent invocations: id, version, trigger, start, duration, billed ms, cold, status",
		Example: `  gust invocations hello
  gust invocations hello --status error --since 1h`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(out); err != nil {
				return err
			}
			if len(args) == 1 {
				q.Function = args[0]
			}
			var err error
			if since != "" {
				if q.Since, err = parseWhen("since", since, a.now()); err != nil {
					return err
				}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			recs, err := c.Invocations(cmd.Context(), q)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if out == "json" {
				return printJSON(w, recs)
			}
			tw := newTable(w)
			fmt.Fprintln(tw, "ID\tFUNCTION\tVERSION\tTRIGGER\tSTART\tDURATION\tBILLED MS\tCOLD\tSTATUS")
			for _, r := range recs {
				cold := ""
				if r.Cold {
					cold = "cold"
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%d\t%s\t%s\n", r.ID, r.Function, r.Version, r.Trigger,
					r.Start.Local().Format("15:04:05.000"), time.Duration(r.DurationUs)*time.Microsecond,
					r.BilledMs, cold, r.Status)
			}
			return tw.Flush()
		},
	}
	f := cmd.Flags()
	f.StringVar(&q.Status, "status", "", "only this status: ok, error, timeout, throttled or oom")
	f.StringVar(&since, "since", "", "only invocations newer than this (default 24h)")
	f.IntVar(&q.Limit, "limit", 0, "most invocations to list (default 100)")
	outputFlag(cmd, &out)
	return cmd
}
