package main

import (
	"bytes"
	"context"
	"io"
	"regexp"
	"testing"
)

// TestDemoPrintsTheInsightsTables runs `ctwa-sidecar demo` as a user would and checks
// the numbers of its tables, which follow from the replayed traffic: 14 leads click the
// image ad (+1 from the fixtures), 9 the video ad (+1), 5 the club ad; "buy" converts
// the Spring sale; orders of 129.90 and 89.00 come from image-ad leads.
func TestDemoPrintsTheInsightsTables(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"demo"}, env{getenv: noEnv, stdout: &out, stderr: io.Discard}); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	for _, row := range []string{
		`ad:120214567890123456 +Spring sale - image +15 +15 +11 +5 +218\.90 +188\.55 +1\.16 +12\.57`,
		`ad:120214567890987654 +Spring sale - video +10 +10 +5 +0 +119\.50 +122\.30 +0\.98 +12\.23`,
		`custom:1 +Billboard A \(QR\) +6 +6 +3 +0 +49\.90 +0\.00 +0\.00 +0\.00`,
		`organic +Organic +10 +10 +5 +0 +0\.00`,
		`120214567890777777 +Join our running club +5 +0 +0 +0\.00 +61\.20 EUR +0\.00`,
		`29 webhooks forwarded and recorded`,
	} {
		if !regexp.MustCompile(row).Match(out.Bytes()) {
			t.Errorf("demo output lacks /%s/:\n%s", row, out.String())
		}
	}
}
