//go:build !linux

package storage

import (
	"errors"
	"os"
)

// Off Linux the store has no statfs or fallocate: it neither keeps a reserve nor
// allocates Badger's files ahead.
var errNoFallocate = errors.New("fallocate is not supported")

func statFd(*os.File) (diskStat, bool) { return diskStat{}, false }
func statPath(string) (diskStat, bool) { return diskStat{}, false }
func allocatedBytes(*os.File) int64    { return 0 }
func fallocate(*os.File, int64) error  { return errNoFallocate }
func fileSize(d *os.File, name string) (int64, bool) {
	info, err := os.Stat(d.Name() + string(os.PathSeparator) + name)
	if err != nil {
		return 0, false
	}
	return info.Size(), true
}

func isNoSpace(error) bool { return false }
