// Command ctwa-sidecar forwards WhatsApp webhooks byte for byte to a business endpoint and
// records Click-to-WhatsApp marketing events beside them in an embedded Badger store.
//
// The commands live in package sidecar; main builds their Env from the process (arguments,
// environment, standard streams, SIGTERM and SIGINT) and calls sidecar.Run.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/ctwa-sidecar/ctwa-sidecar/sidecar"
)

// version is set at build time with -ldflags "-X main.version=…"; otherwise the module
// version from the build info is used.
var version = ""

// defaultMemoryLimit is the Go heap's soft limit when GOMEMLIMIT is not set: the
// sidecar should stay under 256 MiB resident (SPEC §7), of which Badger's mmapped files
// and memtables take a share outside the Go heap's accounting.
const defaultMemoryLimit = 160 << 20

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	env := sidecar.Env{Getenv: os.Getenv, Stdout: os.Stdout, Stderr: os.Stderr, Version: version}
	if err := sidecar.Run(ctx, os.Args[1:], env); err != nil {
		fmt.Fprintln(os.Stderr, "ctwa-sidecar:", err)
		os.Exit(2)
	}
}
