package sidecar

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func noEnv(string) string { return "" }

func TestStartUpRefusalsNameTheFlag(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{nil, "-upstream is required"},
		{[]string{"-upstream", "ftp://host/x"}, `-upstream "ftp://host/x" is not an http(s) URL`},
		{[]string{"-upstream", "127.0.0.1:3000"}, "-upstream"},
		{[]string{"-upstream", "http://h", "-api-listen", "0.0.0.0:9090"}, "-api-token is required"},
		{[]string{"-upstream", "http://h", "-api-listen", ":9090", "-api-token", "t"}, "-api-key is required"},
		{[]string{"-upstream", "http://h", "-max-body", "lots"}, `invalid value "lots" for flag -max-body`},
		{[]string{"-upstream", "http://h", "-timezone", "Mars/Olympus"}, "-timezone"},
		{[]string{"-upstream", "http://h", "-log-format", "xml"}, "-log-format"},
		{[]string{"-upstream", "http://h", "-upstream-timeout", "0s"}, "-upstream-timeout"},
		{[]string{"-upstream", "http://h", "-upstream-header", "no colon"}, "-upstream-header"},
		{[]string{"-upstream", "http://h", "-upstream-header", "Connection: close"}, "-upstream-header"},
		{[]string{"-upstream", "http://h", "stray"}, `unexpected argument "stray"`},
	}
	for _, c := range cases {
		_, err := parseServe(c.args, noEnv, io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("parseServe(%q) = %v, want one line containing %q", c.args, err, c.want)
		}
	}
}

func TestEnvFallbackAndCommandLineWins(t *testing.T) {
	env := map[string]string{
		"CTWA_UPSTREAM":         "http://127.0.0.1:3000/hook",
		"CTWA_LISTEN":           ":8181",
		"CTWA_MAX_BODY":         "2MiB",
		"CTWA_UPSTREAM_TIMEOUT": "3s",
		"CTWA_UPSTREAM_HEADER":  "A_One: 1\nX-Two: 2",
		"CTWA_API_LISTEN":       "[::1]:9999",
	}
	c, err := parseServe([]string{"-listen", ":9000"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.upstream.String() != "http://127.0.0.1:3000/hook" || c.listen != ":9000" || c.maxBody != 2<<20 ||
		c.upstreamTimeout != 3*time.Second || c.apiListen != "[::1]:9999" {
		t.Fatalf("config %+v", c)
	}
	if len(c.upstreamHeaders) != 2 || c.upstreamHeaders[0].Name != "a-one" || c.upstreamHeaders[1].Name != "X-Two" && c.upstreamHeaders[1].Name != "x-two" {
		t.Fatalf("headers %+v", c.upstreamHeaders)
	}
	if _, err := parseServe(nil, func(k string) string {
		if k == "CTWA_SESSION_WINDOW" {
			return "soon"
		}
		return env[k]
	}, io.Discard); err == nil || !strings.Contains(err.Error(), "CTWA_SESSION_WINDOW") {
		t.Fatalf("bad env value error %v does not name the variable", err)
	}
}

func TestDefaultsMatchSpec(t *testing.T) {
	c, err := parseServe([]string{"-upstream", "http://h"}, noEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.listen != ":8080" || c.apiListen != "127.0.0.1:9090" || c.dataDir != "./data" || c.clientID != "default" ||
		c.appID != "onprem" || c.upstreamTimeout != 10*time.Second || c.maxBody != 8<<20 ||
		c.sessionWindow != 24*time.Hour || c.attributionWindow != 672*time.Hour || c.timezone.String() != "UTC" ||
		c.logFormat != "text" {
		t.Fatalf("defaults %+v", c)
	}
}

func TestSizes(t *testing.T) {
	for in, want := range map[string]int{"8MiB": 8 << 20, "512KiB": 512 << 10, "1MB": 1e6, "100": 100, "3GiB": 0, "-1": 0, "1GiB": 1 << 30, "2 GiB": 2 << 30} {
		got, err := parseSize(in)
		if want == 0 {
			if err == nil {
				t.Errorf("parseSize(%q) accepted %d", in, got)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}

func TestHelpVersionAndUnknownCommand(t *testing.T) {
	var out bytes.Buffer
	e := Env{Getenv: noEnv, Stdout: &out, Stderr: io.Discard}
	if err := Run(context.Background(), []string{"-help"}, e); err != nil {
		t.Fatalf("-help: %v", err)
	}
	for _, flag := range []string{"-upstream", "-listen", "-api-listen", "-data", "-client-id", "-app-id", "-api-key",
		"-api-token", "-app-secret", "-upstream-header", "-upstream-timeout", "-max-body", "-session-window",
		"-attribution-window", "-timezone", "-log-format", `default "127.0.0.1:9090"`, "default 8MiB"} {
		if !strings.Contains(out.String(), flag) {
			t.Errorf("-help does not document %s", flag)
		}
	}
	out.Reset()
	if err := Run(context.Background(), []string{"version"}, e); err != nil || !strings.HasPrefix(out.String(), "ctwa-sidecar ") {
		t.Fatalf("version: %v %q", err, out.String())
	}
	if err := Run(context.Background(), []string{"frobnicate"}, e); err == nil || !strings.Contains(err.Error(), `"frobnicate"`) {
		t.Fatalf("unknown command: %v", err)
	}
}

func TestSecretFileAndFlagTogetherAreRefused(t *testing.T) {
	f := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(f, []byte("tok"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := parseServe([]string{"-upstream", "http://h", "-api-token", "x", "-api-token-file", f}, noEnv, nil)
	if err == nil || !strings.Contains(err.Error(), "-api-token-file") {
		t.Fatalf("both forms: %v", err)
	}
	c, err := parseServe([]string{"-upstream", "http://h", "-api-token-file", f}, noEnv, nil)
	if err != nil || c.apiToken != "tok" {
		t.Fatalf("token from file: %v %q", err, c.apiToken)
	}
	if _, err := parseServe([]string{"-upstream", "http://h", "-api-key-file", f + ".missing"}, noEnv, nil); err == nil {
		t.Fatal("a missing key file was accepted")
	}
}
