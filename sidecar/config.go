package sidecar

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/ctwa-sidecar/ctwa-sidecar/proxy"
	"github.com/ctwa-sidecar/ctwa-sidecar/storage"
)

// config is the parsed and validated command line of `serve` (SPEC §2).
type config struct {
	upstream          *url.URL
	listen            string
	apiListen         string
	dataDir           string
	clientID          string
	appID             string
	apiKey            string
	apiToken          string
	appSecret         string
	ycloudSecret      string
	sinchSecret       string
	maxConns          int
	maxConnsPerIP     int
	apiMaxConns       int
	headerTimeout     time.Duration
	fsyncInterval     time.Duration
	minFreeDisk       byteSize
	pprof             bool
	upstreamHeaders   []proxy.Header
	upstreamTimeout   time.Duration
	maxBody           byteSize
	sessionWindow     time.Duration
	attributionWindow time.Duration
	timezone          *time.Location
	logFormat         string
	capi              capiConfig
	spend             spendConfig
	cluster           clusterConfig
	logs              []clientLog // what it records: its own log, or one per followed stream
}

// headerList collects the repeatable -upstream-header flag.
type headerList []string

func (h *headerList) String() string     { return strings.Join(*h, "\n") }
func (h *headerList) Set(v string) error { *h = append(*h, v); return nil }

// byteSize is a size flag that accepts 8MiB, 512KiB, 1MB or plain bytes.
type byteSize int

func (b *byteSize) String() string { return formatSize(int(*b)) }

func (b *byteSize) Set(v string) error {
	n, err := parseSize(v)
	if err != nil {
		return err
	}
	*b = byteSize(n)
	return nil
}

var sizeUnits = []struct {
	suffix string
	mult   int
}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}

