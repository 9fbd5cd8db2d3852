package e2e

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSignedWebhooksOnlyAreRecorded runs the sidecar with the Meta app secret read from a
// file: unsigned and badly signed webhooks still reach the upstream but are not
// recorded; a signed one is recorded, whatever the case of the header name.
func TestSignedWebhooksOnlyAreRecorded(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "app-secret")
	if err := os.WriteFile(secretFile, []byte("s3cret-app\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	up := startUpstream(t, echoUpstream)
	sc := startSidecar(t, "http://"+up.addr, "-app-secret-file", secretFile)
	body := cloudFixture(t, "text_ctwa_referral")
	mac := hmac.New(sha256.New, []byte("s3cret-app"))
	mac.Write(body)
	good := "sha256=" + hex.EncodeToString(mac.Sum(nil))

	send := func(header, value string) {
		t.Helper()
		req := newRequest(t, "POST", sc.webhook+"/webhook", body)
		if header != "" {
			req.Header[header] = []string{value} // as given: not canonicalized
		}
		if resp, _ := mustDo(t, req); resp.StatusCode != 201 {
			t.Fatalf("%s: forwarded answer %d, want the upstream's 201", header, resp.StatusCode)
		}
	}
	// Metrics are process-wide and other tests sign too: compare before and after.
	const unsigned = `ctwa_sidecar_webhooks_total{format="cloud",result="unsigned"}`
	const badSig = `ctwa_sidecar_webhooks_total{format="cloud",result="bad_signature"}`
	unsigned0, bad0 := scrape(t, sc.api, unsigned), scrape(t, sc.api, badSig)
	send("", "")
	send("X-Hub-Signature-256", "sha256=00"+good[9:])
	events := func() string {
		_, b := mustDo(t, newRequest(t, "GET", sc.api+"/v1/clients/default/apps/106540352242922/events?date_from=2026-01-01&date_to=2026-12-31", nil))
		return string(b)
	}
	if got := events(); !strings.Contains(got, `"total_count":0`) {
		t.Fatalf("unsigned or badly signed webhooks were recorded: %s", got)
	}
	send("x-hub-signature-256", good)
	if got := events(); !strings.Contains(got, `"total_count":1`) {
		t.Fatalf("the signed webhook was not recorded: %s", got)
	}
	if n := len(up.requests()); n != 3 {
		t.Fatalf("upstream got %d webhooks, want all 3", n)
	}
	if d := scrape(t, sc.api, unsigned) - unsigned0; d != 1 {
		t.Errorf("%s grew by %v, want 1", unsigned, d)
	}
	if d := scrape(t, sc.api, badSig) - bad0; d != 1 {
		t.Errorf("%s grew by %v, want 1", badSig, d)
	}
}
