package proxy

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"math/rand"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/VictoriaMetrics/metrics"
)

// fakeBackup writes data in pieces, then fails with err, or panics when panicMsg is set.
type fakeBackup struct {
	data     []byte
	err      error
	panicMsg string
}

func (b fakeBackup) Backup(w io.Writer) error {
	for rest := b.data; len(rest) > 0; {
		n := min(len(rest), 7<<10)
		if _, err := w.Write(rest[:n]); err != nil {
			return err
		}
		rest = rest[n:]
	}
	if b.panicMsg != "" {
		panic(b.panicMsg)
	}
	return b.err
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(int64(n))).Read(b)
	return b
}

// logBuffer collects what a server logs; its goroutines write while the test reads.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// serveAPI serves a on loopback through NewServer, as main does, and returns its base URL
// and what it logged.
func serveAPI(t *testing.T, name string, a *API) (string, *logBuffer) {
	t.Helper()
	logged := new(logBuffer)
	srv := NewServer(name, a.ServeHTTP, ServerLimits{}, slog.New(slog.NewTextHandler(logged, nil)))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	return "http://" + ln.Addr().String(), logged
}

// counterValue reads one series of this process's metrics (0 when absent).
func counterValue(t *testing.T, series string) float64 {
	t.Helper()
	var b bytes.Buffer
	metrics.WritePrometheus(&b, false)
	for _, line := range strings.Split(b.String(), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric line %q: %v", line, err)
			}
			return f
		}
	}
	return 0
}

func getBackup(t *testing.T, base string) ([]byte, error) {
	t.Helper()
	resp, err := http.Get(base + "/v1/backup")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /v1/backup answered %d", resp.StatusCode)
	}
	var got bytes.Buffer
	_, err = CopyBackup(&got, resp.Body)
	return got.Bytes(), err
}

// TestBackupRouteEndsWithAVerifiedMarker: a whole backup arrives byte for byte once its end
// marker is stripped; one that fails half-way (already answered 200, body ended cleanly by
// fasthttp) is refused by the client, logged and counted on the server.
func TestBackupRouteEndsWithAVerifiedMarker(t *testing.T) {
	data := randomBytes(300 << 10)
	whole := NewAPI("", nil)
	RegisterBackupRoute(whole, fakeBackup{data: data})
	base, _ := serveAPI(t, "backup-whole", whole)
	failures := counterValue(t, "ctwa_sidecar_backup_failures_total")
	got, err := getBackup(t, base)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("whole backup: %v, %d bytes, want %d", err, len(got), len(data))
	}
	if n := counterValue(t, "ctwa_sidecar_backup_failures_total"); n != failures {
		t.Fatalf("a whole backup counted as failed (%v → %v)", failures, n)
	}

	failing := NewAPI("", nil)
	RegisterBackupRoute(failing, fakeBackup{data: data[:200<<10], err: errors.New("disk read error")})
	base, logged := serveAPI(t, "backup-failing", failing)
	if _, err := getBackup(t, base); !errors.Is(err, ErrBackupCutShort) {
		t.Fatalf("backup failing half-way: CopyBackup = %v, want ErrBackupCutShort", err)
	}
	if n := counterValue(t, "ctwa_sidecar_backup_failures_total"); n != failures+1 {
		t.Errorf("ctwa_sidecar_backup_failures_total = %v, want %v", n, failures+1)
	}
	if !strings.Contains(logged.String(), "online backup failed") || !strings.Contains(logged.String(), "disk read error") {
		t.Errorf("failure not logged:\n%s", logged)
	}
}

// TestBackupRoutePanicMidStream: the backup runs on fasthttp's stream goroutine, outside the
// handler's guard; a panic there must neither end the process nor pass for a whole backup.
func TestBackupRoutePanicMidStream(t *testing.T) {
	a := NewAPI("", nil)
	RegisterBackupRoute(a, fakeBackup{data: randomBytes(100 << 10), panicMsg: "badger broke"})
	base, logged := serveAPI(t, "backup-panic", a)
	series := `ctwa_sidecar_handler_panics_total{listener="backup-panic",route="/v1/backup"}`
	if _, err := getBackup(t, base); !errors.Is(err, ErrBackupCutShort) {
		t.Fatalf("backup that panicked: CopyBackup = %v, want ErrBackupCutShort", err)
	}
	if n := counterValue(t, series); n != 1 {
		t.Errorf("%s = %v, want 1", series, n)
	}
	if !strings.Contains(logged.String(), "badger broke") {
		t.Errorf("panic not logged:\n%s", logged)
	}
	if resp, err := http.Get(base + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("server after the panic: %v", err)
	}
}

// TestCopyBackupRefusesEveryCut cuts a valid stream at every length near its end (and a
// few earlier): only the whole stream passes, and a flipped byte is caught too.
func TestCopyBackupRefusesEveryCut(t *testing.T) {
	data := randomBytes(70 << 10) // more than CopyBackup's buffer
	var sum backupSum
	sum.w = io.Discard
	sum.Write(data)
	stream := appendBackupEnd(append([]byte(nil), data...), sum.n, sum.crc)

	var got bytes.Buffer
	if n, err := CopyBackup(&got, iotest.HalfReader(bytes.NewReader(stream))); err != nil || n != int64(len(data)) || !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("whole stream: n=%d err=%v, equal=%v", n, err, bytes.Equal(got.Bytes(), data))
	}
	cuts := []int{0, 1, backupEndLen, len(data) / 2}
	for c := len(data) - 2; c < len(stream); c++ {
		cuts = append(cuts, c)
	}
	for _, c := range cuts {
		if _, err := CopyBackup(io.Discard, bytes.NewReader(stream[:c])); !errors.Is(err, ErrBackupCutShort) {
			t.Errorf("stream cut at %d of %d: err = %v, want ErrBackupCutShort", c, len(stream), err)
		}
	}
	flipped := append([]byte(nil), stream...)
	flipped[1000] ^= 1
	if _, err := CopyBackup(io.Discard, bytes.NewReader(flipped)); !errors.Is(err, ErrBackupCutShort) {
		t.Errorf("flipped byte: err = %v, want ErrBackupCutShort", err)
	}
}