func parseSize(v string) (int, error) {
	s, mult := strings.TrimSpace(v), 1
	for _, u := range sizeUnits {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 || n > (1<<31)/mult {
		return 0, fmt.Errorf("%q is not a size such as 8MiB, 512KiB or 1048576 (between 1 byte and 2GiB)", v)
	}
	return n * mult, nil
}

func formatSize(n int) string {
	for _, u := range sizeUnits[:3] {
		if n >= u.mult && n%u.mult == 0 && n/u.mult < 1024 {
			return strconv.Itoa(n/u.mult) + u.suffix
		}
	}
	return strconv.Itoa(n)
}

// serveFlags declares the flags of `serve` on fs, with their defaults, into c.
func serveFlags(fs *flag.FlagSet, c *config, upstream *string, headers *headerList, tz *string) {
	fs.StringVar(upstream, "upstream", "", "business webhook base URL, http(s); request path and query are appended (required)")
	fs.StringVar(&c.listen, "listen", ":8080", `webhook listener: the address WhatsApp or the BSP posts to; "" for none (a read replica of a cluster, with -nats)`)
	fs.StringVar(&c.apiListen, "api-listen", "127.0.0.1:9090", "local API, /metrics, /healthz, /readyz; a non-loopback address needs -api-token and -api-key")
	fs.StringVar(&c.dataDir, "data", "./data", "data directory (created if missing): the log files (log/) and the Badger store of the views")
	fs.StringVar(&c.clientID, "client-id", "default", "client this sidecar records for: the {client_id} of the API paths")
	fs.StringVar(&c.appID, "app-id", "onprem", "app id for payloads that carry none (On-Premises format)")
	fs.StringVar(&c.apiKey, "api-key", "", "key required by the off-thread events endpoint")
	fs.StringVar(&c.apiToken, "api-token", "", "bearer token required by the /v1 API")
	fs.StringVar(&c.appSecret, "app-secret", "", "Meta app secret: Cloud API and On-Premises payloads whose X-Hub-Signature-256 does not verify are forwarded but not recorded")
	fs.StringVar(&c.ycloudSecret, "ycloud-secret", "", "YCloud webhook secret: YCloud payloads whose YCloud-Signature does not verify are forwarded but not recorded")
	fs.StringVar(&c.sinchSecret, "sinch-secret", "", "Sinch webhook secret: Sinch payloads whose x-sinch-webhook-signature does not verify are forwarded but not recorded")
	for _, name := range secretFlags {
		fs.String(name+"-file", "", "read -"+name+" from this file (keeps it out of ps and shell history)")
	}
	fs.IntVar(&c.maxConns, "max-conns", 10000, "most concurrent connections on -listen, idle ones included; more are refused with 503 and counted")
	fs.IntVar(&c.maxConnsPerIP, "max-conns-per-ip", 1000, "most concurrent connections on -listen from one address (IPv6: one /64); more are refused with 429 and counted; 0: no cap (behind a proxy or load balancer all share its address)")
	fs.IntVar(&c.apiMaxConns, "api-max-conns", 1000, "most concurrent connections on -api-listen, apart from -listen's, so /healthz answers under a webhook flood")
	fs.DurationVar(&c.headerTimeout, "header-timeout", 10*time.Second, "a connection must send its request line and headers within this long (a kept-alive one from its next request's first byte), else it is closed and counted; the body then has 30s")
	fs.BoolVar(&c.pprof, "pprof", false, "serve Go profiles at /v1/debug/pprof/ on -api-listen (behind -api-token)")
	fs.DurationVar(&c.fsyncInterval, "fsync-interval", time.Second, "acknowledged webhooks survive kill -9 at once and a power loss after this fsync interval; 0 fsyncs every commit (slower)")
	c.minFreeDisk = storage.DefaultMinFreeDisk
	fs.Var(&c.minFreeDisk, "min-free-disk", "free space to keep on the -data file system: below it webhooks are still forwarded but not recorded (/readyz 503) until space returns")
	fs.Var(headers, "upstream-header", "extra 'Name: value' header on every forwarded request; repeatable (env: one per line); custom names are lower-cased with _ turned into -")
	fs.DurationVar(&c.upstreamTimeout, "upstream-timeout", 10*time.Second, "upstream deadline; past it the sender gets 504")
	c.maxBody = 8 << 20
	fs.Var(&c.maxBody, "max-body", "largest webhook body; larger ones get 413 and are neither forwarded nor recorded")
	fs.DurationVar(&c.sessionWindow, "session-window", 24*time.Hour, "a session stays open this long after the lead's last message")
	fs.DurationVar(&c.attributionWindow, "attribution-window", 672*time.Hour, "an off-thread event is credited only to a session that started at most this long before it")
	fs.StringVar(tz, "timezone", "UTC", "IANA time zone for daily buckets and date_from/date_to")
	fs.StringVar(&c.logFormat, "log-format", "text", "log format: text or json")
}

// parseServe parses the arguments of `serve`. Flags not given on the command line fall
// back to the environment variable CTWA_<NAME> (upper case, '-' → '_').
func parseServe(args []string, getenv func(string) string, usage io.Writer) (*config, error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(usage)
	fs.Usage = func() { printUsage(fs, usage) }
	c := &config{}
	var upstream, tz string
	var headers headerList
	serveFlags(fs, c, &upstream, &headers, &tz)
	capiFlags(fs, &c.capi)
	spendFlags(fs, &c.spend)
	clusterFlags(fs, &c.cluster)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q: serve takes flags only", fs.Arg(0))
	}
	if err := applyEnv(fs, getenv); err != nil {
		return nil, err
	}
	if err := readSecretFiles(fs, c); err != nil {
		return nil, err
	}
	c.capi.tokenFile = fs.Lookup("meta-token-file").Value.String()
	return c, c.finish(upstream, tz, headers)
}

// secretFlags are the flags that also have a -NAME-file form.
var secretFlags = []string{"api-key", "api-token", "app-secret", "ycloud-secret", "sinch-secret", "meta-token"}

