//go:build !linux

package main

import (
	"os"
	"os/exec"
)

// setChildAttrs has no portable way to tie a child's life to the driver's; children
// are stopped by the driver's cleanup only.
func setChildAttrs(*exec.Cmd) {}

// allocatedBytes is the file's size where the allocated blocks are not portably known.
func allocatedBytes(fi os.FileInfo) int64 { return fi.Size() }
