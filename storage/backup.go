package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/dgraph-io/badger/v4"

	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
)

// openLogFiles opens the file log of a store that has one but did not open it (a
// stopped sidecar's store, backed up offline), so that Backup includes it. A store
// without log files (a cluster member's) is left as it is.
func (s *Store) openLogFiles() error {
	s.mu.RLock()
	attached := s.flog != nil
	s.mu.RUnlock()
	if attached {
		return nil
	}
	if segs, err := listSegments(filepath.Join(s.dir, "log"), segmentExt); err != nil || len(segs) == 0 {
		return nil
	}
	if _, err := OpenLog(s); err != nil && !errors.Is(err, kv.ErrClosed) {
		return fmt.Errorf("cannot back up the log of %q: %w", s.dir, err)
	}
	return nil
}

// loadPendingWrites bounds Restore's memory: each pending write holds up to one
// transaction (about 2.4 MiB).
const loadPendingWrites = 4

// Backup writes a full backup (Badger's protobuf stream since version 0) of
// every live key to w, and then the file log's entries and claims as Badger keys. It reads a snapshot, so writers keep going meanwhile.
func (s *Store) Backup(w io.Writer) error {
	if err := s.openLogFiles(); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return kv.ErrClosed
	}
	if _, err := s.db.Backup(w, 0); err != nil {
		return fmt.Errorf("cannot back up store at %q: %w", s.dir, err)
	}
	// After the views: the log then reaches at least as far as their checkpoint.
	if s.flog != nil {
		if err := s.flog.backup(w); err != nil {
			return fmt.Errorf("cannot back up the log at %q: %w", s.flog.dir, err)
		}
	}
	return nil
}

// Restore loads a backup made by Backup into dir, which must not exist or be
// empty: restoring over live data would mix two histories. When the backup cannot
// be loaded (not a backup, cut short, a failed write, the disk full), Restore removes
// what it wrote, so dir is left as it was, and names the backup (r's Name, for a
// file) in its error. Badger's Load trusts the stream's frame lengths and panics on
// a wild one: Restore checks each length against what is left of a file (or a
// generous cap for a stream of unknown size) before Load sees it, and recovers what
// else panics. It keeps the free-space reserve of Options.MinFreeDisk (minFreeDisk)
// as serve does, so that a restore fails early and clearly rather than in a Badger
// write that has no space. A backup file larger than the space above the reserve
// is refused before anything is written; each frame is checked against the reserve
// before Load sees it, and Badger's files are allocated as they appear.
func Restore(dir string, r io.Reader, minFreeDisk int64) error {
	name := "backup stream"
	if f, ok := r.(interface{ Name() string }); ok {
		name = f.Name()
	}
	existed, err := checkEmpty(dir)
	if err != nil {
		return err
	}
	fr := newFrameReader(r)
	s, err := Open(dir, Options{MinFreeDisk: minFreeDisk, Logger: slog.New(slog.DiscardHandler)}) // its refusals are the error
	if err == nil {
		err = s.roomFor(fr.total)
		if err == nil {
			fr.check = s.spaceErr
			err = load(s.db, fr)
		}
		// Close flushes and fsyncs what Load wrote.
		if cerr := s.Close(); err == nil && cerr != nil {
			return fmt.Errorf("cannot finish restore into %q: %w", dir, cerr)
		}
	}
	if err != nil {
		return fmt.Errorf("cannot restore from %q: %w; %s", name, err, undoRestore(dir, existed))
	}
	return nil
}

// roomFor refuses a restore of a backup of size bytes (-1: unknown) that the file
// system cannot hold above the reserve: a restored store takes about the backup's size.
func (s *Store) roomFor(size int64) error {
	st, ok := statFd(s.dirFd)
	if !ok || size < 0 || st.free >= uint64(size)+s.minFree {
		return nil
	}
	return fmt.Errorf("%w: the backup holds %s, the file system of %q has %s free and keeps a reserve of %s (-min-free-disk)",
		ErrDiskFull, inMiB(uint64(size)), s.dir, inMiB(st.free), inMiB(s.minFree))
}

