package sidecar

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ctwa-sidecar/ctwa-sidecar/storage"
)

// A sidecar's one store gets the default memtables; each store of a fleet view gets
// small ones, since they all count against one heap limit. Badger maps its first
// memtable file at twice the memtable size.
func TestFleetStoresGetSmallMemtables(t *testing.T) {
	for _, tc := range []struct {
		clients []string
		want    int64
	}{
		{[]string{"shop1"}, 2 * storage.DefaultMemTableSize},
		{[]string{"shop1", "shop2"}, 2 * fleetMemTableSize},
	} {
		c := &config{fsyncInterval: time.Second, minFreeDisk: -1}
		for _, client := range tc.clients {
			c.logs = append(c.logs, clientLog{followed{client: client}, filepath.Join(t.TempDir(), client)})
		}
		stores, err := c.openStores(slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range stores {
			<-st.Opened()
			var size int64
			fi, err := os.Stat(filepath.Join(st.dir, "00001.mem"))
			if err == nil {
				size = fi.Size()
			}
			if size != tc.want {
				t.Errorf("%d client(s), %s: memtable file of %d bytes (%v), want %d", len(tc.clients), st.client, size, err, tc.want)
			}
		}
		stores.close(slog.New(slog.DiscardHandler))
	}
}
