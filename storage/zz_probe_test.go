package storage

import (
	"fmt"
	"testing"
	"time"
)

func TestProbeCommit(t *testing.T) {
	s := openTest(t, t.TempDir())
	var slow []string
	for i := 0; i < 1000; i++ {
		txn := s.db.NewTransaction(true)
		txn.Set([]byte(fmt.Sprintf("k%d", i)), []byte("v"))
		st := time.Now()
		if err := txn.Commit(); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(st); d > time.Millisecond {
			slow = append(slow, fmt.Sprintf("%d:%v", i, d.Round(10*time.Microsecond)))
		}
	}
	t.Log(len(slow), slow)
}
