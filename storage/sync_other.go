//go:build !linux

package storage

// syncDir falls back to Badger's Sync where syncfs(2) does not exist.
func (s *Store) syncDir() error { return s.db.Sync() }
