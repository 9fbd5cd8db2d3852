package main

import (
	"io/fs"
	"path/filepath"
)

// storeUsage is the size of a store on disk per message it holds.
//
// Badger's files are allocated ahead (the store fallocates each value-log file at twice
// its size, 128 MiB, and the next memtable file as soon as they appear; see
// storage/disk.go), so while the store is open its allocated blocks, and the size of
// the mapped value log, are dominated by preallocation, not by data. It is therefore
// measured after it was closed (the sidecar stopped by SIGTERM; in -store-scale,
// Store.Close): Badger has then flushed its memtables into tables (*.sst) and cut the
// last value-log file (*.vlog) down to what it holds, and the store removed the
// memtable file it had created ahead.
//
// The target line ("store bytes per message", ≤ 400) uses the sum of the apparent sizes
// of the *.sst and *.vlog files and of the log's files (log/*.seg, *.claims, *.run) divided by
// the messages: the data itself (the log's entries and claims, keys, values,
// table indexes and bloom filters), including versions rewritten since (sessions, leads,
// rollups) that value-log GC has not reclaimed yet, and nothing else. Beside it are the
// apparent size of every file, which adds MANIFEST, KEYREGISTRY and Badger's DISCARD
// file (1 MiB, mapped), and the blocks allocated to every file (st_blocks·512), which
// after the close are close to the apparent size; for a small store both are mostly a
// fixed overhead that does not grow with the messages.
type storeUsage struct {
	Messages            float64 `json:"recorded_webhooks"` // one message each
	DataBytes           int64   `json:"data_bytes"`        // apparent sizes of *.sst, *.vlog and the log's files
	SSTBytes            int64   `json:"sst_bytes"`
	VlogBytes           int64   `json:"vlog_bytes"`
	LogBytes            int64   `json:"log_bytes"`
	ApparentBytes       int64   `json:"apparent_bytes"`    // apparent sizes of every file
	AllocatedBytes      int64   `json:"allocated_bytes"`   // st_blocks·512 of every file
	BytesPerMessage     float64 `json:"bytes_per_message"` // DataBytes per message: the target line's
	ApparentPerMessage  float64 `json:"apparent_bytes_per_message"`
	AllocatedPerMessage float64 `json:"allocated_bytes_per_message"`
	FilesMeasured       int     `json:"files"`
}

func newStoreUsage(d dirSizes, messages float64) *storeUsage {
	u := &storeUsage{Messages: messages, DataBytes: d.sst + d.vlog + d.log, SSTBytes: d.sst, VlogBytes: d.vlog, LogBytes: d.log, ApparentBytes: d.apparent,
		AllocatedBytes: d.allocated, FilesMeasured: d.files}
	if messages > 0 {
		u.BytesPerMessage = float64(u.DataBytes) / messages
		u.ApparentPerMessage = float64(d.apparent) / messages
		u.AllocatedPerMessage = float64(d.allocated) / messages
	}
	return u
}

// dirSizes sums the regular files under a directory.
type dirSizes struct {
	apparent  int64 // file sizes
	allocated int64 // blocks allocated to them (st_blocks·512)
	sst       int64 // file sizes of Badger's tables
	vlog      int64 // file sizes of its value logs
	log       int64 // file sizes of the file log's segments, claims snapshot and claims runs
	files     int
}

// dirUsage measures every regular file under dir.
func dirUsage(dir string) (dirSizes, error) {
	var d dirSizes
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil || !e.Type().IsRegular() {
			return err
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		d.files++
		d.apparent += fi.Size()
		d.allocated += allocatedBytes(fi)
		switch filepath.Ext(path) {
		case ".sst":
			d.sst += fi.Size()
		case ".vlog":
			d.vlog += fi.Size()
		case ".seg", ".claims", ".run":
			d.log += fi.Size()
		}
		return nil
	})
	return d, err
}
