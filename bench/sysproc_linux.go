package main

import (
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
