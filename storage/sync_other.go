//go:build !linux

package storage

// syncDir falls back to Badger's Sync where syncfs(2) does not exist. Holding dbMu
// keeps Badger from being swapped meanwhile (disk.go).
func (s *Store) syncDir() error {
	s.dbMu.Lock()
	defer s.dbMu.Unlock()
	if !s.dbOpen || s.down.Load() != nil {
		return nil
	}
	if s.flog != nil {
		if err := s.flog.sync(); err != nil {
			return err
		}
	}
	return s.db.Sync()
}
