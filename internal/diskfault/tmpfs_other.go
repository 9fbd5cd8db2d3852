//go:build !linux

package diskfault

import "testing"

// Tmpfs skips the test: mounting a tmpfs is Linux only.
func Tmpfs(t testing.TB, opts string) string {
	t.Helper()
	t.Skip("needs Linux to mount a small tmpfs (CI runs Linux)")
	return ""
}

func FillLeaving(t testing.TB, _ string, _ int64) string {
	t.Helper()
	t.Skip("needs Linux to fill a file system to a given free space")
	return ""
}
