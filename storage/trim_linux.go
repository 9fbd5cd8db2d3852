package storage

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// Badger reads and writes its SSTables and value log through shared mmaps, so
// every page it has touched counts in the process RSS until the kernel needs
// the memory back; with no memory pressure that is the whole database (about
// 300 MiB for 1 M events). When the file-backed part of the RSS exceeds
// residentFileBudget, the trim loop asks the kernel to reclaim the pages of
// this store's data files with MADV_PAGEOUT. That advice never loses data (the
// pages are clean after each sync, dirty ones are skipped, and on memory that
// is no longer a Badger mapping it is at worst a no-op), unlike MADV_DONTNEED,
// which would zero anonymous memory that reused a just-unmapped range.
const (
	residentFileBudget = 96 << 20
	trimInterval       = 250 * time.Millisecond
	madvPageout        = 21 // MADV_PAGEOUT, Linux 5.4+; not in package syscall
)

func (s *Store) trimLoop() {
	defer close(s.trimDone)
	select { // the data directory may not exist before (a start-up on a full disk)
	case <-s.opened:
	case <-s.stop:
		return
	}
	dir, err := mapsPath(s.dir)
	if err != nil {
		s.logger.Warn("resident memory trimming is off", "dir", s.dir, "err", err)
		return
	}
	s.every(trimInterval, func() bool {
		if residentFileBytes() <= residentFileBudget {
			return true
		}
		if _, err := pageOut(dir); err != nil {
			s.logger.Warn("resident memory trimming is off", "dir", s.dir, "err", err)
			return false
		}
		return true
	})
}

// mapsPath is dir as /proc/self/maps spells it: absolute, symlinks resolved,
// with a trailing slash so that "/data" does not match "/data2".
func mapsPath(dir string) ([]byte, error) {
	abs, err := filepath.Abs(dir)
	if err == nil {
		abs, err = filepath.EvalSymlinks(abs)
	}
	return []byte(abs + "/"), err
}

// residentFileBytes returns the file-backed part of the process RSS.
func residentFileBytes() int64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	_, rest, ok := bytes.Cut(status, []byte("\nRssFile:"))
	if !ok {
		return 0
	}
	line, _, _ := bytes.Cut(rest, []byte("\n"))
	kb, _ := strconv.ParseInt(string(bytes.TrimSuffix(bytes.TrimSpace(line), []byte(" kB"))), 10, 64)
	return kb << 10
}

// pageOut advises the kernel to reclaim every mapping of a .sst or .vlog file
// in dir and returns how many mappings it advised.
func pageOut(dir []byte) (int, error) {
	maps, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0, err
	}
	defer maps.Close()
	n := 0
	lines := bufio.NewScanner(maps)
	for lines.Scan() {
		start, end, ok := dataFileMapping(lines.Bytes(), dir)
		if !ok {
			continue
		}
		_, _, errno := syscall.Syscall(syscall.SYS_MADVISE, start, end-start, madvPageout)
		// ENOMEM: Badger unmapped the file meanwhile (compaction, GC); that is fine.
		if errno != 0 && errno != syscall.ENOMEM {
			return n, fmt.Errorf("madvise(MADV_PAGEOUT): %w", errno)
		}
		n++
	}
	return n, lines.Err()
}

// dataFileMapping parses one /proc/self/maps line ("start-end perms offset dev
// inode path") and reports the address range if it maps a data file of dir.
func dataFileMapping(line, dir []byte) (start, end uintptr, ok bool) {
	i := bytes.Index(line, dir)
	if i < 0 {
		return 0, 0, false
	}
	path := line[i:]
	if !bytes.HasSuffix(path, []byte(".sst")) && !bytes.HasSuffix(path, []byte(".vlog")) {
		return 0, 0, false
	}
	rng, _, _ := bytes.Cut(line, []byte(" "))
	lo, hi, found := bytes.Cut(rng, []byte("-"))
	a, errA := strconv.ParseUint(string(lo), 16, 64)
	b, errB := strconv.ParseUint(string(hi), 16, 64)
	if !found || errA != nil || errB != nil || b <= a {
		return 0, 0, false
	}
	return uintptr(a), uintptr(b), true
}
