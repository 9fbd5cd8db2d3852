package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/pb"
	"google.golang.org/protobuf/proto"

	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
)

// migrate starts the file log of a store that has none: empty, or, for a store
// written before the log moved out of Badger (or restored from a backup, which holds
// the log as Badger keys), with the entries and dedupe marks Badger holds. They are
// written to the first segment, which is fsynced and renamed into place before the
// Badger copies are deleted: a crash in between leaves them behind, unused.
func (l *FileLog) migrate(now int64) error {
	first, copied, err := l.copyFromBadger(now)
	if err != nil {
		return err
	}
	if copied == 0 {
		first = l.next
	}
	if err := os.Rename(filepath.Join(l.dir, "migrating.tmp"), filepath.Join(l.dir, seqName(first, segmentExt))); err != nil {
		return err
	}
	if err := syncPath(l.dir); err != nil {
		return err
	}
	seg, err := openSegment(l.dir, first)
	if err != nil {
		return err
	}
	l.segs = append(l.segs, seg)
	if err := l.recover(seg, true, true, now); err != nil { // reads the claims back
		return err
	}
	if copied > 0 {
		l.s.logger.Info("moved the log out of Badger into log files", "entries", copied, "dir", l.dir)
		return l.dropBadgerLog()
	}
	return nil
}

// copyFromBadger writes Badger's dedupe marks and log entries to log/migrating.tmp,
// fsynced; it returns the first entry's sequence number and the number of entries.
func (l *FileLog) copyFromBadger(now int64) (first uint64, n int, err error) {
	f, err := os.Create(filepath.Join(l.dir, "migrating.tmp"))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	var buf []byte
	frame := -1
	flush := func(force bool) error {
		if frame >= 0 && (force || len(buf)-frame >= maxFrame) {
			sealFrame(buf, frame)
			frame = -1
		}
		if frame < 0 && len(buf) > 0 {
			_, err := f.Write(buf)
			buf = buf[:0]
			return err
		}
		return nil
	}
	open := func() {
		if frame < 0 {
			frame = len(buf)
			buf = append(buf, make([]byte, frameHeader)...)
		}
	}
	err = l.s.View(func(txn *badger.Txn) error {
		for _, prefix := range append(kv.ClaimPrefixes(), kv.LogClaimPrefix()) {
			hashed := bytes.Equal(prefix, kv.LogClaimPrefix())
			err := eachItem(txn, prefix, func(item *badger.Item, v []byte) error {
				if exp := int64(item.ExpiresAt()); exp == 0 || exp > now {
					open()
					if k := item.Key(); hashed && len(k) == len(prefix)+8 {
						buf = appendHashRecord(buf, binary.BigEndian.Uint64(k[len(prefix):]), v, exp)
					} else if !hashed {
						buf = appendClaimRecord(buf, k, v, exp)
					}
				}
				return flush(false)
			})
			if err != nil {
				return err
			}
		}
		return eachItem(txn, kv.LogPrefix(), func(item *badger.Item, v []byte) error {
			seq := kv.LogSeq(item.Key())
			if n == 0 {
				first = seq
			}
			n++
			open()
			buf = appendEntryRecord(buf, seq, v)
			return flush(false)
		})
	})
	if err == nil {
		err = flush(true)
	}
	if err == nil {
		err = f.Sync()
	}
	return first, n, err
}

func eachItem(txn *badger.Txn, prefix []byte, fn func(item *badger.Item, v []byte) error) error {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	defer it.Close()
	for it.Seek(prefix); it.ValidForPrefix(prefix); it.Next() {
		item := it.Item()
		if err := item.Value(func(v []byte) error { return fn(item, v) }); err != nil {
			return err
		}
	}
	return nil
}

