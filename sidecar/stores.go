package sidecar

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/ctwa-sidecar/ctwa-sidecar/storage"
)

// clientStore is the open store of one client log.
type clientStore struct {
	clientLog
	*storage.Store
}

// clientStores are the stores of config.logs, in that order: one, or one per stream of
// a read replica's fleet view.
type clientStores []clientStore

// fleetMemTableSize is the memtable size of each store of a fleet view: memtables
// count against the heap's limit (main.go) from the start, and a fleet view writes
// each client's views at its stream's rate only.
const fleetMemTableSize = 4 << 20

// openStores opens the store of every client log. On a disk below -min-free-disk a
// store opens Badger only once space returns.
func (c *config) openStores(log *slog.Logger) (clientStores, error) {
	stores := make(clientStores, 0, len(c.logs))
	var memTable int64 // storage's default for one store
	if len(c.logs) > 1 {
		memTable = fleetMemTableSize
	}
	for _, l := range c.logs {
		s, err := storage.Open(l.dir, storage.Options{Logger: log, SyncInterval: c.fsyncInterval,
			MinFreeDisk: int64(c.minFreeDisk), WaitForSpace: true, MemTableSize: memTable})
		if err != nil {
			stores.close(log)
			return nil, fmt.Errorf("-data: %w", err)
		}
		stores = append(stores, clientStore{l, s})
	}
	return stores, nil
}

func (s clientStores) close(log *slog.Logger) {
	for _, st := range s {
		if err := st.Close(); err != nil {
			log.Error("closing the store", "dir", st.dir, "err", err)
		}
	}
}

// Ready reports whether every store takes writes; in a fleet view the first that does
// not is named by its client.
func (s clientStores) Ready() error {
	for _, st := range s {
		if err := st.Store.Ready(); err != nil {
			if len(s) > 1 {
				return fmt.Errorf("client %q: %w", st.client, err)
			}
			return err
		}
	}
	return nil
}

// open reports whether every store has opened Badger.
func (s clientStores) open() bool {
	for _, st := range s {
		select {
		case <-st.Opened():
		default:
			return false
		}
	}
	return true
}

// waitOpen waits until every store has opened Badger; false when ctx ended first.
func (s clientStores) waitOpen(ctx context.Context) bool {
	for _, st := range s {
		select {
		case <-st.Opened():
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// clients lists the clients recorded, as the start-up line names them.
func (s clientStores) clients() string {
	ids := make([]string, len(s))
	for i, st := range s {
		ids[i] = st.client
	}
	return strings.Join(ids, ",")
}
