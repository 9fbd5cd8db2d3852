package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"
)

// Backuper writes a consistent backup of the store.
type Backuper interface {
	Backup(w io.Writer) error
}

var backupFailures = metrics.NewCounter(`ctwa_sidecar_backup_failures_total`)

// RegisterBackupRoute adds GET /v1/backup: an online backup of the running sidecar's
// store (Badger locks its directory, so `ctwa-sidecar backup -api …` goes through here).
// The body is the store's backup followed by an end marker (see CopyBackup).
func RegisterBackupRoute(a *API, store Backuper) {
	a.Handle("GET", "/v1/backup", AuthToken, func(ctx *fasthttp.RequestCtx, _ Params) {
		ctx.SetContentType("application/octet-stream")
		ctx.Response.Header.Set("Content-Disposition", `attachment; filename="ctwa-sidecar.backup"`)
		log := RequestLog(ctx)
		streamBody(ctx, func(w *bufio.Writer) {
			// The status line is long gone when a backup fails half-way, and fasthttp ends
			// the chunked body cleanly whatever happened: only the missing end marker tells
			// the client. (An HTTP trailer would have to be set on ctx from this goroutine,
			// after the handler returned.)
			sum := backupSum{w: w}
			err := store.Backup(&sum)
			if err == nil {
				_, err = w.Write(appendBackupEnd(nil, sum.n, sum.crc))
			}
			if err == nil {
				err = w.Flush()
			}
			if err != nil {
				backupFailures.Inc()
				log.Error("online backup failed; the client gets no end marker and keeps no file",
					"bytes_sent", sum.n, "err", err)
			}
		})
	})
}

// backupSum counts and checksums the backup bytes on their way to w.
type backupSum struct {
	w   io.Writer
	n   int64
	crc uint32
}

func (s *backupSum) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	s.n += int64(n)
	s.crc = crc32.Update(s.crc, castagnoli, p[:n])
	return n, err
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// backupEndMagic opens the end marker: a line of fixed length that names the length and
// CRC-32C of the backup bytes before it.
const (
	backupEndMagic = "\nctwa-sidecar backup end "
	backupEndLen   = len(backupEndMagic) + 16 + 1 + 8 + 1 // magic, hex length, ' ', hex CRC, '\n'
)

func appendBackupEnd(dst []byte, n int64, crc uint32) []byte {
	return fmt.Appendf(dst, "%s%016x %08x\n", backupEndMagic, n, crc)
}

// ErrBackupCutShort reports a GET /v1/backup body without a valid end marker: the
// sidecar failed (and logged why) or the connection broke before the backup was whole.
var ErrBackupCutShort = errors.New("backup stream ended without its end marker: the sidecar failed or the connection broke mid-way (the sidecar's log says why)")

// CopyBackup copies a GET /v1/backup body from src to dst without its end marker, and
// fails unless the marker is there and matches the length and checksum of the bytes
// before it, so that a backup cut short never passes for a whole one. It returns the
// number of backup bytes written.
func CopyBackup(dst io.Writer, src io.Reader) (int64, error) {
	buf := make([]byte, 64<<10)
	var sum backupSum
	sum.w = dst
	held := 0 // bytes at the start of buf not written yet: the last backupEndLen seen
	for {
		m, err := src.Read(buf[held:])
		held += m
		if held > backupEndLen {
			if _, werr := sum.Write(buf[:held-backupEndLen]); werr != nil {
				return sum.n, werr
			}
			held = copy(buf, buf[held-backupEndLen:held])
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return sum.n, fmt.Errorf("%w after %d bytes: %w", ErrBackupCutShort, sum.n, err)
		}
	}
	if want := appendBackupEnd(nil, sum.n, sum.crc); !bytes.Equal(buf[:held], want) {
		return sum.n, fmt.Errorf("%w after %d bytes", ErrBackupCutShort, sum.n)
	}
	return sum.n, nil
}
