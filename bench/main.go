// Command bench measures the sidecar side by side with what it competes against: the stub
// upstream alone, a bare fasthttp forwarder (the floor: forwarding and nothing else), nginx
// with proxy_pass and upstream keepalive (when installed), and the sidecar with recording on.
// Everything runs on 127.0.0.1, each system in its own process, and the run stops itself.
// Besides requests per second and latency it reports each system's CPU time per request
// (from /proc, over the measured window) and, once the sidecar has stopped, the size of
// its store per recorded message.
//
//	go run ./bench [-duration 4s] [-concurrency 32] [-rounds 2] [-nginx auto|off|PATH]
//	               [-capi off|down|up] [-spend off|up] [-nats] [-sidecar PATH] [-keep] [-json]
//	go run ./bench -soak 10m [-soak-rate 300] [-soak-fault-every 20s] [-soak-disk-full=true] [-concurrency 32]
//	go run ./bench -store-scale 10000000 [-concurrency 32] [-keep] [-json]
//
// -nats measures the sidecar in cluster mode: its log on an R3 stream of a 3-node NATS
// JetStream cluster that the bench runs in its own process, and the open loop at
// 1 000 req/s, where SPEC §8 bounds the p99 it adds to 5 ms.
//
// -store-scale N fills a store in this process (no HTTP) with N webhooks shaped like a
// year of traffic (N/10 leads, 1 000 ads, 365 days; the target is N = 10000000,
// i.e. 1 M leads) and reports the build rate, store bytes per message, the ads list and
// sources view p50, the refresh rate and the peak RSS against the SPEC §8 targets.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// options is what one run measures and how.
type options struct {
	duration    time.Duration // measured time of one round
	concurrency int           // connections of the load generator
	rounds      int           // closed-loop rounds per system, alternating between systems
	nginx       string        // "auto", "off" or the path of an nginx binary
	sidecar     string        // sidecar binary; empty: build the current module
	sidecarArgs string        // more flags of the measured sidecar, space-separated
	capi        string        // conversions to Meta: off, down (unreachable) or up (a stub that takes all)
	spend       string        // spend sync from Meta: off or up (a Marketing API stub, a run asked every 2s)
	nats        bool          // cluster mode: the sidecar's log on a 3-node JetStream cluster in the bench; open loop at 1 000 req/s
	keep        bool          // keep the temporary directory (logs, configs, store)
	json        bool          // print the results as JSON instead of a table
	// Soak mode (soak.go): mixed traffic with faults for this long instead of the comparison.
	soak           time.Duration
	soakRate       int            // requests per second during the soak
	soakFaultEvery time.Duration  // one fault this often, in rotation
	soakDiskFull   bool           // add the disk-full fault (root on Linux: the data directory on a tmpfs)
	soakTamper     func(*soakRun) // tests: spoil the record before the final check, to see it caught
	soakOnly       []string       // tests: this rotation of faults instead of the whole one
	// Store-scale mode (storescale.go): this many webhooks into an in-process store, then
	// the query timings; 0 runs the comparison.
	storeScale     int
	refreshProfile string // store-scale: a CPU profile of the refresh goes to this file
}

// warmup is the unmeasured lead-in of every round: connections are opened and caches
// filled before the clock starts.
func (o options) warmup() time.Duration {
	return min(o.duration/5, time.Second)
}

