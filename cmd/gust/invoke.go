package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gustfaas/gust/client"
)

func newInvokeCmd(a *app) *cobra.Command {
	var (
		data, method, path string
		headers            []string
		verbose            bool
	)
	cmd := &cobra.Command{
		Use:   "invoke NAME[@VERSION|@ALIAS]",
		Short: "Call a function and write its response body to stdout",
		Long: `Call function NAME through /fn/NAME and copy the response body to stdout
as is. NAME@3 or NAME@canary calls a version or alias instead of live.
The method is POST when -d is given, else GET. The admin token is not sent:
functions see request headers, so pass any credentials a function needs
with -H. An error answered by
gust (unknown function, throttled, timed out, ...) is printed as
"error: MESSAGE (code)" on stderr; any status of 400 or more exits 1.`,
		Example: `  gust invoke hello
  gust invoke hello -d '{"name":"gust"}' -H 'Content-Type: application/json'
  gust invoke hello -d @event.json --path /items?id=3 -v
  echo hi | gust invoke echo -d @-`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			h := http.Header{}
			for _, kv := range headers {
				k, v, ok := strings.Cut(kv, ":")
				k = strings.TrimSpace(k)
				if !ok || k == "" || strings.ContainsAny(k, " \t") {
					return fmt.Errorf("invalid header %q: want 'Name: value'", kv)
				}
				h.Add(k, strings.TrimSpace(v))
			}
			var body io.Reader
			given := cmd.Flags().Changed("data")
			switch {
			case !given:
			case data == "@-":
				body = cmd.InOrStdin()
			case strings.HasPrefix(data, "@"):
				f, err := os.Open(data[1:])
				if err != nil {
					return fmt.Errorf("read -d: %w", err)
				}
				defer f.Close()
				body = f
			default:
				body = strings.NewReader(data)
			}
			if method == "" {
				method = http.MethodGet
				if given {
					method = http.MethodPost
				}
			}

			// No admin token: the gateway hands request headers to the
			// function, which must not learn it (see client.Invoke).
			c, err := a.newClient("")
			if err != nil {
				return err
			}
			resp, err := c.Invoke(cmd.Context(), args[0], strings.ToUpper(method), path, body, h)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if verbose {
				fmt.Fprintf(cmd.ErrOrStderr(), "status: %s\ninvocation: %s\n", resp.Status, resp.Header.Get("X-Gust-Invocation-Id"))
			}
			out, err := client.InvokeError(resp)
			if err != nil {
				return err
			}
			if _, err := io.Copy(cmd.OutOrStdout(), out); err != nil {
				return fmt.Errorf("read response: %w", err)
			}
			if resp.StatusCode >= 400 {
				return fmt.Errorf("function answered %s", resp.Status)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&data, "data", "d", "", "request body: DATA, @FILE, or @- for stdin (makes the method POST)")
	f.StringVarP(&method, "request", "X", "", "HTTP method (default GET, or POST with -d)")
	f.StringVar(&path, "path", "", "path (and query) after /fn/NAME, such as /items?id=3")
	f.StringArrayVarP(&headers, "header", "H", nil, "request header 'Name: value' (repeatable)")
	f.BoolVarP(&verbose, "verbose", "v", false, "print the status and invocation id to stderr")
	return cmd
}
