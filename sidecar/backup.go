package sidecar

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/ctwa-sidecar/ctwa-sidecar/proxy"
	"github.com/ctwa-sidecar/ctwa-sidecar/storage"
)

// backupRestore runs `backup -data DIR -out FILE` or `restore -data DIR -in FILE`.
// Badger locks its directory, so a running sidecar is backed up through its API
// (`backup -api http://127.0.0.1:9090 -out FILE`), online, from a consistent snapshot.
func backupRestore(cmd string, args []string, e Env) error {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(e.Stdout)
	dir := fs.String("data", "./data", "data directory: the log files (log/) and the Badger store of the views")
	var file, api, token *string
	minFree := byteSize(storage.DefaultMinFreeDisk)
	if cmd == "backup" {
		file = fs.String("out", "", "file to write the backup to (required; - for standard output)")
		api = fs.String("api", "", "API address of a running sidecar to back up online, e.g. http://127.0.0.1:9090")
		token = fs.String("api-token", e.Getenv("CTWA_API_TOKEN"), "its -api-token, if it has one (default from CTWA_API_TOKEN)")
	} else {
		file = fs.String("in", "", "backup file to restore (required)")
		fs.Var(&minFree, "min-free-disk", "free space to keep on the -data file system: a backup that does not fit above it is refused, and the restore stops (undone) when the disk falls below it")
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
		return backup(*dir, *file, *api, *token, e)
	}
	return restore(*dir, *file, int64(minFree))
}

func backup(dir, out, api, token string, e Env) error {
	w, finish, err := backupFile(out, e)
	if err != nil {
		return err
	}
	if api != "" {
		err = backupOnline(api, token, w)
	} else {
		err = backupOffline(dir, w)
	}
	return finish(err)
}

// backupFile opens the destination. A backup is written to a temporary file beside it
// and renamed only once whole, so that a failed or interrupted backup never leaves a file
// that could pass for one; finish syncs and renames it, or removes it.
func backupFile(out string, e Env) (io.Writer, func(error) error, error) {
	if out == "-" {
		return e.Stdout, func(err error) error { return err }, nil
	}
	// Never overwrite an earlier backup by a typo.
	switch _, err := os.Lstat(out); {
	case err == nil:
		return nil, nil, fmt.Errorf("backup: -out %q already exists; name a new file", out)
	case !errors.Is(err, fs.ErrNotExist):
		return nil, nil, fmt.Errorf("backup: -out: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".partial-*")
	if err != nil {
		return nil, nil, fmt.Errorf("backup: -out: %w", err)
	}
	return f, func(err error) error {
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(f.Name(), out)
		}
		if err != nil {
			os.Remove(f.Name())
			return fmt.Errorf("backup: %w", err)
		}
		return nil
	}, nil
}

func backupOffline(dir string, w io.Writer) error {
	if _, err := os.Stat(dir); err != nil {
		return fmt.Errorf("-data %q: %w", dir, err)
	}
	store, err := storage.Open(dir, storage.Options{})
	if errors.Is(err, storage.ErrLocked) {
		return fmt.Errorf("-data %q is in use by a running sidecar; back it up online through its API: -api http://127.0.0.1:9090", dir)
	}
	if err != nil {
		return fmt.Errorf("-data: %w", err)
	}
	defer store.Close()
	return store.Backup(w)
}

// backupOnline streams GET /v1/backup of a running sidecar into w, verifying and
// stripping its end marker, so that the file is what an offline backup writes.
func backupOnline(api, token string, w io.Writer) error {
	req, err := http.NewRequest("GET", strings.TrimSuffix(api, "/")+"/v1/backup", nil)
	if err != nil {
		return fmt.Errorf("-api %q: %w", api, err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("-api %q: %w", api, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("-api %q answered %d: %s", api, resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	if _, err := proxy.CopyBackup(w, resp.Body); err != nil {
		return fmt.Errorf("-api %q: %w", api, err)
	}
	return nil
}

func restore(dir, in string, minFree int64) error {
	f, err := os.Open(in)
	if err != nil {
		return fmt.Errorf("restore: -in: %w", err)
	}
	defer f.Close()
	if err := storage.Restore(dir, f, minFree); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	return nil
}
