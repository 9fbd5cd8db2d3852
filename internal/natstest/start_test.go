package natstest

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestStartOutsideATest: Start, as the bench calls it, refuses a config it cannot run
// naming the field, and otherwise gives a node that takes JetStream writes, keeps them
// across a restart on the same port and store, and stops (again) without complaint.
func TestStartOutsideATest(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Nodes: 0, Dir: t.TempDir()}, "at least one node"},
		{Config{Nodes: 1}, "Config.Dir"},
	} {
		if s, err := Start(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			if s != nil {
				s.StopAll()
			}
			t.Errorf("Start(%+v): %v, want an error naming %q", tc.cfg, err, tc.want)
		}
	}

	var lines atomic.Int32 // Logf is called from the server's goroutines
	s, err := Start(Config{Nodes: 1, Dir: t.TempDir(), Logf: func(string, ...any) { lines.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.StopAll()
	if !strings.HasPrefix(s.URLs(), "nats://127.0.0.1:") || strings.Contains(s.URLs(), ",") {
		t.Errorf("URLs %q: want one loopback URL", s.URLs())
	}
	if lines.Load() == 0 {
		t.Error("Logf got no server log line")
	}
	publish := func() uint64 {
		t.Helper()
		_, js := JetStream(t, s.URL(0), nats.NoReconnect())
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "start", Subjects: []string{"start.>"}}); err != nil {
			t.Fatal(err)
		}
		ack, err := js.Publish(ctx, "start.x", []byte("x"))
		if err != nil {
			t.Fatal(err)
		}
		return ack.Sequence
	}
	if seq := publish(); seq != 1 {
		t.Errorf("first publish at sequence %d, want 1", seq)
	}
	s.Stop(0)
	if err := s.Start(0); err != nil {
		t.Fatal(err)
	}
	if seq := publish(); seq != 2 {
		t.Errorf("publish after the restart at sequence %d, want 2 (the store kept the first)", seq)
	}
	s.StopAll()
	s.StopAll()
}
