package proxy

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRemoteKey: connections count against their IPv4 address (also when it arrives
// IPv4-mapped) or their IPv6 /64, so that one host cannot take a fresh address per
// connection from its prefix.
func TestRemoteKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7":            "192.0.2.7",
		"::ffff:192.0.2.7":     "192.0.2.7",
		"2001:db8:1:2:aaaa::1": "2001:db8:1:2::",
		"2001:db8:1:2:bbbb::9": "2001:db8:1:2::",
		"2001:db8:1:3::1":      "2001:db8:1:3::",
	} {
		got := remoteKey(&net.TCPAddr{IP: net.ParseIP(in), Port: 40000})
		if got != netip.MustParseAddr(want) {
			t.Errorf("remoteKey(%s) = %s, want %s", in, got, want)
		}
	}
	if k := remoteKey(&net.UnixAddr{Name: "/tmp/x", Net: "unix"}); k.IsValid() {
		t.Errorf("a unix socket counts against %s, want no address", k)
	}
}

// TestGateGivesPlacesBack: a connection's place returns on its first Close only (fasthttp
// closes some twice), so a second close does not let an address past its cap.
func TestGateGivesPlacesBack(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := GateListener(raw, "gate-test", ServerLimits{MaxConnsPerIP: 2}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer ln.Close()
	accepted := make(chan net.Conn, 8)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	take := func(what string) net.Conn {
		select {
		case c := <-accepted:
			return c
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: not accepted", what)
			return nil
		}
	}
	refusedWith429 := func(c net.Conn) bool {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, _ := io.ReadAll(c)
		return strings.HasPrefix(string(b), "HTTP/1.1 429 ")
	}
	dial()
	first := take("first")
	dial()
	take("second")
	if !refusedWith429(dial()) {
		t.Fatal("a third connection from the address was not refused with 429")
	}
	first.Close()
	first.Close() // a second close gives nothing back
	dial()
	take("after a close")
	if !refusedWith429(dial()) {
		t.Fatal("after a double close the address holds more than its cap")
	}
}

// flakyListener fails its first fails accepts as a process out of descriptors does.
type flakyListener struct {
	net.Listener
	fails int
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if l.fails > 0 {
		l.fails--
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

// TestGateWaitsOutOfDescriptors: accept failing with EMFILE is counted and retried, not
// returned (fasthttp's Serve would stop the listener for good on it).
func TestGateWaitsOutOfDescriptors(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	series := `ctwa_sidecar_connections_rejected_total{listener="emfile-test",reason="accept_error"}`
	var logged strings.Builder
	ln := GateListener(&flakyListener{Listener: raw, fails: 3}, "emfile-test", ServerLimits{},
		slog.New(slog.NewTextHandler(&logged, nil)))
	defer ln.Close()
	c, err := net.Dial("tcp", raw.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := ln.Accept()
	if err != nil {
		t.Fatalf("Accept returned %v, want the connection after the descriptors came back", err)
	}
	got.Close()
	if n := counterValue(t, series); n != 3 {
		t.Errorf("%s = %v, want 3", series, n)
	}
	if n := strings.Count(logged.String(), "accepting connections failed"); n != 1 {
		t.Errorf("%d log lines for 3 failed accepts within moments, want 1:\n%s", n, logged.String())
	}
	raw.Close()
	if _, err := ln.Accept(); err == nil || !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept on a closed listener: %v, want net.ErrClosed", err)
	}
}
