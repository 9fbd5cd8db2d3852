package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ctwa-sidecar/ctwa-sidecar/internal/natstest"
)

// clientAppPath is the API path of the fixtures' app under client.
func clientAppPath(client string) string { return "/v1/clients/" + client + "/apps/" + fixtureApp }

// clientConversations is the total_count of client's conversation events on the
// traffic's day.
func clientConversations(t *testing.T, sc *runSidecar, client string) int {
	t.Helper()
	var p eventsPage
	if err := getJSON2xx(sc.api+clientAppPath(client)+"/events?event_type=conversation&date_from=2026-03-16&date_to=2026-03-16&limit=1", &p); err != nil {
		t.Fatal(err)
	}
	return p.TotalCount
}

// fleetPaths are the answers a fleet view must give as each client's members do: the
// sources and the insights of the three ads of clusterTraffic.
func fleetPaths(client string) []string {
	paths := []string{clientAppPath(client) + "/sources?date_from=2026-03-16&date_to=2026-03-16"}
	for ad := range 3 {
		paths = append(paths, fmt.Sprintf("%s/ads/ad-%d/insights?date_from=2026-03-16&date_to=2026-03-16", clientAppPath(client), ad))
	}
	return paths
}

// adSource is the row of ad id in an answer of the sources endpoint.
func adSource(t *testing.T, body, id string) (sessions, offThread int64, revenue float64) {
	t.Helper()
	var page struct {
		Data []struct {
			Type, ID       string
			Sessions       int64
			OffThreadCount int64 `json:"offthread_count"`
			Revenue        float64
		}
	}
	if err := json.Unmarshal([]byte(body), &page); err != nil {
		t.Fatalf("sources %s: %v", body, err)
	}
	for _, r := range page.Data {
		if r.Type == "ad" && r.ID == id {
			return r.Sessions, r.OffThreadCount, r.Revenue
		}
	}
	t.Fatalf("sources %s: no row of ad %s", body, id)
	return
}

// The fleet view: two members of different clients (a and b) write to their own streams
// on one NATS cluster; one read replica with -nats-stream ctwa_a,ctwa_b answers each
// client's API exactly as that client's member does, from a store per client under its
// -data, and refuses any other client naming client_id. An off-thread event posted to
// the replica goes to its client's stream. After a restart the replica resumes each
// stream where it was, counting nothing twice.
func TestFleetReplicaServesEachClient(t *testing.T) {
	nats := natstest.Cluster(t, 3)
	upstream := "http://" + acceptingUpstream(t).addr
	members := map[string]*runSidecar{
		"a": startSidecar(t, upstream, "-client-id", "a", "-nats", nats.URLs()),
		"b": startSidecar(t, upstream, "-client-id", "b", "-nats", nats.URL(1)),
	}
	// Hand-computed: lead i comes from ad-(i%3), so client a's 6 leads give each ad 2
	// sessions of 2 unique users and b's 12 leads 4 of 4; every third lead's webhook
	// is retried and counted once.
	leads := map[string]int{"a": 6, "b": 12}
	traffic := map[string][][]byte{}
	for client, n := range leads {
		firsts, retries := clusterTraffic(n)
		traffic[client] = append(firsts, retries...)
	}
	postHalf := func(second bool) {
		for client, bodies := range traffic {
			half := bodies[:len(bodies)/2]
			if second {
				half = bodies[len(bodies)/2:]
			}
			for _, body := range half {
				postWebhook(t, members[client], body)
			}
		}
	}
	postHalf(false)
	data := t.TempDir()
	replica := startReplica(t, "-nats", nats.URL(2), "-nats-stream", "ctwa_a,ctwa_b", "-data", data)
	postHalf(true) // the replica follows both streams live
	for client, n := range leads {
		waitFor(t, fmt.Sprintf("the replica to count client %s's %d conversations", client, n),
			func() bool { return clientConversations(t, replica, client) == n })
	}

	// An off-thread purchase of b's first lead (from ad-0), posted to the replica.
	order := []byte(`{"lead_phone":"+491500010000","action":"purchase","revenue":{"amount":25,"currency":"EUR"},` +
		`"event_time":"2026-03-16T12:00:00Z","object_id":"fleet-order-1"}`)
	status, _, got, err := do("POST", replica.api+"/v1/clients/b/external-events", "application/json", order)
	var first struct {
		ID         string `json:"external_event_id"`
		Attributed bool
		Source     struct{ Type, ID string }
	}
	if err != nil || status != 201 || json.Unmarshal(got, &first) != nil || !first.Attributed || first.Source.ID != "ad-0" {
		t.Fatalf("off-thread event of client b on the replica: %d %s %v, want 201 attributed to ad-0", status, got, err)
	}
	// It is in b's stream: b's member finds its object_id recorded.
	status, _, again, err := do("POST", members["b"].api+"/v1/clients/b/external-events", "application/json", order)
	if err != nil || status != 200 || !strings.Contains(string(again), `"external_event_id":"`+first.ID+`"`) {
		t.Fatalf("the same event on b's member: %d %s %v, want 200 with the replica's %s", status, again, err, first.ID)
	}

	agree(t, replica, members)
	for client, n := range leads {
		per := n / 3
		for ad := range 3 {
			body := apiBody(t, replica, fleetPaths(client)[1+ad])
			if !strings.Contains(body, fmt.Sprintf(`"sessions":%d,`, per)) || !strings.Contains(body, fmt.Sprintf(`"unique_users":%d,`, per)) {
				t.Errorf("the replica's insights of client %s's ad-%d: %s, want %d sessions of %d unique users", client, ad, body, per, per)
			}
		}
		sessions, offThread, revenue := adSource(t, apiBody(t, replica, fleetPaths(client)[0]), "ad-0")
		wantOff, wantRevenue := int64(0), 0.0
		if client == "b" {
			wantOff, wantRevenue = 1, 25
		}
		if sessions != int64(per) || offThread != wantOff || revenue != wantRevenue {
			t.Errorf("the replica's source ad-0 of client %s: %d sessions, %d off-thread events, revenue %v; want %d, %d, %v",
				client, sessions, offThread, revenue, per, wantOff, wantRevenue)
		}
	}

	// Any other client, -client-id's default included, is refused naming client_id and
	// the clients recorded here, which GET /v1/clients lists.
	api := newAPIClient(t, replica, "")
	resp, body := api.call("GET", clientAppPath("default")+"/ads/ad-0/insights?date_from=2026-03-16&date_to=2026-03-16", "", nil)
	wantError(t, resp, body, 404, "client_id")
	if want := `client \"default\" is not recorded here; this sidecar records clients \"a\", \"b\"`; !strings.Contains(string(body), want) {
		t.Errorf("an unknown client on the replica: %s, want the message %s", body, want)
	}
	resp, body = api.call("POST", "/v1/clients/c/external-events", "application/json", order)
	wantError(t, resp, body, 404, "client_id")
	var clients struct{ Data []struct{ ID string } }
	if api.getJSON("/v1/clients", &clients); len(clients.Data) != 2 || clients.Data[0].ID != "a" || clients.Data[1].ID != "b" {
		t.Errorf("GET /v1/clients on the replica: %+v, want a and b", clients.Data)
	}
	checkFleetEndpoints(t, replica)
	for _, client := range []string{"a", "b"} {
		if _, err := os.Stat(filepath.Join(data, client, "MANIFEST")); err != nil {
			t.Errorf("client %s's store under -data: %v", client, err)
		}
	}

	// After a restart the replica resumes each stream after the entries its store holds:
	// a new lead of client a is counted once, and nothing before it again.
	replica.stop(t)
	replica = startReplica(t, "-nats", nats.URLs(), "-nats-stream", "ctwa_a,ctwa_b", "-data", data)
	postWebhook(t, members["a"], messagesWebhook(textMsg("491599990001", clusterDay.Add(time.Hour), "hi").fromAd("ad-1")))
	waitFor(t, "the restarted replica to count client a's new lead", func() bool { return clientConversations(t, replica, "a") == 7 })
	if n := clientConversations(t, replica, "b"); n != 12 {
		t.Errorf("the restarted replica counts %d conversations of client b, want 12", n)
	}
	agree(t, replica, members)
}

