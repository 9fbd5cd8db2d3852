package kv

import (
	"bytes"
	"strings"
	"testing"
)

// A click id is kept as its hash under the app's click prefix: 16 bytes whatever its
// length, distinct for distinct clicks; the legacy key holds the id itself.
func TestClidKeyHashesTheClickID(t *testing.T) {
	const app = "106540352242922"
	clid := "ARAkLkA8rmlFeiCktEJQ-QTwRiyYHAFDLMNDBH0CD3qpjd0HR4irJ6LEkR7JwFF4XvnO2E4Nx0-eM-GABDLOPaOdRMv-_zfUQ2a"
	prefix := ClidPrefix(app)
	k := ClidKey(nil, app, clid)
	if !bytes.HasPrefix(k, prefix) || len(k) != len(prefix)+16 {
		t.Fatalf("ClidKey = %q (%d bytes), want the prefix %q and 16 bytes", k, len(k), prefix)
	}
	if len(k) >= 40 {
		t.Errorf("ClidKey is %d bytes, want under 40", len(k))
	}
	if bytes.Equal(k, ClidKey(nil, app, clid[:len(clid)-1]+"b")) || bytes.Equal(k, ClidKey(nil, "1", clid)) {
		t.Error("two clicks, or two apps, share a key")
	}
	if legacy := LegacyClidKey(nil, app, clid); !bytes.HasPrefix(legacy, prefix) || !strings.HasSuffix(string(legacy), clid) {
		t.Errorf("LegacyClidKey = %q, want the prefix %q and the click id", legacy, prefix)
	}
}
