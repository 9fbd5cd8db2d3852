package storage

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
)

// loadPendingWrites bounds Restore's memory: each pending write holds up to one
// transaction (about 2.4 MiB).
const loadPendingWrites = 4

// Backup writes a full backup (Badger's protobuf stream since version 0) of
// every live key to w. It reads a snapshot, so writers keep going meanwhile.
func (s *Store) Backup(w io.Writer) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	if _, err := s.db.Backup(w, 0); err != nil {
		return fmt.Errorf("cannot back up store at %q: %w", s.dir, err)
	}
	return nil
}

// Restore loads a backup made by Backup into dir, which must not exist or be
// empty: restoring over live data would mix two histories.
func Restore(dir string, r io.Reader) error {
	if err := checkEmpty(dir); err != nil {
		return err
	}
	db, err := openDB(dir, slog.Default(), true)
	if err != nil {
		return err
	}
	if err := db.Load(r, loadPendingWrites); err != nil {
		db.Close()
		return fmt.Errorf("cannot restore into %q (remove the partial restore before retrying): %w", dir, err)
	}
	if err := db.Close(); err != nil {
		return fmt.Errorf("cannot finish restore into %q: %w", dir, err)
	}
	return nil
}

func checkEmpty(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot read restore target %q: %w", dir, err)
	}
	if len(entries) > 0 {
		return fmt.Errorf("restore target %q is not empty (%d entries); restore needs a new or empty directory", dir, len(entries))
	}
	return nil
}
