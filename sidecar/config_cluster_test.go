package sidecar

import (
	"bytes"
	"io"
	"path/filepath"
	"reflect"
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
		{[]string{"-upstream", "http://h", "-nats", "nats://a", "-nats-replicas", "7"}, "-nats-replicas"},
		{[]string{"-upstream", "http://h", "-nats", "nats://a", "-nats-timeout", "0s"}, "-nats-timeout"},
	} {
		if _, err := parse(tc.args...); err == nil || !strings.Contains(err.Error(), tc.flag) {
			t.Errorf("%q: %v, want a refusal naming %s", tc.args, err, tc.flag)
		}
	}
	var help bytes.Buffer
	parseServe([]string{"-help"}, noEnv, &help)
	for _, want := range []string{"-nats ", "-nats-creds", "-nats-stream", "-nats-replicas", "-nats-timeout", "read replica", "fleet view", "client=stream"} {
		if !strings.Contains(help.String(), want) {
			t.Errorf("-help lacks %q", want)
		}
	}
}

// TestFleetStreamFlags: a read replica may follow several streams, each one client's log
// in a store of its own under -data; each element is client=stream, or a bare
// ctwa_<client> or <client>. One bare stream serves -client-id, on a member as on a
// replica. A member follows one stream of its own client; duplicates and bad names are
// refused naming -nats-stream.
func TestFleetStreamFlags(t *testing.T) {
	replica := func(args ...string) (*config, error) {
		return parseServe(append([]string{"-listen", "", "-nats", "nats://a", "-data", "/d"}, args...), noEnv, io.Discard)
	}
	at := func(client, stream, dir string) clientLog { return clientLog{followed{client, stream}, dir} }
	sub := func(client string) string { return filepath.Join("/d", client) }
	for _, tc := range []struct {
		args []string
		want []clientLog
	}{
		{[]string{"-nats-stream", "ctwa_a,ctwa_b"},
			[]clientLog{at("a", "ctwa_a", sub("a")), at("b", "ctwa_b", sub("b"))}},
		{[]string{"-nats-stream", "shop=s1, ctwa_b ,team-7"},
			[]clientLog{at("shop", "s1", sub("shop")), at("b", "ctwa_b", sub("b")), at("team-7", "team-7", sub("team-7"))}},
		{[]string{"-nats-stream", "ctwa_a"}, []clientLog{at("default", "ctwa_a", "/d")}},
		{[]string{"-client-id", "acme"}, []clientLog{at("acme", "ctwa_acme", "/d")}},
		{[]string{"-nats-stream", "x=s"}, []clientLog{at("x", "s", "/d")}},
	} {
		if c, err := replica(tc.args...); err != nil || !reflect.DeepEqual(c.logs, tc.want) {
			t.Errorf("%q: %v, logs %+v; want %+v", tc.args, err, c, tc.want)
		}
	}
	member := []string{"-upstream", "http://h", "-client-id", "acme", "-nats", "nats://a", "-nats-stream", "acme=s", "-data", "/d"}
	if c, err := parseServe(member, noEnv, io.Discard); err != nil || !reflect.DeepEqual(c.logs, []clientLog{at("acme", "s", "/d")}) {
		t.Errorf("a member naming its own client: %v, %+v", err, c)
	}
	for _, tc := range []struct {
		args  []string
		wants []string
	}{
		{[]string{"-upstream", "http://h", "-listen", ":0", "-nats-stream", "ctwa_a,ctwa_b"}, []string{"-nats-stream", `-listen ""`}},
		{[]string{"-upstream", "http://h", "-listen", ":0", "-client-id", "acme", "-nats-stream", "other=s"}, []string{"-nats-stream", "-client-id"}},
		{[]string{"-nats-stream", "ctwa_a,a=s2"}, []string{"-nats-stream", `client "a" is listed twice`}},
		{[]string{"-nats-stream", "ctwa_a,A=s2"}, []string{"-nats-stream", "twice"}},
		{[]string{"-nats-stream", "s,b=s"}, []string{"-nats-stream", `stream "s" is listed twice`}},
		{[]string{"-nats-stream", "ctwa_a,a.b"}, []string{"-nats-stream", `"a.b"`}},
		{[]string{"-nats-stream", "ctwa_a,,ctwa_b"}, []string{"-nats-stream", `stream name ""`}},
		{[]string{"-nats-stream", "ctwa_,ctwa_b"}, []string{"-nats-stream", `stream "ctwa_" names no valid client id: write client=ctwa_`}},
		{[]string{"-nats-stream", "a/b=s,ctwa_c"}, []string{"-nats-stream", `client id "a/b"`}},
		{[]string{"-nats-stream", "../x=s"}, []string{"-nats-stream", `client id "../x"`}},
		{[]string{"-nats-stream", "ctwa_a,ctwa_b", "-meta-token", "EAAG", "-waba-id", "1"}, []string{"-waba-id", "fleet view"}},
		{[]string{"-nats-stream", "ctwa_a,ctwa_b", "-meta-token", "EAAG", "-spend-sync", "act_1=a"}, []string{"-spend-sync", "fleet view"}},
	} {
		_, err := replica(tc.args...)
		for _, want := range tc.wants {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%q: %v, want a refusal saying %s", tc.args, err, want)
			}
		}
	}
}
