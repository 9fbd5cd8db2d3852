package storage

import (
	"log/slog"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/ctwa-sidecar/ctwa-sidecar/internal/lograte"
)

var syncErrors = metrics.NewCounter("ctwa_sidecar_store_sync_errors_total")

// syncLoop fsyncs the store every interval when commits are not fsynced one by one
// (SyncInterval > 0). Close fsyncs a last time through Badger's own Close.
func (s *Store) syncLoop(interval time.Duration) {
	defer close(s.syncDone)
	if interval <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	syncOnTicks(s.stop, t.C, s.syncDir, s.logger.With("dir", s.dir))
}

// syncOnTicks calls sync at each tick until stop is closed. A failure is counted each
// time in ctwa_sidecar_store_sync_errors_total and logged at most once per lograte.Every
// of tick time, with the number of failures since the last logged one.
func syncOnTicks(stop <-chan struct{}, ticks <-chan time.Time, sync func() error, logger *slog.Logger) {
	var lines lograte.Limiter
	for {
		select {
		case <-stop:
			return
		case now := <-ticks:
			err := sync()
			if err == nil {
				continue
			}
			syncErrors.Inc()
			if n, ok := lines.Allow(now); ok {
				logger.Error("cannot fsync the store", "err", err, "failures", n)
			}
		}
	}
}
