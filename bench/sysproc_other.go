//go:build !linux

package main

import "os/exec"

// setChildAttrs has no portable way to tie a child's life to the driver's; children
// are stopped by the driver's cleanup only.
func setChildAttrs(*exec.Cmd) {}
