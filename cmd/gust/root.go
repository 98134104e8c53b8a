package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/client"
)

const (
	defaultURL = "http://127.0.0.1:8080"
	// defaultTokenFile is where `gust serve` with its default --data writes
	// the admin token, so the CLI works with no flags next to a local node.
	defaultTokenFile = "gust-data/admin.token"
)

var errNoToken = errors.New("no token: pass --token, set GUST_TOKEN or run in the directory holding gust-data/admin.token")

// app is the state one run of the CLI shares between its commands. It is a
// value per root command, not globals, so tests run many roots in one
// process.
type app struct {
	tlsCA     string
	url       string
	token     string
	getenv    func(string) string
	now       func() time.Time
	tokenFile string
}

func newRootCmd() *cobra.Command {
	return newRoot(&app{getenv: os.Getenv, now: time.Now, tokenFile: defaultTokenFile})
}

func newRoot(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "gust",
		Short: "gust runs functions: deploy code, invoke it, watch it scale",
		Long: `gust is a self-hosted serverless platform in one binary.

Start a node with "gust serve"; every other command talks to a node's admin
API at --url (env GUST_URL) with --token (env GUST_TOKEN, or the token that
"gust serve" wrote to ./gust-data/admin.token).`,
		SilenceErrors: true,
		// Arguments are checked before this hook runs, so a wrong call still
		// shows its usage, while an error from doing the work does not bury
		// the message under a page of flags.
		PersistentPreRun: func(cmd *cobra.Command, args []string) {
			cmd.SilenceUsage = true
		},
	}
	pf := root.PersistentFlags()
	pf.StringVar(&a.url, "url", "", "gust server URL (env GUST_URL; default "+defaultURL+")")
	pf.StringVar(&a.tlsCA, "tls-ca", "", "PEM certificate to trust for an https URL (env GUST_TLS_CA), e.g. gust-data/tls/cert.pem")
	pf.StringVar(&a.token, "token", "", "admin API token (env GUST_TOKEN; default: ./"+defaultTokenFile+")")

	root.AddCommand(
		newServeCmd(),
		newDeployCmd(a),
		newLsCmd(a),
		newVersionsCmd(a),
		newRollbackCmd(a),
		newRmCmd(a),
		newAliasCmd(a),
		newInvokeCmd(a),
		newStatusCmd(a),
		newNodesCmd(a),
		newUsageCmd(a),
		newBuildCmd(),
		newLogsCmd(a),
		newInvocationsCmd(a),
		newTopCmd(a),
		newTokenCmd(a),
		newKeyCmd(a),
		newSecretCmd(a),
		newDLQCmd(a),
		newInvocationCmd(a),
		newDoctorCmd(),
	)
	return root
}

func (a *app) baseURL() string {
	if a.url != "" {
		return a.url
	}
	if v := a.getenv("GUST_URL"); v != "" {
		return v
	}
	return defaultURL
}

// resolveToken finds the token in the documented order: flag, env, then
// the file a local `gust serve` wrote.
func (a *app) resolveToken() (string, error) {
	if a.token != "" {
		return a.token, nil
	}
	if v := a.getenv("GUST_TOKEN"); v != "" {
		return v, nil
	}
	data, err := os.ReadFile(a.tokenFile)
	if errors.Is(err, fs.ErrNotExist) {
		return "", errNoToken
	}
	if err != nil {
		return "", fmt.Errorf("read token: %w", err)
	}
	tok := strings.TrimSpace(string(data))
	if tok == "" {
		return "", fmt.Errorf("read token: %s is empty", filepath.Clean(a.tokenFile))
	}
	return tok, nil
}

// client returns a client of the admin API. The token is looked up only
// here, so commands that need none (serve, build) never fail for lack of
// one.
func (a *app) client() (*client.Client, error) {
	tok, err := a.resolveToken()
	if err != nil {
		return nil, err
	}
	return a.newClient(tok)
}

// newClient returns a client of the server at baseURL sending token (""
// for none), trusting --tls-ca / GUST_TLS_CA for an https URL: every verb
// reaches the server the same way, gust invoke's tokenless calls included.
func (a *app) newClient(tok string) (*client.Client, error) {
	ca := a.tlsCA
	if ca == "" {
		ca = a.getenv("GUST_TLS_CA")
	}
	if ca == "" {
		return client.New(a.baseURL(), tok), nil
	}
	pemBytes, err := os.ReadFile(ca)
	if err != nil {
		return nil, fmt.Errorf("read --tls-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("--tls-ca %s holds no PEM certificate", ca)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	return client.New(a.baseURL(), tok, client.WithHTTPClient(hc)), nil
}

// errorText renders an error for stderr: "error: MESSAGE (code)" for an
// application error so the code can be read and grepped, "error: MESSAGE"
// for anything else.
func errorText(err error) string {
	var ge *gust.Error
	if errors.As(err, &ge) && ge.Code != "" {
		return fmt.Sprintf("error: %s (%s)", err.Error(), ge.Code)
	}
	return "error: " + err.Error()
}

// outputFlag adds -o/--output to a command that lists or reports.
func outputFlag(cmd *cobra.Command, out *string) {
	cmd.Flags().StringVarP(out, "output", "o", "table", "output format: table or json")
}

func checkOutput(out string) error {
	switch out {
	case "table", "json":
		return nil
	}
	return fmt.Errorf("invalid --output %q: want table or json", out)
}