func main() {
	// The driver re-executes itself for the stub upstream and the bare forwarder, so that
	// each system under test is its own process like the sidecar and nginx.
	if handled, err := runChild(os.Args[1:]); handled {
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	o, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if o.storeScale > 0 {
		if _, err := runStoreScale(ctx, o, os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if o.soak > 0 {
		if _, err := runSoak(ctx, o, os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if _, err := run(ctx, o, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string, w io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(w)
	fs.DurationVar(&o.duration, "duration", 4*time.Second, "measured time of each round (plus a warm-up of a fifth of it, at most 1s); the default keeps the whole run under 2 minutes")
	fs.IntVar(&o.concurrency, "concurrency", 32, "connections of the load generator (closed loop: requests in flight); with -store-scale, goroutines recording")
	fs.IntVar(&o.rounds, "rounds", 2, "closed-loop rounds per system; systems alternate within each round")
	fs.StringVar(&o.nginx, "nginx", "auto", "nginx binary: auto (PATH, then /usr/sbin/nginx), off, or a path")
	fs.StringVar(&o.sidecar, "sidecar", "", "sidecar binary to measure (default: go build the current module)")
	fs.StringVar(&o.sidecarArgs, "sidecar-args", "", "more flags for the measured sidecar, space-separated, e.g. \"-meta-token x -waba-id 1 -graph-url http://127.0.0.1:1\" (conversions on, Meta unreachable)")
	fs.StringVar(&o.capi, "capi", "off", "conversions to Meta in the measured sidecar: off; down (Meta refuses connections); up (a stub in the bench takes every event)")
	fs.StringVar(&o.spend, "spend", "off", "spend sync from Meta's Marketing API in the measured sidecar: off; up (a stub in the bench serves one ad account, 200 ads × 28 days, and the bench asks for a sync every 2s)")
	fs.BoolVar(&o.nats, "nats", false, fmt.Sprintf("cluster mode: start a %d-node NATS JetStream cluster in the bench process and run the measured sidecar with -nats on it (an R%d stream); "+
		"the open loop then runs at %.0f req/s, where SPEC §8 bounds the p99 added to %.0f ms", natsNodes, natsReplicas, natsRate, natsTargetMs))
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory with logs, configs and the sidecar's store (with -store-scale: the store)")
	fs.BoolVar(&o.json, "json", false, "print the results as JSON instead of a table")
	fs.DurationVar(&o.soak, "soak", 0, "soak mode: this long of mixed traffic with faults injected, then check that no acknowledged webhook was lost, duplicated or mis-recorded (exit 1 if any); 0 runs the comparison")
	fs.IntVar(&o.soakRate, "soak-rate", 300, "soak: requests per second, spread over -concurrency connections")
	fs.DurationVar(&o.soakFaultEvery, "soak-fault-every", 20*time.Second, "soak: inject one fault this often (upstream slow, down, restarted; disk full; sidecar kill -9, SIGTERM; in rotation)")
	fs.BoolVar(&o.soakDiskFull, "soak-disk-full", true, "soak: put the sidecar's data directory on a tmpfs and fill it up once per rotation (needs root on Linux; skipped with a note otherwise)")
	fs.IntVar(&o.storeScale, "store-scale", 0, fmt.Sprintf("store-scale mode: record this many webhooks into a store in this process (no HTTP; N/10 leads, %d ads, %d days), "+
		"then report build rate, store bytes per message, ads list and sources p50, refresh time and peak RSS against SPEC §8; the issue's target size is %d; 0 runs the comparison",
		scaleAds, scaleDays, scaleTargetN))
	fs.StringVar(&o.refreshProfile, "refresh-profile", "", "with -store-scale: write a CPU profile of the refresh to this file (go tool pprof reads it)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q: bench takes flags only", fs.Arg(0))
	}
	switch {
	case o.duration <= 0:
		return o, fmt.Errorf("-duration %s must be positive", o.duration)
	case o.concurrency < 1:
		return o, fmt.Errorf("-concurrency %d must be at least 1", o.concurrency)
	case o.rounds < 1:
		return o, fmt.Errorf("-rounds %d must be at least 1", o.rounds)
	case o.storeScale < 0:
		return o, fmt.Errorf("-store-scale %d must not be negative", o.storeScale)
	case o.refreshProfile != "" && o.storeScale == 0:
		return o, errors.New("-refresh-profile profiles the refresh of -store-scale: pass -store-scale too")
	case o.storeScale > 0 && o.soak > 0:
		return o, errors.New("-store-scale and -soak are separate modes: pass one")
	case o.nats && o.storeScale > 0:
		return o, errors.New("-nats and -store-scale are separate modes (-store-scale records in this process, without a sidecar): pass one")
	case o.nats && o.soak > 0:
		return o, errors.New("-nats and -soak are separate modes (the soak runs its own sidecar on its own log): pass one")
	case o.nats && natsFlagIn(o.sidecarArgs) != "":
		return o, fmt.Errorf("-sidecar-args sets %s, which -nats sets itself (the bench's cluster): drop one", natsFlagIn(o.sidecarArgs))
	case o.spend == "up" && o.capi != "off" && o.capi != "":
		return o, fmt.Errorf("-spend up and -capi %s each point the sidecar's -graph-url at their own Meta: pass one", o.capi)
	case o.soak < 0 || o.soakRate < 1 || o.soakFaultEvery <= 0:
		return o, fmt.Errorf("-soak %s must not be negative, -soak-rate %d and -soak-fault-every %s must be positive",
			o.soak, o.soakRate, o.soakFaultEvery)
	}
	return o, nil
}
