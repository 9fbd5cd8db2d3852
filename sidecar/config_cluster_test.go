package sidecar

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
)

// TestClusterFlags: the stream defaults to ctwa_<client-id>; a read replica (-listen "")
// needs -nats and takes no -upstream; every refusal names its flag.
func TestClusterFlags(t *testing.T) {
	parse := func(args ...string) (*config, error) {
		return parseServe(args, noEnv, io.Discard)
	}
	c, err := parse("-upstream", "http://h", "-client-id", "acme", "-nats", "nats://127.0.0.1:4222")
	if err != nil {
		t.Fatal(err)
	}
	if c.cluster.stream != "ctwa_acme" || c.cluster.replicas != 3 || c.cluster.timeout != 2*time.Second {
		t.Errorf("defaults: stream %q, replicas %d, timeout %s; want ctwa_acme, 3, 2s", c.cluster.stream, c.cluster.replicas, c.cluster.timeout)
	}
	c, err = parse("-listen", "", "-nats", "nats://a:4222,nats://b:4222", "-nats-stream", "shop-1")
	if err != nil || c.upstream != nil || c.cluster.stream != "shop-1" {
		t.Errorf("a read replica: %v, upstream %v, stream %q", err, c.upstream, c.cluster.stream)
	}
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{[]string{"-listen", ""}, "-nats"},
		{[]string{"-listen", "", "-upstream", "http://h", "-nats", "nats://a"}, "-upstream"},
		{[]string{"-upstream", "http://h", "-nats-stream", "s"}, "-nats"},
		{[]string{"-upstream", "http://h", "-nats", "nats://a", "-nats-stream", "a.b"}, "-nats-stream"},
		{[]string{"-upstream", "http://h", "-nats", "nats://a", "-client-id", "a b"}, "-nats-stream"},
		{[]string{"-upstream", "http://h", "-nats", "nats://a", "-nats-stream", "a,b"}, "several streams"},
		{[]string{"-upstream", "http://h", "-nats", "nats://a", "-nats-replicas", "7"}, "-nats-replicas"},
		{[]string{"-upstream", "http://h", "-nats", "nats://a", "-nats-timeout", "0s"}, "-nats-timeout"},
	} {
		if _, err := parse(tc.args...); err == nil || !strings.Contains(err.Error(), tc.flag) {
			t.Errorf("%q: %v, want a refusal naming %s", tc.args, err, tc.flag)
		}
	}
	var help bytes.Buffer
	parseServe([]string{"-help"}, noEnv, &help)
	for _, want := range []string{"-nats ", "-nats-creds", "-nats-stream", "-nats-replicas", "-nats-timeout", "read replica"} {
		if !strings.Contains(help.String(), want) {
			t.Errorf("-help lacks %q", want)
		}
	}
}
