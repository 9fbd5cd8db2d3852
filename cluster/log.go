// Package cluster keeps a sidecar's log on a NATS JetStream stream that a group of
// sidecars shares (SPEC §11). It implements engine.Log: appends are published to the
// stream, and every member mirrors the stream's entries, in stream order, into its own
// store, from which its materializer derives the views; so every member answers with the
// same numbers.
//
// Layout of a stream named S:
//   - S.e holds the log entries, kept for good (the message records);
//   - S.c.<hash of key> holds the claim of a dedupe key (a message id, an object id),
//     its value as payload, published with Nats-Expected-Last-Subject-Sequence: 0 and a
//     per-message TTL (Nats-TTL), so that only one member can ever take a key.
//
// An append is one atomic batch (Nats-Batch-Id …): the claims, then the entries. Either
// all of it is stored or none, so a claim never exists without the entry it let in,
// across members and crashes. A batch whose claim is already taken is rejected whole
// (error 10071); the lane looks the claims up and runs the requests again.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
	"github.com/ctwa-sidecar/ctwa-sidecar/storage"
)

// Config is what the log needs from the command line.
type Config struct {
	URLs     string // -nats: comma-separated server URLs
	Creds    string // -nats-creds: a credentials file, or ""
	Stream   string // -nats-stream
	Replicas int    // -nats-replicas: for a stream this creates
	// Timeout bounds a publish: past it the stream counts as unreachable and webhooks
	// are spooled (engine/spool.go).
	Timeout time.Duration
	Name    string // the connection's name, as NATS monitoring shows it
	Log     *slog.Logger
}

// validStream is what a JetStream stream name may hold and still be one subject token.
var validStream = regexp.MustCompile(`^[A-Za-z0-9_-]{1,200}$`)

// CheckStream explains what is wrong with a stream name, or returns nil.
func CheckStream(name string) error {
	if !validStream.MatchString(name) {
		return fmt.Errorf("stream name %q: use 1 to 200 letters, digits, '_' or '-'", name)
	}
	return nil
}

// Log is a log on a JetStream stream, mirrored into a local store.
type Log struct {
	cfg    Config
	nc     *nats.Conn
	js     jetstream.JetStream
	entry  string // subject of the entries
	claim  string // prefix of the claim subjects
	mirror *mirror
	stream atomic.Pointer[jetstream.Stream] // once found or created
	gauges *streamGauges
	reqs   chan *request
	stop   chan struct{}
	wg     sync.WaitGroup
}

// Open connects to the servers and starts mirroring the stream into store. It does not
// wait for the servers: a member that starts while they are down forwards, spools, and
// connects once they are back.
func Open(cfg Config, store *storage.Store) (*Log, error) {
	if err := CheckStream(cfg.Stream); err != nil {
		return nil, err
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	local, err := storage.OpenCopy(store)
	if err != nil {
		return nil, err
	}
	opts := []nats.Option{nats.Name(cfg.Name), nats.MaxReconnects(-1), nats.ReconnectWait(250 * time.Millisecond),
		nats.RetryOnFailedConnect(true), nats.ReconnectBufSize(-1), // nothing is sent later behind the lane's back
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { cfg.Log.Warn("NATS connection lost", "err", err) }),
		nats.ReconnectHandler(func(c *nats.Conn) { cfg.Log.Info("NATS connection back", "server", c.ConnectedUrl()) })}
	if cfg.Creds != "" {
		opts = append(opts, nats.UserCredentials(cfg.Creds))
	}
	nc, err := nats.Connect(cfg.URLs, opts...)
	if err != nil {
		return nil, fmt.Errorf("-nats %s: %w", cfg.URLs, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	l := &Log{cfg: cfg, nc: nc, js: js, entry: cfg.Stream + ".e", claim: cfg.Stream + ".c.",
		reqs: make(chan *request, laneQueue), stop: make(chan struct{}), gauges: gaugesOf(cfg.Stream)}
	l.mirror = newMirror(l, local)
	// Found now when the servers are up, so that the first webhooks are not spooled;
	// otherwise the mirror keeps trying.
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Timeout)
	if err := l.ensureStream(ctx); err != nil {
		cfg.Log.Warn("cannot find or create the NATS stream yet: webhooks are spooled until it can", "stream", cfg.Stream, "err", err)
	}
	cancel()
	l.gauges.connected.Store(nc)
	l.wg.Add(2)
	go l.lane()
	go l.mirror.run()
	return l, nil
}

// streamConfig is the stream the group shares. Entries are kept for good; claims end
// by their own TTL.
func (l *Log) streamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name: l.cfg.Stream, Subjects: []string{l.entry, l.claim + "*"}, Replicas: max(1, l.cfg.Replicas),
		Storage: jetstream.FileStorage, AllowAtomicPublish: true, AllowMsgTTL: true, AllowDirect: true,
	}
}

// ensureStream creates the stream, or checks that the one there can hold the log.
func (l *Log) ensureStream(ctx context.Context) error {
	s, err := l.js.Stream(ctx, l.cfg.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = l.js.CreateStream(ctx, l.streamConfig())
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) { // another member was quicker
			s, err = l.js.Stream(ctx, l.cfg.Stream)
		}
	}
	if err != nil {
		return err
	}
	c := s.CachedInfo().Config
	if !c.AllowAtomicPublish || !c.AllowMsgTTL || !c.AllowDirect {
		return fmt.Errorf("stream %s lacks atomic publish, message TTLs or direct get: the NATS servers must be 2.12 or newer, and the stream made by a sidecar", l.cfg.Stream)
	}
	l.stream.Store(&s)
	return nil
}

// Entries calls fn with the mirrored entries after sequence number after, in order.
func (l *Log) Entries(after uint64, fn func(seq uint64, entry []byte) (more bool, err error)) error {
	return l.mirror.local.Entries(after, fn)
}

// Entry returns mirrored entry seq.
func (l *Log) Entry(seq uint64) ([]byte, bool, error) { return l.mirror.local.Entry(seq) }

// Last is the sequence number of the last mirrored entry when the log opened.
func (l *Log) Last() uint64 { return l.mirror.start }

// Follow makes the mirror call fn whenever entries were mirrored (engine.Follower).
func (l *Log) Follow(fn func(last uint64)) { l.mirror.follow(fn) }

// Connected reports whether the connection to NATS is up; the stream may still lack a
// quorum.
func (l *Log) Connected() bool { return l.nc.Status() == nats.CONNECTED }

// Close stops the lane and the mirror and closes the connection. Close it before the
// store; the recorder applies what was mirrored.
func (l *Log) Close() {
	close(l.stop)
	l.wg.Wait()
	l.gauges.connected.CompareAndSwap(l.nc, nil)
	l.nc.Close()
}

// unavailable wraps why the stream cannot be reached as kv.ErrUnavailable.
func unavailable(err error) error { return fmt.Errorf("%w: %w", kv.ErrUnavailable, err) }