// dropBadgerLog deletes the log entries Badger held, once they are in the log files.
func (l *FileLog) dropBadgerLog() error {
	var keys [][]byte
	err := l.s.ScanKeys(kv.LogPrefix(), kv.PrefixEnd(kv.LogPrefix()), func(k []byte) bool {
		keys = append(keys, append([]byte(nil), k...))
		return true
	})
	for len(keys) > 0 && err == nil {
		chunk := keys[:min(len(keys), 1000)]
		keys = keys[len(chunk):]
		err = l.s.Apply(context.Background(), func(b kv.Batch) error {
			for _, k := range chunk {
				b.Delete(k)
			}
			return nil
		})
	}
	if err != nil {
		return fmt.Errorf("cannot delete the log entries Badger held (they are in the log files): %w", err)
	}
	return nil
}

// backup writes the log's entries and live claims to w as frames of Badger's backup
// stream, the entries under the keys they had in Badger, the claims by their hash
// (kv.LogClaimKey, with their expiry as Badger's): a restore loads them into Badger, and the
// restored store's first OpenLog moves them back into log files (migrate), so a
// backup reads as one before the file log did. The claims and the last entry are
// taken together on the writer, so no entry is missing its claim.
func (l *FileLog) backup(w io.Writer) error {
	var list pb.KVList
	var last uint64
	var runs []string
	var now int64
	addClaim := func(h uint64, value []byte, expires int64) {
		list.Kv = append(list.Kv, &pb.KV{Key: kv.LogClaimKey(h), Value: bytes.Clone(value), Version: 1,
			ExpiresAt: uint64(expires), UserMeta: []byte{0}, Meta: []byte{0}})
	}
	err := l.submit(context.Background(), func(tx kv.LogTx) error { // also on a full disk
		t := tx.(*fileTx)
		last, now = t.Last(), t.now.Unix()
		t.l.claims.each(now, addClaim)
		runs = t.l.claims.runPaths()
		return nil
	})
	if err != nil {
		return err
	}
	// The runs are read off the writer: they never change, and one removed meanwhile
	// held only expired claims.
	for _, path := range runs {
		if err := backupRun(w, &list, path, now, addClaim); err != nil {
			return err
		}
	}
	if err := writeKVList(w, &list); err != nil {
		return err
	}
	list.Kv = list.Kv[:0]
	size := 0
	err = l.Entries(0, func(seq uint64, e []byte) (bool, error) {
		if seq > last {
			return false, nil
		}
		list.Kv = append(list.Kv, &pb.KV{Key: kv.EntryKey(nil, kv.LogPrefix(), seq), Value: append([]byte(nil), e...),
			Version: 1, UserMeta: []byte{0}, Meta: []byte{0}})
		if size += len(e); size >= 4<<20 {
			size = 0
			err := writeKVList(w, &list)
			list.Kv = list.Kv[:0]
			return err == nil, err
		}
		return true, nil
	})
	if err == nil {
		err = writeKVList(w, &list)
	}
	return err
}

// backupRun adds the live claims of a run file to list, writing it out as it grows.
func backupRun(w io.Writer, list *pb.KVList, path string, now int64, add func(uint64, []byte, int64)) error {
	_, err := scanHashFile(path, func(_ int64, h uint64, value []byte, expires int64) error {
		if expires > now {
			add(h, value, expires)
		}
		if len(list.Kv) < backupClaimsFrame {
			return nil
		}
		err := writeKVList(w, list)
		list.Kv = list.Kv[:0]
		return err
	})
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// backupClaimsFrame is how many claims a backup frame holds at most.
const backupClaimsFrame = 64 << 10

// writeKVList writes one frame of Badger's backup format: its length (uint64 LE) and
// the KVList in protobuf.
func writeKVList(w io.Writer, list *pb.KVList) error {
	if len(list.Kv) == 0 {
		return nil
	}
	b, err := proto.Marshal(list)
	if err != nil {
		return err
	}
	if err := binary.Write(w, binary.LittleEndian, uint64(len(b))); err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}