// agree polls until the replica's answers for each client equal the member's, or shows
// how they differ.
func agree(t *testing.T, replica *runSidecar, members map[string]*runSidecar) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var diffs []string
		for client, m := range members {
			for _, p := range fleetPaths(client) {
				if got, want := apiBody(t, replica, p), apiBody(t, m, p); got != want {
					diffs = append(diffs, fmt.Sprintf("the replica's %s:\n%s\nwant client %s's member's:\n%s", p, got, client, want))
				}
			}
		}
		if len(diffs) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(strings.Join(diffs, "\n"))
		}
	}
}

// checkFleetEndpoints: /readyz, /metrics and the dashboard work on a fleet view.
func checkFleetEndpoints(t *testing.T, sc *runSidecar) {
	t.Helper()
	if status, _, body, _ := do("GET", sc.api+"/readyz", "", nil); status != 200 || string(body) != "ready\n" {
		t.Errorf("/readyz: %d %q, want 200 ready", status, body)
	}
	if n := scrape(t, sc.api, "ctwa_sidecar_ready"); n != 1 {
		t.Errorf("ctwa_sidecar_ready %v, want 1", n)
	}
	// Each stream's views and copy are reported on their own.
	for _, stream := range []string{"ctwa_a", "ctwa_b"} {
		label := `{stream="` + stream + `"}`
		if n := scrape(t, sc.api, "ctwa_sidecar_nats_mirrored_sequence"+label); n < 1 {
			t.Errorf("nats_mirrored_sequence%s = %v, want the stream's last sequence", label, n)
		}
		if n := scrape(t, sc.api, "ctwa_sidecar_nats_connected"+label); n != 1 {
			t.Errorf("nats_connected%s = %v, want 1", label, n)
		}
		if _, _, body, _ := do("GET", sc.api+"/metrics", "", nil); !strings.Contains(string(body), "ctwa_sidecar_view_lag_entries"+label+" ") {
			t.Errorf("/metrics has no view_lag_entries%s", label)
		}
	}
	if status, _, body, _ := do("GET", sc.api+"/", "", nil); status != 200 || !strings.Contains(string(body), "<title>Insights") {
		t.Errorf("the dashboard: %d %.200s", status, body)
	}
}
