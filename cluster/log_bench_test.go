package cluster

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/ctwa-sidecar/ctwa-sidecar/internal/natstest"
)

// BenchmarkAppend is one webhook's append (a claim and a 400-byte entry) on a 3-node
// loopback cluster, from 64 goroutines at once, as under load: ns/op is the inverse of
// the throughput; batching shows in ctwa_sidecar_nats_batch_requests.
//
//	go test -run '^$' -bench Append -benchtime 20000x ./cluster
func BenchmarkAppend(b *testing.B) {
	nats := natstest.Cluster(b, 3)
	l := member(b, nats.URLs())
	entry := string(make([]byte, 400))
	var n atomic.Int64
	b.SetParallelism(32) // × GOMAXPROCS (2 here): 64 appenders
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, _, err := claimAndAdd(l, fmt.Sprintf("wamid.%d", n.Add(1)), entry); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
