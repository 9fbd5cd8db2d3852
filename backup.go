package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/ctwa-sidecar/ctwa-sidecar/storage"
)

// backupRestore runs `backup -data DIR -out FILE` or `restore -data DIR -in FILE`.
// A backup is taken from the store while nothing else has it open; for a running
// sidecar, stop it first or copy from a filesystem snapshot (Badger locks the directory).
func backupRestore(cmd string, args []string, e env) error {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(e.stdout)
	dir := fs.String("data", "./data", "Badger data directory")
	var file *string
	if cmd == "backup" {
		file = fs.String("out", "", "file to write the backup to (required; - for standard output)")
	} else {
		file = fs.String("in", "", "backup file to restore (required)")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if *file == "" {
		return fmt.Errorf("%s: -%s is required", cmd, map[string]string{"backup": "out", "restore": "in"}[cmd])
	}
	if cmd == "backup" {
		return backup(*dir, *file, e)
	}
	return restore(*dir, *file)
}

func backup(dir, out string, e env) (err error) {
	if _, err := os.Stat(dir); err != nil {
		return fmt.Errorf("backup: -data %q: %w", dir, err)
	}
	store, err := storage.Open(dir, storage.Options{})
	if err != nil {
		return fmt.Errorf("backup: -data: %w", err)
	}
	defer store.Close()
	if out == "-" {
		return store.Backup(e.stdout)
	}
	// O_EXCL: never overwrite an earlier backup by a typo.
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("backup: -out: %w", err)
	}
	if err = store.Backup(f); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(out) // a partial backup must not pass for a whole one
		return fmt.Errorf("backup: %w", err)
	}
	return nil
}

func restore(dir, in string) error {
	f, err := os.Open(in)
	if err != nil {
		return fmt.Errorf("restore: -in: %w", err)
	}
	defer f.Close()
	if err := storage.Restore(dir, f); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	return nil
}
