package sidecar

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
)

// TestSpendSyncFlags: pairs are act_<digits>=<app>, repeatable or one per line from the
// environment; a sync needs a token (which alone then turns no conversions on), sane
// periods; every refusal names its flag.
func TestSpendSyncFlags(t *testing.T) {
	parse := func(env map[string]string, args ...string) (*config, error) {
		return parseServe(append([]string{"-upstream", "http://h"}, args...), func(k string) string { return env[k] }, io.Discard)
	}
	c, err := parse(nil, "-meta-token", "EAAG", "-spend-sync", "act_174816537731874=106540352242922",
		"-spend-sync", "act_2=onprem")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.spend.pairs.String(); got != "act_174816537731874=106540352242922\nact_2=onprem" || c.capi.events != nil {
		t.Errorf("pairs %q, conversions %v; want both pairs and conversions off", got, c.capi.events)
	}
	if c.spend.every != time.Hour || c.spend.days != 28 || c.spend.backfillDays != 90 {
		t.Errorf("defaults: every %s, days %d, backfill %d", c.spend.every, c.spend.days, c.spend.backfillDays)
	}
	c, err = parse(map[string]string{"CTWA_SPEND_SYNC": "act_1=a\nact_2=b", "CTWA_META_TOKEN": "EAAG"})
	if err != nil || len(c.spend.pairs) != 2 {
		t.Errorf("from the environment: %v, %v", c.spend.pairs, err)
	}
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{[]string{"-spend-sync", "act_1=a"}, "-meta-token"},
		{[]string{"-meta-token", "x", "-spend-sync", "174816537731874=a"}, "act_"},
		{[]string{"-meta-token", "x", "-spend-sync", "act_1=a", "-spend-sync", "act_1=b"}, "twice"},
		{[]string{"-meta-token", "x", "-spend-sync", "act_1=a", "-spend-sync-every", "10s"}, "-spend-sync-every"},
		{[]string{"-meta-token", "x", "-spend-sync", "act_1=a", "-spend-sync-days", "0"}, "-spend-sync-days"},
		{[]string{"-meta-token", "x", "-spend-sync", "act_1=a", "-spend-backfill-days", "7"}, "-spend-backfill-days"},
		{[]string{"-meta-token", "x"}, "-spend-sync"}, // a token for nothing
	} {
		if _, err := parse(nil, tc.args...); err == nil || !strings.Contains(err.Error(), tc.flag) {
			t.Errorf("%q: %v, want a refusal naming %s", tc.args, err, tc.flag)
		}
	}
	var help bytes.Buffer
	parseServe([]string{"-help"}, noEnv, &help)
	for _, want := range []string{"-spend-sync", "-spend-sync-every", "-spend-sync-days", "-spend-backfill-days"} {
		if !strings.Contains(help.String(), want) {
			t.Errorf("-help lacks %q", want)
		}
	}
}
