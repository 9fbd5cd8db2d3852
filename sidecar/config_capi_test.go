package sidecar

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConversionFlags: conversions are off without -meta-token; with it they need a WABA
// and a valid map, and each refusal names its flag; the token can come from a file.
func TestConversionFlags(t *testing.T) {
	parse := func(args ...string) (*config, error) {
		return parseServe(append([]string{"-upstream", "http://h"}, args...), noEnv, io.Discard)
	}
	c, err := parse()
	if err != nil || c.capi.events != nil {
		t.Fatalf("no -meta-token: conversions %v, err %v; want off", c.capi.events, err)
	}
	c, err = parse("-meta-token", "EAAG", "-waba-id", "102290129340398", "-capi-map", "signup=LeadSubmitted")
	if err != nil || c.capi.events.String() != "converted=QualifiedLead,lead=LeadSubmitted,purchase=Purchase,signup=LeadSubmitted" {
		t.Fatalf("conversions on: %v, %v", c.capi.events, err)
	}
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{[]string{"-meta-token", "EAAG"}, "-waba-id"},
		{[]string{"-meta-token", "EAAG", "-waba-id", "x1"}, "-waba-id"},
		{[]string{"-meta-token", "EAAG", "-waba-id", "1", "-capi-map", "purchase=Buy"}, "-capi-map"},
		{[]string{"-meta-token", "EAAG", "-waba-id", "1", "-capi-dataset", "abc"}, "-capi-dataset"},
		{[]string{"-meta-token", "EAAG", "-waba-id", "1", "-graph-version", "23"}, "-graph-version"},
		{[]string{"-meta-token", "EAAG", "-waba-id", "1", "-graph-url", "graph.facebook.com"}, "-graph-url"},
		{[]string{"-capi-dataset", "1"}, "-meta-token"},
	} {
		if _, err := parse(tc.args...); err == nil || !strings.Contains(err.Error(), tc.flag) {
			t.Errorf("%q: %v, want a refusal naming %s", tc.args, err, tc.flag)
		}
	}
	token := filepath.Join(t.TempDir(), "token")
	os.WriteFile(token, []byte("EAAG-from-file\n"), 0o600)
	if c, err := parse("-meta-token-file", token, "-waba-id", "1"); err != nil || c.capi.metaToken != "EAAG-from-file" {
		t.Errorf("-meta-token-file: %q, %v", c.capi.metaToken, err)
	}
	if c, err := parse("-capi-dry-run"); err != nil || c.capi.events == nil {
		t.Errorf("-capi-dry-run alone: %v, %v; want conversions on, nothing sent", c.capi.events, err)
	}
	var help bytes.Buffer
	parseServe([]string{"-help"}, noEnv, &help)
	for _, want := range []string{"-meta-token", "-meta-token-file", "-capi-dataset", "-waba-id", "-graph-url",
		"-graph-version", "-capi-map", "-capi-test-code", "-capi-dry-run", "v23.0"} {
		if !strings.Contains(help.String(), want) {
			t.Errorf("-help lacks %q", want)
		}
	}
}
