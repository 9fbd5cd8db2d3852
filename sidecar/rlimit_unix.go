//go:build unix

package sidecar

import "syscall"

// openFileLimit is the soft limit on open files (Go raises it to the hard limit at
// start-up; this reads the result).
func openFileLimit() (uint64, bool) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, false
	}
	return uint64(lim.Cur), true
}
