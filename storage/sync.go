package storage

import (
	"log/slog"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

var syncErrors = metrics.NewCounter("ctwa_sidecar_store_sync_errors_total")

// syncErrLogEvery is the least time between two logged fsync failures; every failure
// is counted in ctwa_sidecar_store_sync_errors_total.
const syncErrLogEvery = 5 * time.Second

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
// time and logged at most once per syncErrLogEvery of tick time, with the number of
// failures since the last logged one.
func syncOnTicks(stop <-chan struct{}, ticks <-chan time.Time, sync func() error, logger *slog.Logger) {
	var lastLog time.Time
	failed := 0 // failures not logged yet, the current one included
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
			failed++
			if !lastLog.IsZero() && now.Sub(lastLog) < syncErrLogEvery {
				continue
			}
			logger.Error("cannot fsync the store", "err", err, "failures", failed)
			lastLog, failed = now, 0
		}
	}
}
