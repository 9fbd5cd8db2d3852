// Package natstest runs real, in-process nats-server JetStream servers for
// tests and for the bench.
//
// It exists so that code built on JetStream (atomic batches, direct get,
// ordered consumers, behaviour while nodes are down) is tested against the
// real server rather than a mock: those semantics live in the server and are
// exactly what a fake would get wrong. Servers listen on 127.0.0.1 only, on
// ports picked at run time. Cluster is the tests' entry: data under
// t.TempDir(), shut down by t.Cleanup, a failure ends the test; Start is the
// same outside a test (the bench), with errors returned.
//
// In tests, server logs are discarded unless CTWA_NATS_LOG=1, in which case
// they go to t.Log.
package natstest

import (
	"context"
	"errors"
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

// Config says which nodes Start runs.
type Config struct {
	// Nodes is how many: 1 gives a plain JetStream server, more a JetStream
	// cluster with routes between all of them.
	Nodes int
	// Dir holds a store directory per node (n0, n1, …); the caller removes it.
	Dir string
	// Logf, when set, receives the servers' log lines; nil discards them.
	Logf func(format string, v ...any)
}

// Nodes is a set of running (or stopped) nodes started by Start, usable
// outside tests: its methods return errors. It is not safe for concurrent use.
type Nodes struct {
	cfg    Config
	ports  []int // client ports, fixed for the life of the set
	cports []int // cluster (route) ports; unused when there is one node
	dirs   []string
	srvs   []*server.Server // nil while a node is stopped
}

// Start starts cfg.Nodes nodes on 127.0.0.1, on ports picked now, and waits
// until JetStream is usable through every one of them. On an error, the nodes
// already started are stopped again. Stop them with StopAll.
func Start(cfg Config) (*Nodes, error) {
	n := cfg.Nodes
	if n < 1 {
		return nil, fmt.Errorf("natstest: need at least one node, got %d", n)
	}
	if cfg.Dir == "" {
		return nil, errors.New("natstest: Config.Dir is empty: the nodes need a directory for their stores")
	}
	// Client and route ports in one pick: two picks may hand out a port twice (the
	// first pick's listeners are closed by then), and a node cannot bind it then.
	ports, err := freePorts(2 * n)
	if err != nil {
		return nil, err
	}
	s := &Nodes{cfg: cfg, ports: ports[:n], dirs: make([]string, n), srvs: make([]*server.Server, n), cports: ports[n:]}
	for i := range n {
		s.dirs[i] = filepath.Join(cfg.Dir, fmt.Sprintf("n%d", i))
	}
	// Start every node before waiting on any: a clustered node cannot elect a
	// meta leader until a quorum of its peers is up.
	for i := range n {
		if err := s.launch(i); err != nil {
			s.StopAll()
			return nil, err
		}
	}
	if err := s.waitJetStream(); err != nil {
		s.StopAll()
		return nil, err
	}
	return s, nil
}

// freePorts asks the kernel for n distinct free loopback ports. The listeners
// are held open until all are chosen so the same port is not handed out
// twice; the small window before the server binds is accepted for tests.
// Fixed ports (rather than port -1) are needed so a restarted node comes back
// at the same address, and so routes can be configured up front.
func freePorts(n int) ([]int, error) {
	ports := make([]int, n)
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for i := range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("natstest: cannot pick a loopback port: %w", err)
		}
		ls = append(ls, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}

// opts builds fresh options for node i; the server mutates the Options it is
// given, so they are not reused across restarts.
func (s *Nodes) opts(i int) *server.Options {
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
func (s *Nodes) launch(i int) error {
	if s.srvs[i] != nil {
		return fmt.Errorf("natstest: node %d already running", i)
	}
	srv, err := server.NewServer(s.opts(i))
	if err != nil {
		return fmt.Errorf("natstest: new server %d: %w", i, err)
	}
	if s.cfg.Logf != nil {
		srv.SetLoggerV2(&logger{logf: s.cfg.Logf, name: srv.Name()}, false, false, false)
	}
	srv.Start()
	if !srv.ReadyForConnections(readyTimeout) {
		srv.Shutdown()
		return fmt.Errorf("natstest: node %d not ready for connections within %v", i, readyTimeout)
	}
	s.srvs[i] = srv
	return nil
}

// waitJetStream polls the JetStream account info through every running node
// until it succeeds. In a cluster that answer needs an elected meta leader, so
// success means JetStream API calls will work from any node.
func (s *Nodes) waitJetStream() error {
	deadline := time.Now().Add(readyTimeout)
	for i, srv := range s.srvs {
		if srv == nil {
			continue
		}
		for {
			err := accountInfo(s.URL(i))
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("natstest: JetStream not usable via node %d within %v: %w", i, readyTimeout, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
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
func (s *Nodes) URLs() string {
	urls := make([]string, len(s.ports))
	for i := range s.ports {
		urls[i] = s.URL(i)
	}
	return strings.Join(urls, ",")
}

// URL returns the client URL of node i.
func (s *Nodes) URL(i int) string {
	return fmt.Sprintf("nats://127.0.0.1:%d", s.ports[i])
}

// Stop shuts node i down and waits until it is gone. Stopping a stopped node
// is a no-op.
func (s *Nodes) Stop(i int) {
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
func (s *Nodes) Start(i int) error {
	if err := s.launch(i); err != nil {
		return err
	}
	running := 0
	for _, srv := range s.srvs {
		if srv != nil {
			running++
		}
	}
	if running > len(s.srvs)/2 {
		return s.waitJetStream()
	}
	return nil
}

// StreamLeader is the index of the running node that leads stream (of the global
// account, where clients without credentials are), or -1 while none does: before the
// stream exists, or during an election.
func (s *Nodes) StreamLeader(stream string) int {
	for i, srv := range s.srvs {
		if srv != nil && srv.JetStreamIsStreamLeader(srv.GlobalAccount().Name, stream) {
			return i
		}
	}
	return -1
}

// StopAll shuts every running node down. It may be called again.
func (s *Nodes) StopAll() {
	for i := range s.srvs {
		s.Stop(i)
	}
}

// StartAll starts every stopped node and waits until JetStream is usable.
func (s *Nodes) StartAll() error {
	for i, srv := range s.srvs {
		if srv == nil {
			if err := s.launch(i); err != nil {
				return err
			}
		}
	}
	return s.waitJetStream()
}

// Servers is a set of nodes started by Cluster for a test: Nodes whose Start
// and StartAll end the test on an error. Its methods must be called from the
// test goroutine.
type Servers struct {
	*Nodes
	t testing.TB
}

// Cluster starts n nodes for a test and waits until JetStream is usable. n == 1
// gives a plain single JetStream server; n > 1 gives a JetStream cluster of n
// nodes with routes between all of them. The stores are under t.TempDir(), and
// t.Cleanup stops the nodes.
func Cluster(t testing.TB, n int) *Servers {
	t.Helper()
	cfg := Config{Nodes: n, Dir: t.TempDir()}
	if os.Getenv("CTWA_NATS_LOG") == "1" {
		cfg.Logf = t.Logf
	}
	nodes, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nodes.StopAll)
	return &Servers{Nodes: nodes, t: t}
}

// Start restarts node i (see Nodes.Start), ending the test if it cannot.
func (s *Servers) Start(i int) {
	s.t.Helper()
	if err := s.Nodes.Start(i); err != nil {
		s.t.Fatal(err)
	}
}

// StartAll starts every stopped node (see Nodes.StartAll), ending the test if
// it cannot.
func (s *Servers) StartAll() {
	s.t.Helper()
	if err := s.Nodes.StartAll(); err != nil {
		s.t.Fatal(err)
	}
}

// logger routes server logs to Config.Logf.
type logger struct {
	logf func(format string, v ...any)
	name string
}

func (l *logger) log(level, format string, v ...any) {
	l.logf("[%s %s] %s", l.name, level, fmt.Sprintf(format, v...))
}

func (l *logger) Noticef(format string, v ...any) { l.log("INF", format, v...) }
func (l *logger) Warnf(format string, v ...any)   { l.log("WRN", format, v...) }
func (l *logger) Fatalf(format string, v ...any)  { l.log("FTL", format, v...) }
func (l *logger) Errorf(format string, v ...any)  { l.log("ERR", format, v...) }
func (l *logger) Debugf(format string, v ...any)  { l.log("DBG", format, v...) }
func (l *logger) Tracef(format string, v ...any)  { l.log("TRC", format, v...) }

// JetStream connects a test's own client to url (with opts) and returns the connection
// and its JetStream context; the connection is closed when the test ends.
func JetStream(t testing.TB, url string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("natstest: connect to %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("natstest: JetStream on %s: %v", url, err)
	}
	return nc, js
}
