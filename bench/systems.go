package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// system is one server under test: where the webhooks go and how to inspect it.
type system struct {
	name    string
	addr    string // host:port receiving the webhooks
	proc    *proc
	metrics string // Prometheus endpoint (the sidecar's), for events recorded per second
	data    string // the sidecar's data directory
}

// Names of the systems, in the order each round drives them.
const (
	nameUpstream = "upstream direct"
	nameBare     = "bare fasthttp"
	nameNginx    = "nginx"
	nameSidecar  = "sidecar"
)

// startSelf starts the bench binary itself in a child role and waits until it serves.
func startSelf(ctx context.Context, dir, name string, args ...string) (*system, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("cannot find the bench binary to start %s: %w", name, err)
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	role := "upstream"
	if name == nameBare {
		role = "bare"
	}
	p, err := startProc(ctx, dir, name, self, childArgs(role, append([]string{addr}, args...)...)...)
	if err != nil {
		return nil, err
	}
	s := &system{name: name, addr: addr, proc: p}
	if err := waitReady(ctx, p, "http://"+addr+"/"); err != nil {
		p.stop()
		return nil, err
	}
	return s, nil
}

// buildSidecar builds the module the driver runs in (the current sidecar) into dir.
func buildSidecar(ctx context.Context, dir string) (string, error) {
	gomod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("cannot locate the module to build the sidecar (go env GOMOD): %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	if root == "." || root == "/" {
		return "", fmt.Errorf("not inside the ctwa-sidecar module (go env GOMOD = %q): run from the repository or pass -sidecar",
			strings.TrimSpace(string(gomod)))
	}
	bin := filepath.Join(dir, "ctwa-sidecar")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build of the sidecar in %s failed: %w\n%s", root, err, out)
	}
	return bin, nil
}

// startSidecar runs the sidecar with recording on (its default) in front of upstream,
// with a fresh store in dir, and the flags extra.
func startSidecar(ctx context.Context, dir, bin, upstream string, extra ...string) (*system, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	api, err := freeAddr()
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "sidecar-data")
	args := append([]string{"serve", "-upstream", "http://" + upstream, "-listen", addr, "-api-listen", api, "-data", data}, extra...)
	p, err := startProc(ctx, dir, nameSidecar, bin, args...)
	if err != nil {
		return nil, err
	}
	if err := waitReady(ctx, p, "http://"+api+"/healthz"); err != nil {
		p.stop()
		return nil, err
	}
	return &system{name: nameSidecar, addr: addr, proc: p, metrics: "http://" + api + "/metrics", data: data}, nil
}
