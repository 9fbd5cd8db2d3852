// Package natstest runs real, in-process nats-server JetStream servers for
// tests.
//
// It exists so that code built on JetStream (atomic batches, direct get,
// ordered consumers, behaviour while nodes are down) is tested against the
// real server rather than a mock: those semantics live in the server and are
// exactly what a fake would get wrong. Servers listen on 127.0.0.1 only, on
// ports picked at run time, keep their data under t.TempDir(), and are shut
// down by t.Cleanup.
//
// Server logs are discarded unless CTWA_NATS_LOG=1, in which case they go to
// t.Log.
package natstest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ClusterName is the JetStream cluster name used when n > 1.
const ClusterName = "ctwa-test"

// readyTimeout bounds every wait for a node or for JetStream.
const readyTimeout = 20 * time.Second

// Servers is a set of nodes started by Cluster. Its methods must be called
// from the test goroutine (they may call t.Fatal).
type Servers struct {
	t      testing.TB
	ports  []int // client ports, fixed for the life of the test
	cports []int // cluster (route) ports; unused when n == 1
	dirs   []string
	srvs   []*server.Server // nil while a node is stopped
}

// Cluster starts n nodes and waits until JetStream is usable. n == 1 gives a
// plain single JetStream server; n > 1 gives a JetStream cluster of n nodes
// with routes between all of them.
func Cluster(t testing.TB, n int) *Servers {
	t.Helper()
	if n < 1 {
		t.Fatalf("natstest: need at least one node, got %d", n)
	}
	// Client and route ports in one pick: two picks may hand out a port twice (the
	// first pick's listeners are closed by then), and a node cannot bind it then.
	ports := freePorts(t, 2*n)
	s := &Servers{
		t:      t,
		ports:  ports[:n],
		dirs:   make([]string, n),
		srvs:   make([]*server.Server, n),
		cports: ports[n:],
	}
	base := t.TempDir()
	for i := range n {
		s.dirs[i] = filepath.Join(base, fmt.Sprintf("n%d", i))
	}
	t.Cleanup(s.StopAll)
	// Start every node before waiting on any: a clustered node cannot elect a
	// meta leader until a quorum of its peers is up.
	for i := range n {
		s.launch(i)
	}
	s.waitJetStream()
	return s
}

// freePorts asks the kernel for n distinct free loopback ports. The listeners
// are held open until all are chosen so the same port is not handed out
// twice; the small window before the server binds is accepted for tests.
// Fixed ports (rather than port -1) are needed so a restarted node comes back
// at the same address, and so routes can be configured up front.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, n)
	ls := make([]net.Listener, n)
	for i := range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("natstest: pick port: %v", err)
		}
		ls[i] = l
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// opts builds fresh options for node i; the server mutates the Options it is
// given, so they are not reused across restarts.
func (s *Servers) opts(i int) *server.Options {
	o := &server.Options{
		ServerName: fmt.Sprintf("ctwa-n%d", i),
		Host:       "127.0.0.1",
		Port:       s.ports[i],
		JetStream:  true,
		StoreDir:   s.dirs[i],
		NoSigs:     true,
		NoLog:      true,
		// Bounds on resources so several test servers fit on a small machine.
		JetStreamMaxMemory: 256 << 20,
		JetStreamMaxStore:  1 << 30,
	}
	if len(s.ports) > 1 {
		o.Cluster = server.ClusterOpts{
			Name: ClusterName,
			Host: "127.0.0.1",
			Port: s.cports[i],
		}
		for j, p := range s.cports {
			if j != i {
				o.Routes = append(o.Routes, server.RoutesFromStr(fmt.Sprintf("nats://127.0.0.1:%d", p))...)
			}
		}
	}
	return o
}

// launch starts node i and waits until it accepts client connections.
func (s *Servers) launch(i int) {
	s.t.Helper()
	if s.srvs[i] != nil {
		s.t.Fatalf("natstest: node %d already running", i)
	}
	srv, err := server.NewServer(s.opts(i))
	if err != nil {
		s.t.Fatalf("natstest: new server %d: %v", i, err)
	}
	if os.Getenv("CTWA_NATS_LOG") == "1" {
		srv.SetLoggerV2(&tlog{t: s.t, name: srv.Name()}, false, false, false)
	}
	srv.Start()
	if !srv.ReadyForConnections(readyTimeout) {
		srv.Shutdown()
		s.t.Fatalf("natstest: node %d not ready for connections within %v", i, readyTimeout)
	}
	s.srvs[i] = srv
}

