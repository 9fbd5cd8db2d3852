package storage

import (
	"time"

	"github.com/VictoriaMetrics/metrics"
)

var syncErrors = metrics.NewCounter("ctwa_sidecar_store_sync_errors_total")

// syncLoop fsyncs the store every interval when commits are not fsynced one by one
// (SyncInterval > 0). Close fsyncs a last time through Badger's own Close.
func (s *Store) syncLoop(interval time.Duration) {
	defer close(s.syncDone)
	if interval <= 0 {
		return
	}
	s.every(interval, func() bool {
		if err := s.syncDir(); err != nil {
			syncErrors.Inc()
			s.logger.Error("cannot fsync the store", "dir", s.dir, "err", err)
		}
		return true
	})
}
