package sidecar

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"os"
	"strings"
	"testing"
)

// demoOutput is exactly what `go run . demo` prints on stdout; README.md shows the same
// text. The numbers follow from the inputs in demo.go and assets/demo/spend.csv, e.g.:
//   - image ad: leads 1–14 click it (+1 lead from the fixtures) = 15 sessions; lead i
//     replies replies[i%3], so i = 1,4,7,10,13 say "buy" (5 converted, "buy" converts
//     the Spring sale) and i = 2,5,8,11 do not reply (15 − 4 = 11 engaged); the orders of
//     leads 2 and 5 give 129.90 + 89.00 = 218.90; spend 96.40 + 92.15 = 188.55, so ROAS
//     218.90 / 188.55 = 1.16 and cost per lead 188.55 / 15 = 12.57.
//   - club ad: leads 24–28, no replies: 5 sessions, 0 engaged; spend 30.00 + 31.20 =
//     61.20, cost per lead 61.20 / 5 = 12.24.
//   - QR code: leads 29–34 name "billboard a": 6 sessions, i = 0,2,4 reply (3 engaged);
//     lead 29's order is 49.90.
//   - 14+10 + 9+5 + 5 + 6+3 + 7+3 = 62 messages from 14+9+5+6+7 = 41 leads.
//
// When the demo's output changes on purpose, update this text and README.md together.
const demoOutput = `· importing the Ads Manager spend sheet: 2 campaigns, 3 ads, 2 days (EUR)
· defining a QR-code source and tracked keywords: source "billboard a", keywords "price" and "buy", "buy" converts the Spring sale
· replaying the webhook fixtures (Cloud API, On-Premises, Sinch, YCloud): 31 webhooks forwarded and recorded
· replaying two days of Click-to-WhatsApp traffic: 62 messages from 41 leads
· posting off-thread purchases from the shop: 4 orders

Sources of app 106540352242922 (2026-03-16 to 2026-03-18)
                 source                   name  sessions  users  engaged  converted  revenue   spend  ROAS  cost/lead
  ad:120214567890123456    Spring sale - image        15     15       11          5   218.90  188.55  1.16      12.57
  ad:120214567890987654    Spring sale - video        10     10        5          0   119.50  122.30  0.98      12.23
                organic                Organic        10     10        5          0     0.00    0.00  0.00       0.00
               custom:1       Billboard A (QR)         6      6        3          0    49.90    0.00  0.00       0.00
  ad:120214567890777777  Join our running club         5      5        0          0     0.00   61.20  0.00      12.24
   post:318276543219876             Nouveautés         1      1        0          0     0.00    0.00  0.00       0.00

Ads of ad account 174816537731874
                  ad                   name  sessions  engaged  converted  revenue       spend  ROAS
  120214567890123456    Spring sale - image        15       11          5   218.90  188.55 EUR  1.16
  120214567890777777  Join our running club         5        0          0     0.00   61.20 EUR  0.00
  120214567890987654    Spring sale - video        10        5          0   119.50  122.30 EUR  0.98
`

// TestDemoPrintsTheInsightsTables runs `ctwa-sidecar demo` as a user would and compares
// everything it prints with demoOutput.
func TestDemoPrintsTheInsightsTables(t *testing.T) {
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"demo"}, Env{Getenv: noEnv, Stdout: &out, Stderr: io.Discard}); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	if got := out.String(); got != demoOutput {
		t.Errorf("demo printed:\n%s\nwant:\n%s\nfirst difference at line %d", got, demoOutput, firstDiffLine(got, demoOutput))
	}
}

// TestREADMEShowsTheDemoOutput keeps the README's demo block equal to what the demo prints.
func TestREADMEShowsTheDemoOutput(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "\n```\n"+demoOutput+"```\n") {
		t.Errorf("README.md has no fenced block equal to the demo's output:\n%s", demoOutput)
	}
}

// firstDiffLine returns the 1-based number of the first line where a and b differ.
func firstDiffLine(a, b string) int {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range min(len(al), len(bl)) {
		if al[i] != bl[i] {
			return i + 1
		}
	}
	return min(len(al), len(bl)) + 1
}

// The binary carries the demo's own assets and no test data: webhook bodies and the
// spend sheet only (issue 14).
func TestDemoEmbedsNoTestData(t *testing.T) {
	n := 0
	err := fs.WalkDir(demoFiles, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		json := strings.HasPrefix(path, "assets/demo/webhooks/") && strings.HasSuffix(path, ".json")
		if !json && path != "assets/demo/spend.csv" {
			t.Errorf("the binary embeds %s", path)
		}
		return nil
	})
	if err != nil || n == 0 {
		t.Fatalf("walking the demo's files: %d files, %v", n, err)
	}
}