// readSecretFiles fills each secret from its -NAME-file flag, refusing both forms at once.
func readSecretFiles(fs *flag.FlagSet, c *config) error {
	dst := map[string]*string{"api-key": &c.apiKey, "api-token": &c.apiToken, "app-secret": &c.appSecret,
		"ycloud-secret": &c.ycloudSecret, "sinch-secret": &c.sinchSecret, "meta-token": &c.capi.metaToken}
	for _, name := range secretFlags {
		path := fs.Lookup(name + "-file").Value.String()
		if path == "" {
			continue
		}
		if *dst[name] != "" {
			return fmt.Errorf("-%s and -%s-file are both set; give one", name, name)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("-%s-file: %w", name, err)
		}
		if *dst[name] = strings.TrimSpace(string(b)); *dst[name] == "" {
			return fmt.Errorf("-%s-file %q is empty", name, path)
		}
	}
	return nil
}

// applyEnv sets every flag not given on the command line from its CTWA_ variable.
func applyEnv(fs *flag.FlagSet, getenv func(string) string) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		name := envName(f.Name)
		v := getenv(name)
		if given[f.Name] || v == "" || err != nil {
			return
		}
		values := []string{v}
		if f.Name == "upstream-header" {
			values = strings.Split(strings.TrimSpace(v), "\n")
		}
		for _, one := range values {
			if e := fs.Set(f.Name, one); e != nil {
				err = fmt.Errorf("invalid value %q for %s (flag -%s): %v", one, name, f.Name, e)
				return
			}
		}
	})
	return err
}

func envName(flagName string) string {
	return "CTWA_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// finish validates the parsed values: the start-up refusals of SPEC §2.
func (c *config) finish(upstream, tz string, headers headerList) error {
	if err := c.finishUpstream(upstream); err != nil {
		return err
	}
	if err := c.cluster.finish(c.clientID, c.listen); err != nil {
		return err
	}
	for _, h := range headers {
		ph, err := proxy.ParseHeader(h)
		if err != nil {
			return err
		}
		c.upstreamHeaders = append(c.upstreamHeaders, ph)
	}
	var err error
	if c.timezone, err = time.LoadLocation(tz); err != nil {
		return fmt.Errorf("-timezone %q is not an IANA time zone such as Europe/Berlin", tz)
	}
	if c.logFormat != "text" && c.logFormat != "json" {
		return fmt.Errorf("-log-format %q is not text or json", c.logFormat)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"-upstream-timeout", c.upstreamTimeout}, {"-session-window", c.sessionWindow}, {"-attribution-window", c.attributionWindow}} {
		if d.v <= 0 {
			return fmt.Errorf("%s %s must be positive", d.name, d.v)
		}
	}
	if c.fsyncInterval < 0 {
		return fmt.Errorf("-fsync-interval %s may not be negative", c.fsyncInterval)
	}
	if c.maxConns <= 0 {
		return fmt.Errorf("-max-conns %d must be positive", c.maxConns)
	}
	if c.apiMaxConns <= 0 {
		return fmt.Errorf("-api-max-conns %d must be positive", c.apiMaxConns)
	}
	if c.maxConnsPerIP < 0 {
		return fmt.Errorf("-max-conns-per-ip %d may not be negative (0: no cap)", c.maxConnsPerIP)
	}
	if c.headerTimeout <= 0 {
		return fmt.Errorf("-header-timeout %s must be positive", c.headerTimeout)
	}
	if c.clientID == "" || c.appID == "" || c.dataDir == "" {
		return errors.New("-client-id, -app-id and -data may not be empty")
	}
	c.logs = c.clientLogs()
	if err := c.capi.finish(); err != nil {
		return err
	}
	if err := c.spend.finish(c.capi.metaToken); err != nil {
		return err
	}
	if len(c.logs) > 1 && (c.capi.events != nil || len(c.spend.pairs) > 0) {
		return errors.New(`-waba-id, -capi-dataset and -spend-sync are one client's: a read replica following several ` +
			`streams (a fleet view) neither sends conversions nor syncs spend; run them on each client's members`)
	}
	if c.capi.metaToken != "" && c.capi.events == nil && len(c.spend.pairs) == 0 {
		return errors.New("-meta-token is used by nothing: add -waba-id or -capi-dataset for conversions to Meta (the dataset is found in the WhatsApp Business Account, or named), or -spend-sync for the spend sync")
	}
	return c.checkAPIExposure()
}

