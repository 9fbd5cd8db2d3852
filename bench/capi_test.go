package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestCapiModes: -capi up is a Graph stub that takes every event, down points at a
// refused port, off adds nothing, and anything else is refused naming the flag.
func TestCapiModes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	args, err := capiArgs(ctx, "up")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(args[len(args)-1]+"/v23.0/1/events", "application/json",
		strings.NewReader(`{"data":[{"event_name":"LeadSubmitted"},{"event_name":"Purchase"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"events_received":2`) {
		t.Errorf("stub answered %d %s", resp.StatusCode, body)
	}
	if args, _ := capiArgs(ctx, "down"); args[len(args)-1] != "http://127.0.0.1:1" {
		t.Errorf("down: %v", args)
	}
	if args, err := capiArgs(ctx, "off"); args != nil || err != nil {
		t.Errorf("off: %v %v", args, err)
	}
	if _, err := capiArgs(ctx, "on"); err == nil || !strings.Contains(err.Error(), "-capi") {
		t.Errorf("on: %v", err)
	}
}
