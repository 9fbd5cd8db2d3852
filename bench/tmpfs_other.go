//go:build !linux

package main

import (
	"errors"
	"os"
)

var errNeedsLinux = errors.New("needs Linux to mount a tmpfs")

func mountTmpfs(string, int64) error        { return errNeedsLinux }
func unmountTmpfs(string) error             { return errNeedsLinux }
func freeBytes(string) (int64, error)       { return 0, errNeedsLinux }
func allocate(*os.File, int64, int64) error { return errNeedsLinux }
