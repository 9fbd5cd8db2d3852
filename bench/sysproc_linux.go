package main

import (
	"os"
	"os/exec"
	"syscall"
)

// setChildAttrs makes a child die with the driver, even on kill -9: the kernel sends it
// SIGTERM when the thread that started it exits, and Go exits threads only with the
// process (nothing here locks a goroutine to its thread). It also keeps the child out of
// the terminal's process group, so that Ctrl-C reaches only the driver, which then stops
// the children in order.
func setChildAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: true}
}

// allocatedBytes is the disk space allocated to a file (st_blocks are 512-byte units
// whatever the file system's block size).
func allocatedBytes(fi os.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Blocks * 512
	}
	return fi.Size()
}
