package sidecar

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestConnectionFlagsDefaultsEnvAndRefusals: the connection limits of issue 12 have their
// defaults, read CTWA_ variables, show in -help, and refuse values that make no sense.
func TestConnectionFlagsDefaultsEnvAndRefusals(t *testing.T) {
	c, err := parseServe([]string{"-upstream", "http://h"}, noEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.maxConns != 10000 || c.maxConnsPerIP != 1000 || c.apiMaxConns != 1000 || c.headerTimeout != 10*time.Second {
		t.Fatalf("defaults: -max-conns %d, -max-conns-per-ip %d, -api-max-conns %d, -header-timeout %s",
			c.maxConns, c.maxConnsPerIP, c.apiMaxConns, c.headerTimeout)
	}
	env := map[string]string{"CTWA_MAX_CONNS_PER_IP": "0", "CTWA_API_MAX_CONNS": "50", "CTWA_HEADER_TIMEOUT": "3s"}
	c, err = parseServe([]string{"-upstream", "http://h", "-api-max-conns", "60"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.maxConnsPerIP != 0 || c.apiMaxConns != 60 || c.headerTimeout != 3*time.Second {
		t.Fatalf("from env: -max-conns-per-ip %d, -api-max-conns %d (command line wins), -header-timeout %s",
			c.maxConnsPerIP, c.apiMaxConns, c.headerTimeout)
	}
	for _, bad := range [][]string{{"-max-conns-per-ip", "-1"}, {"-api-max-conns", "0"}, {"-header-timeout", "0s"}} {
		_, err := parseServe(append([]string{"-upstream", "http://h"}, bad...), noEnv, io.Discard)
		if err == nil || !strings.Contains(err.Error(), bad[0]) {
			t.Errorf("parseServe(%q) = %v, want a refusal naming %s", bad, err, bad[0])
		}
	}
	var help bytes.Buffer
	parseServe([]string{"-help"}, noEnv, &help)
	for _, want := range []string{"-max-conns-per-ip", "(default 1000)", "-api-max-conns", "-header-timeout", "(default 10s)"} {
		if !strings.Contains(help.String(), want) {
			t.Errorf("-help lacks %q", want)
		}
	}
}

// TestFileLimitWarning: an open-file limit below the connection limits' need (10 000 +
// 1 000 + 512 upstream + 512 store = 12 024 by default) is one warning naming both
// numbers and the fix; a limit that holds them is silent.
func TestFileLimitWarning(t *testing.T) {
	c, err := parseServe([]string{"-upstream", "http://h"}, noEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		limit uint64
		warns bool
	}{{1024, true}, {12023, true}, {12024, false}, {1 << 20, false}} {
		var log bytes.Buffer
		c.warnFileLimit(slog.New(slog.NewTextHandler(&log, nil)), tc.limit)
		got := log.String()
		if !tc.warns {
			if got != "" {
				t.Errorf("limit %d: %q, want no warning", tc.limit, got)
			}
			continue
		}
		for _, want := range []string{fmt.Sprintf("limit=%d", tc.limit), "need=12024", "ulimit -n", "LimitNOFILE"} {
			if !strings.Contains(got, want) {
				t.Errorf("limit %d: warning %q lacks %q", tc.limit, got, want)
			}
		}
	}
}
