package diskfault

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// Tmpfs mounts a tmpfs with the mount options opts (e.g. "size=16m,nr_inodes=2000") on a
// new directory of the test and unmounts it when the test ends. It needs root (CI runs
// as root); elsewhere the test is skipped, saying why.
func Tmpfs(t testing.TB, opts string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs (CI runs as root)")
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, opts); err != nil {
		t.Skipf("cannot mount a tmpfs (%s) although root: %v", opts, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// FillLeaving writes a file in dir until its file system has leave bytes free (never
// fewer: a disk at zero under a writer's mmaps would end the process), and returns
// the file's path.
func FillLeaving(t testing.TB, dir string, leave int64) string {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err == nil {
		_, err = f.Write(make([]byte, max(0, int64(st.Bavail)*st.Bsize-leave)))
		err = errors.Join(err, f.Close())
	}
	if err != nil {
		t.Fatal(err)
	}
	return path
}
