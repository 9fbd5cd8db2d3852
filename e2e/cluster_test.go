package e2e

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ctwa-sidecar/ctwa-sidecar/internal/natstest"
	"github.com/ctwa-sidecar/ctwa-sidecar/sidecar"
)

// startReplica runs a read replica (-listen "", no -upstream) through sidecar.Run.
func startReplica(t *testing.T, args ...string) *runSidecar {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &runSidecar{stderr: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	apis := make(chan net.Addr, 1)
	all := append([]string{"serve", "-listen", "", "-api-listen", "127.0.0.1:0", "-data", t.TempDir()}, args...)
	e := sidecar.Env{Stderr: s.stderr, Listening: func(w, a net.Addr) {
		if w != nil {
			t.Errorf("a read replica listens for webhooks on %s", w)
		}
		apis <- a
	}}
	go func() { s.done <- sidecar.Run(ctx, all, e) }()
	select {
	case a := <-apis:
		s.api = "http://" + a.String()
	case err := <-s.done:
		t.Fatalf("replica did not start: %v\n%s", err, s.stderr)
	}
	t.Cleanup(func() { s.stop(t) })
	return s
}

// clusterDay is the day of the cluster tests' traffic.
var clusterDay = time.Date(2026, 3, 16, 10, 0, 0, 0, time.UTC)

// clusterTraffic is n CTWA first messages from n leads over three ads, and retries of
// every third of them (the same bodies again): first i is clusterLead(i)'s, from a click
// on clusterAd(i), and retry k is first 3k.
func clusterTraffic(n int) (firsts, retries [][]byte) {
	for i := range n {
		m := textMsg(clusterLead(i), clusterDay.Add(time.Duration(i)*time.Second), "hi").fromAd(clusterAd(i))
		body := cloudWebhook("messages", []waItem{m})
		firsts = append(firsts, body)
		if i%3 == 0 {
			retries = append(retries, body)
		}
	}
	return firsts, retries
}

// clusterLead is the phone number of clusterTraffic's lead i.
func clusterLead(i int) string { return fmt.Sprintf("4915%08d", 10000+i) }

// clusterAd is the ad that clusterTraffic's lead i clicked: one of ad-0, ad-1, ad-2.
func clusterAd(i int) string { return fmt.Sprintf("ad-%d", i%3) }

// apiServer is a sidecar whose API a cluster test reads: run in process or the binary.
type apiServer interface{ apiBase() string }

func (s *runSidecar) apiBase() string { return s.api }
func (s *binSidecar) apiBase() string { return s.api }

// adInsights is the answer of ad id's insights for the traffic's day.
func adInsights(t *testing.T, sc apiServer, ad string) string {
	t.Helper()
	return apiBody(t, sc, appPath+"/ads/"+ad+"/insights?date_from=2026-03-16&date_to=2026-03-16")
}

// conversationCount is the total_count of the app's conversation events on the day.
func conversationCount(t *testing.T, sc apiServer) int {
	t.Helper()
	var p eventsPage
	if err := getJSON2xx(sc.apiBase()+appPath+"/events?event_type=conversation&date_from=2026-03-16&date_to=2026-03-16&limit=1", &p); err != nil {
		t.Fatal(err)
	}
	return p.TotalCount
}

// Two members on one stream, webhooks alternating between them and each retry sent to
// the other member: both answer the insights API alike, the same as one sidecar fed the
// same traffic, and every lead is counted once.
func TestClusterMembersAgree(t *testing.T) {
	nats := natstest.Cluster(t, 3)
	upstream := "http://" + acceptingUpstream(t).addr
	members := []*runSidecar{
		startSidecar(t, upstream, "-nats", nats.URLs()),
		startSidecar(t, upstream, "-nats", nats.URL(1)),
	}
	single := startSidecar(t, upstream)
	firsts, retries := clusterTraffic(30)
	for i, body := range firsts {
		postWebhook(t, members[i%2], body)
		postWebhook(t, single, body)
	}
	for i, body := range retries { // retry i is of first 3i, which went to member (3i)%2
		postWebhook(t, members[(3*i+1)%2], body)
		postWebhook(t, single, body)
	}
	if n := conversationCount(t, single); n != 30 {
		t.Fatalf("the single sidecar counts %d conversations, want 30 (one per lead)", n)
	}
	// Each ad has 10 leads, each counted once: 10 sessions, 10 unique users.
	for ad := range 3 {
		if want := adInsights(t, single, fmt.Sprintf("ad-%d", ad)); !strings.Contains(want, `"sessions":10,`) || !strings.Contains(want, `"unique_users":10,`) {
			t.Fatalf("the single sidecar's insights of ad-%d: %s, want 10 sessions of 10 unique users", ad, want)
		}
	}
	// The members' views follow the stream: poll until they agree, or show how they differ.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var diffs []string
		for ad := range 3 {
			id := fmt.Sprintf("ad-%d", ad)
			want := adInsights(t, single, id)
			for m, sc := range members {
				if got := adInsights(t, sc, id); got != want {
					diffs = append(diffs, fmt.Sprintf("member %d's insights of %s:\n%s\nwant the single sidecar's:\n%s", m, id, got, want))
				}
			}
		}
		if len(diffs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(strings.Join(diffs, "\n"))
		}
	}
}

