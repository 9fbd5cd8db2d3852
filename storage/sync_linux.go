package storage

import (
	"os"

	"golang.org/x/sys/unix"
)

// syncDir makes everything written to the store's files durable with syncfs(2) on the
// data directory's file system. Badger writes its logs through shared mmaps, whose dirty
// pages syncfs writes back too; unlike Badger's own Sync, it takes none of Badger's
// locks, so commits go on while the disk catches up.
func (s *Store) syncDir() error {
	d, err := os.Open(s.dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return unix.Syncfs(int(d.Fd()))
}