// waitJetStream polls the JetStream account info through every running node
// until it succeeds. In a cluster that answer needs an elected meta leader, so
// success means JetStream API calls will work from any node.
func (s *Servers) waitJetStream() {
	s.t.Helper()
	deadline := time.Now().Add(readyTimeout)
	for i, srv := range s.srvs {
		if srv == nil {
			continue
		}
		var lastErr error
		for {
			if lastErr = accountInfo(s.URL(i)); lastErr == nil {
				break
			}
			if time.Now().After(deadline) {
				s.t.Fatalf("natstest: JetStream not usable via node %d within %v: %v", i, readyTimeout, lastErr)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func accountInfo(url string) error {
	nc, err := nats.Connect(url, nats.NoReconnect(), nats.Timeout(time.Second))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err = js.AccountInfo(ctx)
	return err
}

// URLs returns the client URLs of all nodes, comma separated, as accepted by
// nats.Connect. Stopped nodes are included: the client fails over past them.
func (s *Servers) URLs() string {
	urls := make([]string, len(s.ports))
	for i := range s.ports {
		urls[i] = s.URL(i)
	}
	return strings.Join(urls, ",")
}

// URL returns the client URL of node i.
func (s *Servers) URL(i int) string {
	return fmt.Sprintf("nats://127.0.0.1:%d", s.ports[i])
}

// Stop shuts node i down and waits until it is gone. Stopping a stopped node
// is a no-op.
func (s *Servers) Stop(i int) {
	if srv := s.srvs[i]; srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
		s.srvs[i] = nil
	}
}

// Start restarts node i on the same ports and store directory, so its
// JetStream data survives. It waits until the node accepts connections and,
// if a majority of nodes is then running, until JetStream is usable (without a
// quorum no meta leader can be elected, so there would be nothing to wait for).
func (s *Servers) Start(i int) {
	s.t.Helper()
	s.launch(i)
	running := 0
	for _, srv := range s.srvs {
		if srv != nil {
			running++
		}
	}
	if running > len(s.srvs)/2 {
		s.waitJetStream()
	}
}

// StreamLeader is the index of the running node that leads stream (of the global
// account, where clients without credentials are), or -1 while none does: before the
// stream exists, or during an election.
func (s *Servers) StreamLeader(stream string) int {
	for i, srv := range s.srvs {
		if srv != nil && srv.JetStreamIsStreamLeader(srv.GlobalAccount().Name, stream) {
			return i
		}
	}
	return -1
}

// StopAll shuts every running node down.
func (s *Servers) StopAll() {
	for i := range s.srvs {
		s.Stop(i)
	}
}

// StartAll starts every stopped node and waits until JetStream is usable.
func (s *Servers) StartAll() {
	s.t.Helper()
	for i, srv := range s.srvs {
		if srv == nil {
			s.launch(i)
		}
	}
	s.waitJetStream()
}

// tlog routes server logs to t.Log (only with CTWA_NATS_LOG=1).
type tlog struct {
	t    testing.TB
	name string
}

func (l *tlog) logf(level, format string, v ...any) {
	l.t.Logf("[%s %s] %s", l.name, level, fmt.Sprintf(format, v...))
}

func (l *tlog) Noticef(format string, v ...any) { l.logf("INF", format, v...) }
func (l *tlog) Warnf(format string, v ...any)   { l.logf("WRN", format, v...) }
func (l *tlog) Fatalf(format string, v ...any)  { l.logf("FTL", format, v...) }
func (l *tlog) Errorf(format string, v ...any)  { l.logf("ERR", format, v...) }
func (l *tlog) Debugf(format string, v ...any)  { l.logf("DBG", format, v...) }
func (l *tlog) Tracef(format string, v ...any)  { l.logf("TRC", format, v...) }