// With the whole NATS cluster down, webhooks are forwarded and spooled (a retry among
// them counted once), /readyz says so, and once the cluster is back the member publishes
// the spool and counts every lead once.
func TestClusterSpoolsWhileUnreachable(t *testing.T) {
	nats := natstest.Cluster(t, 3)
	upstream := "http://" + acceptingUpstream(t).addr
	sc := startSidecar(t, upstream, "-nats", nats.URLs(), "-nats-timeout", "500ms")
	firsts, _ := clusterTraffic(12)
	for _, body := range firsts[:4] {
		postWebhook(t, sc, body)
	}
	nats.StopAll()
	for _, body := range append(firsts[4:], firsts[6]) {
		postWebhook(t, sc, body) // forwarded: the upstream's 2xx
	}
	if status, _, body, _ := do("GET", sc.api+"/readyz", "", nil); status != 200 || !strings.Contains(string(body), "spooling") {
		t.Fatalf("/readyz during the outage: %d %q, want 200 saying spooling", status, body)
	}
	if n := scrape(t, sc.api, "ctwa_sidecar_spool_entries"); n != 8 {
		t.Fatalf("spool_entries %v during the outage, want 8 (the retry deduplicated)", n)
	}
	nats.StartAll()
	waitFor(t, "the spool to be published and all 12 leads counted", func() bool {
		_, _, body, _ := do("GET", sc.api+"/readyz", "", nil)
		return !strings.Contains(string(body), "spooling") && conversationCount(t, sc) == 12
	})
	if n := scrape(t, sc.api, "ctwa_sidecar_spool_entries"); n != 0 {
		t.Fatalf("spool_entries %v after the outage, want 0", n)
	}
}

// A read replica (-listen "", no -upstream) follows the member's stream and answers its
// API with the member's numbers.
func TestReadReplicaServesTheGroup(t *testing.T) {
	nats := natstest.Cluster(t, 3)
	upstream := "http://" + acceptingUpstream(t).addr
	member := startSidecar(t, upstream, "-nats", nats.URLs())
	firsts, _ := clusterTraffic(9)
	for _, body := range firsts {
		postWebhook(t, member, body)
	}
	replica := startReplica(t, "-nats", nats.URLs())
	waitFor(t, "the replica to count the member's 9 conversations", func() bool { return conversationCount(t, replica) == 9 })
	if got, want := adInsights(t, replica, "ad-1"), adInsights(t, member, "ad-1"); got != want {
		t.Errorf("replica's insights:\n%s\nwant the member's:\n%s", got, want)
	}
}

// forwardedBy posts body to sc's webhook listener and reports an error unless the sender
// got acceptingUpstream's own answer (safe to call from any goroutine).
func forwardedBy(sc *runSidecar, body []byte) error {
	status, _, got, err := do("POST", sc.webhook+"/webhook", "application/json", body)
	if err != nil || status != 202 || string(got) != upstreamAnswer {
		return fmt.Errorf("sender got %d %q %v, want the upstream's 202 %q", status, got, err, upstreamAnswer)
	}
	return nil
}

// apiBody GETs path on sc's API and requires 200.
func apiBody(t *testing.T, sc apiServer, path string) string {
	t.Helper()
	status, _, body, err := do("GET", sc.apiBase()+path, "", nil)
	if err != nil || status != 200 {
		t.Fatalf("GET %s: %d %v %.300s", path, status, err, body)
	}
	return string(body)
}