// load runs Badger's Load, turning a panic in it into an error.
func load(db *badger.DB, r io.Reader) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%w (badger: %v)", errNotABackup, v)
		}
	}()
	err = db.Load(r, loadPendingWrites)
	var fe *frameError
	switch {
	case errors.As(err, &fe) && fe.known:
		return fmt.Errorf("%w, or one cut short (%v)", errNotABackup, fe)
	case errors.As(err, &fe):
		return fmt.Errorf("%w (%v)", errNotABackup, fe)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("the backup is cut short (%w)", err)
	case err != nil && strings.HasPrefix(err.Error(), "proto:"):
		return fmt.Errorf("%w (%w)", errNotABackup, err)
	}
	return err
}

var errNotABackup = errors.New("not a ctwa-sidecar backup")

// undoRestore removes what a failed restore wrote into dir: dir itself when Restore
// created it, else its entries. It reports the outcome for the error message.
func undoRestore(dir string, existed bool) string {
	var err error
	if !existed {
		err = os.RemoveAll(dir)
	} else {
		var entries []os.DirEntry
		entries, err = os.ReadDir(dir)
		for _, e := range entries {
			err = errors.Join(err, os.RemoveAll(filepath.Join(dir, e.Name())))
		}
	}
	if err != nil {
		return fmt.Sprintf("the partial restore in %q could not be removed (%v): remove it before retrying", dir, err)
	}
	return fmt.Sprintf("%q is left as it was", dir)
}

// maxBackupFrame caps a frame of a backup whose size is unknown (a pipe). Backup
// writes frames of Badger's stream batches: about 100 MiB at most, plus one value
// (below the 64 MiB value log file size).
const maxBackupFrame = 1 << 30

// frameReader passes a backup stream through, checking each frame's length (8 bytes,
// little endian, then that many bytes of a protobuf KVList) against the bytes left of
// the file, or maxBackupFrame when the size is unknown, so that Load never allocates
// what garbage claims.
type frameReader struct {
	r     io.Reader
	off   int64 // bytes passed on
	total int64 // bytes of the stream; -1 when unknown
	next  int64 // offset of the next frame header
	hdr   [8]byte
	nhdr  int // bytes of hdr read
	err   error
	check func() error // before each frame is passed on; nil: none
}

func newFrameReader(r io.Reader) *frameReader {
	fr := &frameReader{r: r, total: -1}
	if f, ok := r.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			if pos, err := f.Seek(0, io.SeekCurrent); err == nil {
				fr.total = fi.Size() - pos
			}
		}
	}
	return fr
}

// frameError is a frame length that the backup cannot hold.
type frameError struct {
	off, limit int64
	size       uint64
	known      bool
}

func (e *frameError) Error() string {
	if e.known {
		return fmt.Sprintf("the frame at byte %d claims %d bytes, more than the %d left in the file", e.off, e.size, e.limit)
	}
	return fmt.Sprintf("the frame at byte %d claims %d bytes, more than a backup frame holds (%d)", e.off, e.size, e.limit)
}

func (fr *frameReader) Read(p []byte) (int, error) {
	if fr.err != nil {
		return 0, fr.err
	}
	n, err := fr.r.Read(p)
	for i := 0; i < n; {
		pos := fr.off + int64(i)
		if pos < fr.next {
			i += int(min(fr.next-pos, int64(n-i)))
			continue
		}
		fr.hdr[fr.nhdr] = p[i]
		fr.nhdr++
		i++
		if fr.nhdr < len(fr.hdr) {
			continue
		}
		fr.nhdr = 0
		if fr.check != nil {
			if fr.err = fr.check(); fr.err != nil {
				return 0, fr.err
			}
		}
		size, start := binary.LittleEndian.Uint64(fr.hdr[:]), pos+1 // the frame's body starts after its header
		limit, known := int64(maxBackupFrame), fr.total >= 0
		if known {
			limit = max(0, min(limit, fr.total-start))
		}
		if size > uint64(limit) {
			// Hand Load nothing of this read: it fails on the error, never on the length.
			fr.err = &frameError{off: start - int64(len(fr.hdr)), size: size, limit: limit, known: known}
			return 0, fr.err
		}
		fr.next = start + int64(size)
	}
	fr.off += int64(n)
	return n, err
}

// checkEmpty refuses a restore target that holds anything; it reports whether the
// target exists.
func checkEmpty(dir string) (existed bool, err error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("cannot read restore target %q: %w", dir, err)
	}
	if len(entries) > 0 {
		return true, fmt.Errorf("restore target %q is not empty (%d entries); restore needs a new or empty directory", dir, len(entries))
	}
	return true, nil
}
