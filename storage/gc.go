package storage

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/dgraph-io/badger/v4"
)

// gcDiscardRatio rewrites a value-log file once half of it is garbage.
const gcDiscardRatio = 0.5

// every calls fn every interval until Close, or until fn returns false.
func (s *Store) every(interval time.Duration, fn func() bool) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if !fn() {
				return
			}
		}
	}
}

// collectGarbage rewrites value-log files until Badger finds none worth it.
// It checks stop between files so Close is not held up for long.
func (s *Store) collectGarbage() {
	for {
		err := s.db.RunValueLogGC(gcDiscardRatio)
		if errors.Is(err, badger.ErrNoRewrite) || errors.Is(err, badger.ErrRejected) {
			return
		}
		if err != nil {
			s.logger.Warn("value-log GC failed", "dir", s.dir, "err", err)
			return
		}
		select {
		case <-s.stop:
			return
		default:
		}
	}
}

// sizedStore is the store the disk gauges (disk.go) read the file system of: the most
// recently opened one, until it is closed (the sidecar opens one, or one per stream of
// a fleet view, all under -data; tests open several).
var sizedStore atomic.Pointer[Store]

// openStores are the stores open in the process: the size gauge sums them.
var openStores sync.Map // *Store → struct{}

var _ = metrics.NewGauge("ctwa_sidecar_store_size_bytes", func() float64 {
	var n int64
	openStores.Range(func(s, _ any) bool {
		n += dirSize(s.(*Store).dir)
		return true
	})
	return float64(n)
})

// dirSize sums the disk space allocated to the files of the data directory
// (SSTables, value log, WAL, the log's segments in log/). It counts blocks, not
// lengths, because Badger preallocates the value log and WAL as sparse files. Badger's
// own Size() would need its expvar metrics, which are off.
func dirSize(dir string) int64 {
	var n int64
	for _, d := range []string{dir, filepath.Join(dir, "log")} {
		entries, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if info, err := e.Info(); err == nil && !info.IsDir() {
				n += allocatedSize(info)
			}
		}
	}
	return n
}

// allocatedSize is the disk space allocated to a file: its blocks where the system
// reports them, else its length.
func allocatedSize(info os.FileInfo) int64 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return st.Blocks * 512
	}
	return info.Size()
}