// A larger round robin: 60 first messages over four ads alternate between two members,
// each with its own upstream, and 20 of them are retried on the other member, half of
// those at the same moment as the original. Every webhook gets its upstream's answer;
// both members and one plain sidecar fed the same traffic answer the ads' insights and
// the sources alike; and every lead is counted once.
func TestClusterRoundRobinAgrees(t *testing.T) {
	const n, ads = 60, 4
	nats := natstest.Cluster(t, 3)
	ups := []*stubUpstream{acceptingUpstream(t), acceptingUpstream(t)}
	flags := []string{"-client-id", "default", "-nats", nats.URLs(), "-nats-replicas", "3"}
	members := []*runSidecar{
		startSidecar(t, "http://"+ups[0].addr, flags...),
		startSidecar(t, "http://"+ups[1].addr, flags...),
	}
	plainUp := acceptingUpstream(t)
	single := startSidecar(t, "http://"+plainUp.addr)

	bodies := make([][]byte, n)
	for i := range n {
		lead := fmt.Sprintf("4916%08d", 20000+i)
		m := textMsg(lead, clusterDay.Add(time.Duration(i)*time.Minute), "hi").fromAd(fmt.Sprintf("ad-rr-%d", i%ads))
		bodies[i] = messagesWebhook(m)
	}
	retried := 0
	for i, body := range bodies {
		own, other := members[i%2], members[(i+1)%2]
		switch {
		case i%6 == 0: // the retry races the original on the other member
			errs := make(chan error, 2)
			go func() { errs <- forwardedBy(own, body) }()
			go func() { errs <- forwardedBy(other, body) }()
			for range 2 {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
			retried++
		case i%6 == 3: // the retry comes after the original's answer
			if err := forwardedBy(own, body); err != nil {
				t.Fatal(err)
			}
			if err := forwardedBy(other, body); err != nil {
				t.Fatal(err)
			}
			retried++
		default:
			if err := forwardedBy(own, body); err != nil {
				t.Fatal(err)
			}
		}
		postWebhook(t, single, body)
		if i%3 == 0 {
			postWebhook(t, single, body)
		}
	}
	if retried != 20 {
		t.Fatalf("the test sent %d retries, want 20", retried)
	}
	// Each member's upstream got every webhook posted to it: 30 own + 10 retries.
	for m, u := range ups {
		if got := len(u.requests()); got != n/2+retried/2 {
			t.Errorf("member %d's upstream got %d requests, want %d", m, got, n/2+retried/2)
		}
	}
	if got := len(plainUp.requests()); got != n+retried {
		t.Errorf("the plain sidecar's upstream got %d requests, want %d", got, n+retried)
	}

	// Hand-computed: one conversation per lead; 15 leads per ad, each a session of its own.
	if c := conversationCount(t, single); c != n {
		t.Fatalf("the single sidecar counts %d conversations, want %d (retries once)", c, n)
	}
	for ad := range ads {
		body := adInsights(t, single, fmt.Sprintf("ad-rr-%d", ad))
		if !strings.Contains(body, fmt.Sprintf(`"sessions":%d,`, n/ads)) || !strings.Contains(body, fmt.Sprintf(`"unique_users":%d,`, n/ads)) {
			t.Fatalf("the single sidecar's insights of ad-rr-%d: %s, want %d sessions of %d unique users", ad, body, n/ads, n/ads)
		}
	}

	paths := []string{appPath + "/sources?date_from=2026-03-16&date_to=2026-03-16"}
	for ad := range ads {
		paths = append(paths, fmt.Sprintf("%s/ads/ad-rr-%d/insights?date_from=2026-03-16&date_to=2026-03-16", appPath, ad))
	}
	want := map[string]string{}
	for _, p := range paths {
		want[p] = apiBody(t, single, p)
	}
	var diffs []string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		diffs = diffs[:0]
		for m, sc := range members {
			if c := conversationCount(t, sc); c != n {
				diffs = append(diffs, fmt.Sprintf("member %d counts %d conversations, want %d", m, c, n))
			}
			for _, p := range paths {
				if got := apiBody(t, sc, p); got != want[p] {
					diffs = append(diffs, fmt.Sprintf("member %d's %s:\n%s\nwant the single sidecar's:\n%s", m, p, got, want[p]))
				}
			}
		}
		if len(diffs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(strings.Join(diffs, "\n"))
		}
	}
}

// A read replica needs -nats: -listen "" alone is refused at start-up, naming -nats.
func TestClusterReplicaNeedsNats(t *testing.T) {
	var stderr syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := sidecar.Run(ctx, []string{"serve", "-listen", "", "-api-listen", "127.0.0.1:0", "-data", t.TempDir()},
		sidecar.Env{Stderr: &stderr, Listening: func(_, _ net.Addr) { t.Error("the replica started without -nats") }})
	if err == nil || !strings.Contains(err.Error(), "-nats") {
		t.Fatalf("sidecar.Run without -nats returned %v, want an error naming -nats\n%s", err, stderr.String())
	}
}