// finishUpstream checks -upstream, which a read replica (-listen "") does without.
func (c *config) finishUpstream(upstream string) error {
	switch {
	case upstream == "" && c.listen == "":
		return nil
	case upstream == "":
		return errors.New("-upstream is required: the business webhook URL, e.g. -upstream http://127.0.0.1:3000")
	case c.listen == "":
		return errors.New(`-upstream is for the webhook listener, and -listen "" runs without one (a read replica)`)
	}
	u, err := url.Parse(upstream)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("-upstream %q is not an http(s) URL without query, such as http://127.0.0.1:3000/webhook", upstream)
	}
	c.upstream = u
	return nil
}

// checkAPIExposure refuses an API reachable from other hosts without credentials.
func (c *config) checkAPIExposure() error {
	host, _, err := net.SplitHostPort(c.apiListen)
	if err != nil {
		return fmt.Errorf("-api-listen %q is not host:port: %v", c.apiListen, err)
	}
	if isLoopback(host) {
		return nil
	}
	switch {
	case c.apiToken == "":
		return fmt.Errorf("-api-listen %q is not a loopback address, so -api-token is required", c.apiListen)
	case c.apiKey == "":
		return fmt.Errorf("-api-listen %q is not a loopback address, so -api-key is required", c.apiListen)
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// warnNormalizedHeaders tells the operator which -upstream-header names were rewritten.
func (c *config) warnNormalizedHeaders(log *slog.Logger) {
	for _, h := range c.upstreamHeaders {
		if h.Name != h.Given {
			log.Warn("-upstream-header name normalized: custom header names are lower-cased with _ turned into -",
				"given", h.Given, "sent_as", h.Name)
		}
	}
}

// warnFileLimit warns when the open-file limit is below what the sidecar may hold at
// its connection limits (both listeners full, the upstream client's connections at
// fasthttp's default per host, a few hundred files for the store): past it accept
// fails with EMFILE and the store may fail to open a file.
func (c *config) warnFileLimit(log *slog.Logger, limit uint64) {
	if need := uint64(c.maxConns+c.apiMaxConns) + fasthttp.DefaultMaxConnsPerHost + 512; limit < need {
		log.Warn("the open-file limit is below what -max-conns and -api-max-conns need: connections past it "+
			"are not accepted (accept_error) and the store may fail to open files; raise it (ulimit -n, "+
			"systemd LimitNOFILE=) or lower -max-conns", "limit", limit, "need", need,
			"max_conns", c.maxConns, "api_max_conns", c.apiMaxConns)
	}
}

func newLogger(format string, w io.Writer) *slog.Logger {
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}

func printUsage(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprint(w, `ctwa-sidecar forwards WhatsApp webhooks unchanged to your endpoint and records
Click-to-WhatsApp marketing events beside them.

Usage:
  ctwa-sidecar [serve] [flags]   run the sidecar (the default command)
  ctwa-sidecar demo              self-contained tour: replays sample traffic, prints the insights
  ctwa-sidecar backup  -data DIR -out FILE   back up a stopped sidecar's store
  ctwa-sidecar backup  -api URL -out FILE    back up a running sidecar online, through its API
  ctwa-sidecar restore -data DIR -in FILE    restore a backup into an empty directory
  ctwa-sidecar version           print the version

Flags of serve (each also read from CTWA_<NAME>, e.g. CTWA_UPSTREAM; the command line wins):
`)
	fs.PrintDefaults()
}
