package main

import (
	"fmt"
	"os"
	"syscall"
)

// mountTmpfs mounts a tmpfs of size bytes on dir (root only).
func mountTmpfs(dir string, size int64) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root to mount a tmpfs (running as uid %d)", os.Geteuid())
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		return fmt.Errorf("cannot mount a tmpfs on %s: %w", dir, err)
	}
	return nil
}

// unmountTmpfs detaches the tmpfs on dir at once; the kernel frees it once no process
// holds a file of it.
func unmountTmpfs(dir string) error { return syscall.Unmount(dir, syscall.MNT_DETACH) }

// freeBytes is what an unprivileged process may still write on the file system of dir.
func freeBytes(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return int64(st.Bavail) * st.Bsize, nil
}

// allocate gives f blocks for n bytes from off, growing it.
func allocate(f *os.File, off, n int64) error { return syscall.Fallocate(int(f.Fd()), 0, off, n) }
