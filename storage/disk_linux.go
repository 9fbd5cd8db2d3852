package storage

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// errNoFallocate means the file system does not implement fallocate(2).
var errNoFallocate = errors.New("fallocate is not supported")

// statFd reads the free space and inodes of the file system holding the open directory d.
func statFd(d *os.File) (diskStat, bool) {
	var st unix.Statfs_t
	if d == nil || unix.Fstatfs(int(d.Fd()), &st) != nil {
		return diskStat{}, false
	}
	return toDiskStat(&st), true
}

// statPath is statFd for a path.
func statPath(dir string) (diskStat, bool) {
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) != nil {
		return diskStat{}, false
	}
	return toDiskStat(&st), true
}

func toDiskStat(st *unix.Statfs_t) diskStat {
	return diskStat{free: st.Bavail * uint64(st.Bsize), inodes: st.Ffree, files: st.Files}
}

// fileSize returns the length of name in the open directory d.
func fileSize(d *os.File, name string) (size int64, exists bool) {
	var st unix.Stat_t
	if unix.Fstatat(int(d.Fd()), name, &st, 0) != nil {
		return 0, false
	}
	return st.Size, true
}

// allocatedBytes returns the bytes of disk blocks f holds, beyond its length too.
func allocatedBytes(f *os.File) int64 {
	var st unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) != nil {
		return 0
	}
	return st.Blocks * 512
}

// fallocate gives the first size bytes of f disk blocks without changing its length
// (FALLOC_FL_KEEP_SIZE), so a write into them through a map cannot fault for space.
// Blocks it already has are kept, data too.
func fallocate(f *os.File, size int64) error {
	for {
		err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_KEEP_SIZE, 0, size)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EOPNOTSUPP || err == unix.ENOSYS:
			return errNoFallocate
		}
		return err
	}
}

// isNoSpace reports whether err is a file system out of space, inodes or quota.
func isNoSpace(err error) bool {
	return errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT)
}
