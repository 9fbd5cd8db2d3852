package engine

import (
	"os/exec"
	"strings"
	"testing"
)

// The engine is the domain: it runs on the Log and Views interfaces (store.go) and
// must not pull a store or an HTTP stack in with it (issues 13 and 14; cluster mode puts
// the log on NATS behind the same interface).
func TestEngineImportsNoStoreAndNoHTTPStack(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"github.com/dgraph-io/", "github.com/valyala/fasthttp", "/ctwa-sidecar/storage", "/ctwa-sidecar/proxy"} {
			if strings.Contains(dep, banned) {
				t.Errorf("engine depends on %s", dep)
			}
		}
	}
}
