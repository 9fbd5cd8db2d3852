package main

// Soak mode (go run ./bench -soak 10m): mixed traffic against the sidecar alone while
// faults are injected, then proof that nothing acknowledged was lost, nothing counted
// twice, nothing recorded wrong; with the sidecar's memory over time.
//
// Traffic, paced at -soak-rate requests per second over -concurrency connections:
//   - a new Click-to-WhatsApp webhook: a new lead, message id and click, from one of 20 ads;
//   - the sender's retry of an earlier webhook (acknowledged or not), as Meta and BSPs do;
//   - a status webhook for a lead who never writes (must leave no event);
//   - a garbage body (random bytes, truncated or deep JSON, foreign JSON; must leave no event);
//   - an off-thread purchase with its own object_id, through the api-key endpoint.
//
// Faults, one every -soak-fault-every, in rotation: upstream slow past the sidecar's
// deadline, upstream down, upstream restarted, sidecar kill -9 and restart on the same
// data directory, sidecar SIGTERM and restart. After each fault, and at the end once the
// sender has retried everything it was not acknowledged, the sidecar's events export is
// checked against what the sidecar acknowledged. Once per rotation, halfway to its first
// fault, a connection flood: idle connections from 127.0.0.2, twice the sidecar's
// -max-conns-per-ip, while the traffic from 127.0.0.1 goes on. With -soak-disk-full
// (root on Linux), the sidecar's data directory is on a tmpfs and the rotation gains a
// disk-full fault before the kill -9 (soak_disk.go).

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

const (
	soakApp       = "106540352242922"
	soakAPIKey    = "soak-key"
	soakAds       = 20
	soakTimeout   = time.Second // the sidecar's -upstream-timeout during the soak
	soakSampleGap = 5 * time.Second
)

// soakTarget is the running sidecar: where to send and how to reach its API.
type soakTarget struct {
	proc         *proc
	webhook, api string // host:port
	gen          int    // restarts before this one
}

// soakLead is what the driver sent for one lead and what the sidecar answered.
type soakLead struct {
	acked bool // some attempt was answered 2xx
	// inFault: every 2xx answer came during a disk-full fault, when the sidecar forwards
	// without recording; such a lead may lack its event.
	inFault bool
}

type soakOff struct {
	acked bool
	lead  int
}

// soakRun is one soak: its systems, what was sent, and what was seen.
type soakRun struct {
	o        options
	dir, bin string
	out      io.Writer
	start    time.Time
	ts       string // unix seconds of every message
	day      string // YYYY-MM-DD of ts, UTC
	up       *ctlUpstream
	target   atomic.Pointer[soakTarget]
	client   *fasthttp.Client

	mu    sync.Mutex
	leads []soakLead // by sequence number
	offs  []soakOff  // by object number

	sent, acked, retries, statuses, garbage, offSent, offAcked atomic.Int64
	failed                                                     sync.Map // answer kind → *atomic.Int64
	faults                                                     map[string]int
	checks                                                     int
	lost, dup, mis, offLost, offDup                            int
	rss                                                        []rssSample

	// The disk-full fault (soak_disk.go): nil disk when it is off or skipped (diskNote says why).
	disk                         *soakDisk
	diskNote                     string
	diskPhase                    atomic.Int32
	diskBad, diskAnswered        atomic.Int64
	diskFullLeads                []int        // new leads acknowledged while the disk was full; under mu
	diskBadFirst                 atomic.Value // the first wrong answer during a fault
	inFaultAcked, inFaultMissing int          // at the last check
}

type rssSample struct {
	at  time.Duration
	mib float64
	gen int
}

// soakSummary is what the soak proved; the fields marked "must be zero" must be zero.
type soakSummary struct {
	Duration                             time.Duration
	Rate                                 int
	Sent, AckedInLoad, Acked, Retries    int64
	Statuses, Garbage, OffSent, OffAcked int64
	Leads                                int
	Failures                             map[string]int64 // answers that were not 2xx, by kind
	Faults                               map[string]int
	FaultsTotal, Restarts, Checks        int
	Lost, Duplicated, Misrecorded        int     // must be zero
	OffThreadLost, OffThreadDuplicated   int     // must be zero
	Unresolved                           int     // never acknowledged, even after the final retries
	DiskFull                             string  // "" when the disk-full fault ran or was off, else why it was skipped
	DiskAnswered, DiskNewLeads           int64   // webhooks answered (new leads acknowledged) while the disk was full
	DiskRefused                          float64 // store_refused_total growth over the disk-full faults
	InFaultAcked, InFaultMissing         int     // leads acknowledged only during a disk-full fault, and those of them without an event
	RSSMinMiB, RSSMaxMiB, RSSFinalMiB    float64
	Samples                              []rssSample
}

func (s soakSummary) ok() bool {
	return s.Lost == 0 && s.Duplicated == 0 && s.Misrecorded == 0 && s.OffThreadLost == 0 && s.OffThreadDuplicated == 0
}

// runSoak runs the soak for o.soak and writes its report to stdout; it returns an error
// when the run could not be done or when anything was lost, duplicated or mis-recorded.
func runSoak(ctx context.Context, o options, stdout, progress io.Writer) (sum soakSummary, err error) {
	dir, done, err := workDir(o, "ctwa-soak-", progress)
	if err != nil {
		return sum, err
	}
	defer done(&err)
	var disk *soakDisk
	diskNote := ""
	if o.soakDiskFull {
		if disk, diskNote = mountSoakDisk(dir, o); disk == nil {
			fmt.Fprintf(progress, "soak: the %s fault is skipped: %s\n", soakDiskFull, diskNote)
		} else {
			fmt.Fprintf(progress, "soak: the sidecar's data directory is on a %s tmpfs (%s)\n", mib(disk.size), disk.mnt)
			defer func() { // after the sidecar has stopped, whatever happened
				if err := unmountTmpfs(disk.mnt); err != nil {
					fmt.Fprintf(progress, "soak: cannot unmount the tmpfs %s: %v\n", disk.mnt, err)
				} else if o.keep {
					fmt.Fprintln(progress, "soak: the sidecar's store was on the tmpfs, unmounted: it is not kept")
				}
			}()
		}
	}
	bin := o.sidecar
	if bin == "" {
		fmt.Fprintln(progress, "building the sidecar (go build)")
		if bin, err = buildSidecar(ctx, dir); err != nil {
			return sum, err
		}
	}
	start := time.Now()
	r := &soakRun{o: o, dir: dir, bin: bin, out: progress, start: start,
		ts: strconv.FormatInt(start.Unix(), 10), day: start.UTC().Format("2006-01-02"), faults: map[string]int{},
		client: &fasthttp.Client{ReadTimeout: 15 * time.Second, WriteTimeout: 15 * time.Second, MaxConnsPerHost: 4 * o.concurrency,
			DisableHeaderNamesNormalizing: true, NoDefaultUserAgentHeader: true},
		disk: disk, diskNote: diskNote}
	if r.up, err = startCtlUpstream(); err != nil {
		return sum, err
	}
	defer r.up.close()
	if err := r.startSidecar(ctx); err != nil {
		return sum, err
	}
	defer func() {
		if t := r.target.Load(); t != nil {
			t.proc.stop()
		}
	}()

	fmt.Fprintf(progress, "soak: %s of mixed traffic at %d req/s over %d connections, a fault every %s\n",
		o.soak, o.soakRate, o.concurrency, o.soakFaultEvery)
	lctx, stopLoad := context.WithTimeout(ctx, o.soak)
	defer stopLoad()
	var wg sync.WaitGroup
	wg.Go(func() { r.load(lctx) })
	wg.Go(func() { r.sampleRSS(lctx) })
	err = r.injectFaults(lctx)
	if err != nil {
		stopLoad() // no use sending on for the rest of the soak
	}
	wg.Wait()
	if ctx.Err() != nil { // interrupted: a fault may have failed for it
		return sum, ctx.Err()
	}
	if err != nil {
		return sum, err
	}
	fmt.Fprintln(progress, "soak: load stopped; the sender retries everything not acknowledged")
	ackedInLoad := r.acked.Load()
	unresolved, err := r.retryUnacked(ctx)
	if err != nil {
		return sum, err
	}
	if o.soakTamper != nil {
		o.soakTamper(r)
	}
	if err := r.verify(true); err != nil {
		return sum, err
	}
	sum = r.summary(unresolved)
	sum.AckedInLoad = ackedInLoad
	r.writeReport(stdout, sum)
	if !sum.ok() {
		return sum, fmt.Errorf("soak failed: %d lost, %d duplicated, %d mis-recorded webhooks; %d lost, %d duplicated off-thread events",
			sum.Lost, sum.Duplicated, sum.Misrecorded, sum.OffThreadLost, sum.OffThreadDuplicated)
	}
	return sum, nil
}

// ---- the sidecar ----

func (r *soakRun) startSidecar(ctx context.Context) error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	api, err := freeAddr()
	if err != nil {
		return err
	}
	gen := 0
	if old := r.target.Load(); old != nil {
		gen = old.gen + 1
	}
	data := filepath.Join(r.dir, "sidecar-data")
	var reserve []string
	if r.disk != nil {
		data, reserve = r.disk.data, []string{"-min-free-disk", strconv.Itoa(soakReserve>>20) + "MiB"}
	}
	args := append([]string{"serve",
		"-upstream", "http://" + r.up.addr, "-listen", addr, "-api-listen", api, "-api-key", soakAPIKey,
		"-upstream-timeout", soakTimeout.String(), "-data", data,
		"-max-conns-per-ip", strconv.Itoa(r.floodCap())}, reserve...)
	p, err := startProc(ctx, r.dir, fmt.Sprintf("sidecar-%d", gen), r.bin, args...)
	if err != nil {
		return err
	}
	if err := waitReady(ctx, p, "http://"+api+"/healthz"); err != nil {
		p.stop()
		return err
	}
	r.target.Store(&soakTarget{proc: p, webhook: addr, api: api, gen: gen})
	return nil
}

// kill ends the sidecar with SIGKILL (hard) or SIGTERM and starts it again on the same data.
func (r *soakRun) restartSidecar(ctx context.Context, hard bool) error {
	t := r.target.Load()
	if hard {
		t.proc.cmd.Process.Kill()
	} else {
		t.proc.cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-t.proc.done:
	case <-time.After(45 * time.Second):
		return fmt.Errorf("sidecar did not exit within 45s of the signal:\n%s", t.proc.logTail())
	}
	if !hard && t.proc.cmd.ProcessState != nil && !t.proc.cmd.ProcessState.Success() {
		return fmt.Errorf("sidecar exited %v after SIGTERM, want 0:\n%s", t.proc.cmd.ProcessState, t.proc.logTail())
	}
	t.proc.cancel()
	return r.startSidecar(ctx)
}

// ---- the upstream ----

// ctlUpstream is the business webhook, in the driver's process so that faults can be
// switched on and off: slow (answers after the sidecar's deadline) and down (not listening).
type ctlUpstream struct {
	addr string
	slow atomic.Bool
	mu   sync.Mutex
	srv  *fasthttp.Server
}

func startCtlUpstream() (*ctlUpstream, error) {
	u := &ctlUpstream{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	u.addr = ln.Addr().String()
	u.serve(ln)
	return u, nil
}

func (u *ctlUpstream) serve(ln net.Listener) {
	srv := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			if u.slow.Load() {
				time.Sleep(soakTimeout + 500*time.Millisecond)
			}
			ctx.SetContentType("application/json")
			ctx.SetBody(okBody)
		},
		DisableHeaderNamesNormalizing: true,
		DisablePreParseMultipartForm:  true,
		CloseOnShutdown:               true,
		IdleTimeout:                   time.Minute,
	}
	u.mu.Lock()
	u.srv = srv
	u.mu.Unlock()
	go srv.Serve(ln)
}

// down stops listening and closes every connection.
func (u *ctlUpstream) down() {
	u.mu.Lock()
	srv := u.srv
	u.srv = nil
	u.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
	}
}

// up listens again on the same address.
func (u *ctlUpstream) up() error {
	var ln net.Listener
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if ln, err = net.Listen("tcp", u.addr); err == nil {
			u.serve(ln)
			return nil
		}
	}
	return fmt.Errorf("the upstream cannot listen on %s again: %w", u.addr, err)
}

func (u *ctlUpstream) close() { u.slow.Store(false); u.down() }

// ---- traffic ----

func soakLeadPhone(seq int) string { return fmt.Sprintf("4917%08d", seq) }
func soakAd(seq int) string        { return fmt.Sprintf("1202000000%08d", seq%soakAds) }

// webhook is the CTWA webhook of lead seq: the same bytes on every retry.
func (r *soakRun) webhook(seq int) []byte {
	return fmt.Appendf(nil, `{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":`+
		`{"messaging_product":"whatsapp","metadata":{"display_phone_number":"4930609859535","phone_number_id":"%s"},`+
		`"contacts":[{"profile":{"name":"Soak Lead"},"wa_id":"%s"}],"messages":[{"from":"%s","id":"wamid.soak.%s.%d",`+
		`"timestamp":"%s","type":"text","text":{"body":"Hi! Is the spring sale still on?"},"referral":{"source_url":"https://fb.me/soak",`+
		`"source_id":"%s","source_type":"ad","headline":"Chat with us","ctwa_clid":"clid-soak-%d"}}]},"field":"messages"}]}]}`,
		soakApp, soakLeadPhone(seq), soakLeadPhone(seq), r.ts, seq, r.ts, soakAd(seq), seq)
}

func (r *soakRun) statusWebhook(n int) []byte {
	return fmt.Appendf(nil, `{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":`+
		`{"messaging_product":"whatsapp","metadata":{"display_phone_number":"4930609859535","phone_number_id":"%s"},`+
		`"statuses":[{"id":"wamid.soakst.%s.%d","status":"%s","timestamp":"%s","recipient_id":"4916%08d"}]},"field":"messages"}]}]}`,
		soakApp, r.ts, n/3, []string{"sent", "delivered", "read"}[n%3], r.ts, n/3)
}

func garbageBody(rng *rand.Rand) []byte {
	switch rng.IntN(5) {
	case 0:
		b := make([]byte, 1+rng.IntN(2048))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	case 1:
		return []byte(`{"object":"whatsapp_business_account","entry":[{"changes":[{"value":{"messages":[{"from":"49170`)
	case 2:
		return []byte(strings.Repeat("[", 5000) + strings.Repeat("]", 5000))
	case 3:
		return []byte(`{"hello":"world","messages":"not an array"}`)
	default:
		return []byte(`{"object":"whatsapp_business_account","entry":[{"changes":[{"value":{"metadata":{"phone_number_id":"` +
			soakApp + `"},"messages":[{"id":"wamid.nofrom","type":"text","text":{"body":"x"}}]}}]}]}`)
	}
}

func (r *soakRun) offThreadBody(n, lead int) []byte {
	return fmt.Appendf(nil, `{"api_key":"%s","lead_phone":"+%s","action":"purchase","app_id":"%s",`+
		`"revenue":{"amount":%d.5,"currency":"EUR"},"object_id":"soak-order-%s-%d"}`,
		soakAPIKey, soakLeadPhone(lead), soakApp, 10+n%50, r.ts, n)
}

// post sends body to path on the webhook listener or the API and reports a 2xx answer.
func (r *soakRun) post(api bool, path string, body []byte) bool {
	ok, _, _ := r.send(api, path, body)
	return ok
}

// send is post that also says in which disk phases (soak_disk.go) the request started
// and got its answer.
func (r *soakRun) send(api bool, path string, body []byte) (ok bool, before, after int32) {
	before = r.diskPhase.Load()
	t := r.target.Load()
	host := t.webhook
	if api {
		host = t.api
	}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.SetRequestURI("http://" + host + path)
	req.Header.SetContentType("application/json")
	req.SetBodyRaw(body)
	err := r.client.Do(req, resp)
	after = r.diskPhase.Load()
	if !api {
		r.checkDiskAnswer(before, after, resp.StatusCode(), resp.Body(), err)
	}
	if err != nil {
		r.fail("transport error")
		return false, before, after
	}
	if code := resp.StatusCode(); code/100 != 2 {
		r.fail("HTTP " + strconv.Itoa(code))
		return false, before, after
	}
	return true, before, after
}

// newLead takes the next lead's sequence number.
func (r *soakRun) newLead() int {
	r.mu.Lock()
	seq := len(r.leads)
	r.leads = append(r.leads, soakLead{})
	r.mu.Unlock()
	r.sent.Add(1)
	return seq
}

// sendLead sends the CTWA webhook of a new lead and records its acknowledgement.
func (r *soakRun) sendLead(seq int) bool {
	ok, before, after := r.send(false, "/webhook", r.webhook(seq))
	if ok {
		r.ack(seq, inDiskFault(before) || inDiskFault(after))
		if before == diskFull && after == diskFull {
			r.mu.Lock()
			r.diskFullLeads = append(r.diskFullLeads, seq)
			r.mu.Unlock()
		}
	}
	return ok
}

func (r *soakRun) fail(kind string) {
	v, _ := r.failed.LoadOrStore(kind, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

// load sends the mixed traffic until ctx ends, paced at soakRate.
func (r *soakRun) load(ctx context.Context) {
	tokens := make(chan struct{}, r.o.concurrency)
	go func() {
		defer close(tokens)
		gap := time.Second / time.Duration(max(r.o.soakRate, 1))
		next := time.Now()
		for ctx.Err() == nil {
			next = next.Add(gap)
			time.Sleep(time.Until(next))
			select {
			case tokens <- struct{}{}:
			case <-ctx.Done():
			}
		}
	}()
	var wg sync.WaitGroup
	for w := range r.o.concurrency {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(r.start.UnixNano()), uint64(w)))
			for range tokens {
				r.sendOne(rng)
			}
		})
	}
	wg.Wait()
}

func (r *soakRun) sendOne(rng *rand.Rand) {
	switch p := rng.IntN(100); {
	case p < 60: // a new lead clicks an ad
		r.sendLead(r.newLead())
	case p < 72: // the sender retries an earlier webhook
		r.mu.Lock()
		n := len(r.leads)
		r.mu.Unlock()
		if n == 0 {
			return
		}
		seq := rng.IntN(n)
		r.retries.Add(1)
		if ok, before, after := r.send(false, "/webhook", r.webhook(seq)); ok {
			r.ack(seq, inDiskFault(before) || inDiskFault(after))
		}
	case p < 82:
		n := int(r.statuses.Add(1))
		r.post(false, "/webhook", r.statusWebhook(n))
	case p < 90:
		r.garbage.Add(1)
		r.post(false, "/webhook", garbageBody(rng))
	default:
		r.mu.Lock()
		n, leads := len(r.offs), len(r.leads)
		lead := rng.IntN(max(leads, 1))
		r.offs = append(r.offs, soakOff{lead: lead})
		r.mu.Unlock()
		r.offSent.Add(1)
		if r.post(true, "/clients/default/external-events", r.offThreadBody(n, lead)) {
			r.mu.Lock()
			if !r.offs[n].acked {
				r.offAcked.Add(1)
			}
			r.offs[n].acked = true
			r.mu.Unlock()
		}
	}
}

// ack records a 2xx answer for lead seq; inFault: it came during a disk-full fault.
func (r *soakRun) ack(seq int, inFault bool) {
	r.mu.Lock()
	l := &r.leads[seq]
	if !l.acked {
		r.acked.Add(1)
		l.acked, l.inFault = true, inFault
	} else if !inFault {
		l.inFault = false // acknowledged while the sidecar records: it must be recorded
	}
	r.mu.Unlock()
}

// ---- faults ----

var soakFaults = []string{"upstream slow", "upstream down", "upstream restarted", "sidecar kill -9", "sidecar SIGTERM"}

// rotation is the soak's faults in order: soakFaults, with the disk-full fault before
// the kill -9 when the data directory is on the soak's tmpfs; or options.soakOnly.
func (r *soakRun) rotation() []string {
	faults := slices.Clone(soakFaults)
	if r.disk != nil {
		faults = slices.Insert(faults, slices.Index(faults, "sidecar kill -9"), soakDiskFull)
	}
	if len(r.o.soakOnly) > 0 {
		faults = slices.DeleteFunc(slices.Clone(r.o.soakOnly), func(f string) bool { return f == soakDiskFull && r.disk == nil })
	}
	return faults
}

// injectFaults injects one fault every soakFaultEvery, in rotation, and checks the
// record after each.
func (r *soakRun) injectFaults(ctx context.Context) error {
	hold := min(r.o.soakFaultEvery/3, 5*time.Second)
	faults := r.rotation()
	if len(faults) == 0 {
		<-ctx.Done()
		return nil
	}
	for i := 0; ; i++ {
		wait := time.After(r.o.soakFaultEvery)
		if i%len(faults) == 0 {
			// In the quiet time before the rotation's first fault: it adds no time to it, and
			// no restart is under way.
			sleepCtx(ctx, r.o.soakFaultEvery/2)
			if ctx.Err() == nil {
				if err := r.floodConnections(ctx, hold); err != nil {
					return err
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-wait:
		}
		name := faults[i%len(faults)]
		r.faults[name]++
		fmt.Fprintf(r.out, "t=%-6s fault: %s\n", r.elapsed(), name)
		var err error
		switch name {
		case "upstream slow":
			r.up.slow.Store(true)
			sleepCtx(ctx, hold)
			r.up.slow.Store(false)
		case "upstream down":
			r.up.down()
			sleepCtx(ctx, hold)
			err = r.up.up()
		case "upstream restarted":
			r.up.down()
			err = r.up.up()
		case "sidecar kill -9":
			err = r.restartSidecar(context.WithoutCancel(ctx), true)
		case "sidecar SIGTERM":
			err = r.restartSidecar(context.WithoutCancel(ctx), false)
		case soakDiskFull:
			err = r.fillDisk(ctx, hold)
		default:
			err = fmt.Errorf("unknown fault %q", name)
		}
		if err == nil {
			err = r.verify(false)
		}
		if err != nil {
			return err
		}
	}
}

// soakFlood is the connection flood, injected once per rotation of soakFaults.
const soakFlood = "connection flood"

// floodCap is the sidecar's -max-conns-per-ip in the soak: above what the load from
// 127.0.0.1 opens, low enough that the flood stays small.
func (r *soakRun) floodCap() int { return 4*r.o.concurrency + 16 }

// floodConnections opens twice floodCap idle connections to the webhook listener from
// 127.0.0.2 and holds them for hold: the surplus must be refused with 429 and counted,
// /healthz must answer and a webhook from 127.0.0.1 must be forwarded meanwhile. The load
// keeps running; the check after the next fault finds nothing of it lost.
func (r *soakRun) floodConnections(ctx context.Context, hold time.Duration) error {
	t := r.target.Load()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}
	series := `ctwa_sidecar_connections_rejected_total{listener="webhook",reason="per_ip_limit"}`
	before, err := soakMetric(t.api, series)
	if err != nil {
		return err
	}
	n, capN := 2*r.floodCap(), r.floodCap()
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		c, err := d.DialContext(ctx, "tcp", t.webhook)
		if err != nil {
			if len(conns) == 0 {
				fmt.Fprintf(r.out, "t=%-6s fault: %s skipped: cannot dial from 127.0.0.2 (%v)\n", r.elapsed(), soakFlood, err)
				return nil
			}
			return fmt.Errorf("%s: connection %d: %w", soakFlood, len(conns), err)
		}
		conns = append(conns, c)
	}
	r.faults[soakFlood]++
	fmt.Fprintf(r.out, "t=%-6s fault: %s (%d idle connections from 127.0.0.2, -max-conns-per-ip %d)\n", r.elapsed(), soakFlood, n, capN)
	var refused atomic.Int64
	for _, c := range conns {
		go func() { // the refused ones end at once; the admitted ones when closed below
			c.SetReadDeadline(time.Now().Add(hold + 10*time.Second))
			if b, _ := io.ReadAll(io.LimitReader(c, 64)); bytes.HasPrefix(b, []byte("HTTP/1.1 429 ")) {
				refused.Add(1)
			}
		}()
	}
	for deadline := time.Now().Add(10 * time.Second); refused.Load() < int64(n-capN) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	status, _, err := fasthttp.GetTimeout(nil, "http://"+t.api+"/healthz", 5*time.Second)
	if err != nil || status != 200 {
		return fmt.Errorf("%s: /healthz answered %d, %v", soakFlood, status, err)
	}
	if !r.post(false, "/webhook", r.statusWebhook(int(r.statuses.Add(1)))) {
		return fmt.Errorf("%s: a webhook from 127.0.0.1 was not answered 2xx during the flood", soakFlood)
	}
	sleepCtx(ctx, hold)
	after, err := soakMetric(t.api, series)
	if err != nil {
		return err
	}
	if got := refused.Load(); got < int64(n-capN) || after-before < float64(n-capN) {
		return fmt.Errorf("%s: %d connections refused with 429 and %v counted, want %d", soakFlood, got, after-before, n-capN)
	}
	return nil
}

// soakMetric reads one sample from the sidecar's /metrics (0 when absent).
func soakMetric(api, series string) (float64, error) {
	status, body, err := fasthttp.GetTimeout(nil, "http://"+api+"/metrics", 10*time.Second)
	if err != nil || status != 200 {
		return 0, fmt.Errorf("GET /metrics: %d, %v", status, err)
	}
	for line := range bytes.Lines(body) {
		if rest, ok := bytes.CutPrefix(line, []byte(series+" ")); ok {
			return strconv.ParseFloat(string(bytes.TrimSpace(rest)), 64)
		}
	}
	return 0, nil
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func (r *soakRun) elapsed() time.Duration { return time.Since(r.start).Round(time.Second) }

// sampleRSS records the sidecar's resident memory every soakSampleGap.
func (r *soakRun) sampleRSS(ctx context.Context) {
	tick := time.NewTicker(soakSampleGap)
	defer tick.Stop()
	for {
		t := r.target.Load()
		if mib := float64(rssBytes(t.proc.pid())) / (1 << 20); mib > 0 {
			r.mu.Lock()
			r.rss = append(r.rss, rssSample{at: time.Since(r.start), mib: mib, gen: t.gen})
			r.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// ---- verification ----

// retryUnacked resends, as the sender would, every webhook and off-thread event that
// was never acknowledged, until each is or two minutes pass.
func (r *soakRun) retryUnacked(ctx context.Context) (unresolved int, err error) {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		r.mu.Lock()
		var leads, offs []int
		for i, l := range r.leads {
			if !l.acked {
				leads = append(leads, i)
			}
		}
		for i, o := range r.offs {
			if !o.acked {
				offs = append(offs, i)
			}
		}
		r.mu.Unlock()
		if len(leads)+len(offs) == 0 {
			return 0, nil
		}
		for _, seq := range leads {
			r.retries.Add(1)
			if ok, before, after := r.send(false, "/webhook", r.webhook(seq)); ok {
				r.ack(seq, inDiskFault(before) || inDiskFault(after))
			}
		}
		for _, n := range offs {
			r.mu.Lock()
			lead := r.offs[n].lead
			r.mu.Unlock()
			if r.post(true, "/clients/default/external-events", r.offThreadBody(n, lead)) {
				r.mu.Lock()
				r.offs[n].acked = true
				r.offAcked.Add(1)
				r.mu.Unlock()
			}
		}
		unresolved = len(leads) + len(offs)
		time.Sleep(100 * time.Millisecond)
	}
	return unresolved, ctx.Err()
}

// verify compares the sidecar's record with what it acknowledged, through the events
// export: every acknowledged lead has exactly one message event, a conversation from its
// ad; no other lead (status recipients, garbage) has any; every acknowledged off-thread
// purchase is listed once (type purchase, type_id its object_id), credited to nothing or
// to its lead's ad. At the end, after the retries, that is every one sent.
func (r *soakRun) verify(final bool) error {
	r.mu.Lock()
	acked, inFault := make([]bool, len(r.leads)), make([]bool, len(r.leads))
	for i, l := range r.leads {
		acked[i], inFault[i] = l.acked, l.acked && l.inFault
	}
	offAcked := make([]bool, len(r.offs))
	for i, o := range r.offs {
		offAcked[i] = o.acked
	}
	r.mu.Unlock()

	events, err := r.exportEvents()
	if err != nil {
		return err
	}
	// What was sent by now: events of leads and orders sent after the snapshot above
	// may be listed too.
	r.mu.Lock()
	sentLeads := len(r.leads)
	offLead := make([]int, len(r.offs))
	for i, o := range r.offs {
		offLead[i] = o.lead
	}
	r.mu.Unlock()

	perLead, perOrder := map[int][]string{}, map[int]int{}
	lost, dup, mis, offLost, offDup := 0, 0, 0, 0, 0
	misrecorded := func(format string, args ...any) {
		if mis++; mis <= 3 {
			fmt.Fprintf(r.out, "  mis-recorded: "+format+"\n", args...)
		}
	}
	for _, ev := range events {
		seq, ok := soakSeq(ev.phone)
		if ev.kind == "purchase" {
			n, okOrder := r.orderOf(ev.typeID)
			switch {
			case !okOrder || n >= len(offLead) || !ok || seq != offLead[n]:
				misrecorded("off-thread event %+v matches no order sent", ev)
			case ev.source != "unattributed:" && ev.source != "ad:"+soakAd(seq):
				misrecorded("order %d of lead %s credited to %s", n, ev.phone, ev.source)
			default:
				perOrder[n]++
			}
			continue
		}
		switch {
		case !ok || seq >= sentLeads:
			misrecorded("event %+v of a lead that never wrote", ev)
		case ev.kind != "conversation" || ev.source != "ad:"+soakAd(seq) || ev.app != soakApp:
			misrecorded("lead %s has %+v, want a conversation from ad:%s", ev.phone, ev, soakAd(seq))
		default:
			perLead[seq] = append(perLead[seq], ev.kind)
		}
	}
	for seq, kinds := range perLead {
		if len(kinds) > 1 {
			if dup++; dup <= 3 {
				fmt.Fprintf(r.out, "  duplicated: lead %s has events %v\n", soakLeadPhone(seq), kinds)
			}
		}
	}
	inFaultAcked, inFaultMissing := 0, 0
	for seq, a := range acked {
		switch {
		case inFault[seq]: // acknowledged only while the disk was full: it may lack its event
			inFaultAcked++
			if len(perLead[seq]) == 0 {
				inFaultMissing++
			}
		case (a || final) && len(perLead[seq]) == 0:
			if lost++; lost <= 3 {
				fmt.Fprintf(r.out, "  lost: lead %s was acknowledged but has no event\n", soakLeadPhone(seq))
			}
		}
	}
	// Each of those the sidecar did not record it refused, and counted so.
	if r.disk != nil && float64(inFaultMissing) > r.disk.stats.refused {
		excess := inFaultMissing - int(r.disk.stats.refused)
		fmt.Fprintf(r.out, "  lost: %d leads acknowledged during disk-full faults have no event, but the sidecar counted %.0f refused recordings\n",
			inFaultMissing, r.disk.stats.refused)
		lost += excess
	}
	for _, c := range perOrder {
		if c > 1 {
			offDup++
		}
	}
	for n, a := range offAcked {
		if (a || final) && perOrder[n] == 0 {
			offLost++
		}
	}
	r.mu.Lock()
	r.checks++
	r.lost, r.dup, r.mis = max(r.lost, lost), max(r.dup, dup), max(r.mis, mis)
	r.offLost, r.offDup = max(r.offLost, offLost), max(r.offDup, offDup)
	r.inFaultAcked, r.inFaultMissing = inFaultAcked, inFaultMissing
	r.mu.Unlock()
	label := "check"
	if final {
		label = "final check"
	}
	excused := ""
	if inFaultAcked > 0 {
		excused = fmt.Sprintf(" (%d acknowledged only on a full disk, %d of them unrecorded)", inFaultAcked, inFaultMissing)
	}
	fmt.Fprintf(r.out, "t=%-6s %s: %d leads acknowledged of %d sent, %d recorded%s; %d off-thread acknowledged, %d listed; "+
		"lost %d, duplicated %d, mis-recorded %d; rss %.1f MiB\n", r.elapsed(), label, count(acked), len(acked), len(perLead), excused,
		count(offAcked), len(perOrder), lost+offLost, dup+offDup, mis, float64(rssBytes(r.target.Load().proc.pid()))/(1<<20))
	return nil
}

// orderOf reads the order number from an off-thread object_id.
func (r *soakRun) orderOf(objectID string) (int, bool) {
	rest, ok := strings.CutPrefix(objectID, "soak-order-"+r.ts+"-")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	return n, err == nil
}

func count(b []bool) int {
	n := 0
	for _, v := range b {
		if v {
			n++
		}
	}
	return n
}

func soakSeq(phone string) (int, bool) {
	rest, ok := strings.CutPrefix(phone, "4917")
	if !ok || len(rest) != 8 {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	return n, err == nil
}

type soakEvent struct{ phone, kind, typeID, source, app string }

// exportEvents reads every event of the soak's app through the streamed CSV export.
func (r *soakRun) exportEvents() ([]soakEvent, error) {
	from := r.start.UTC().AddDate(0, 0, -1).Format("2006-01-02")
	to := r.start.UTC().AddDate(0, 0, 1).Format("2006-01-02")
	url := fmt.Sprintf("http://%s/v1/clients/default/apps/%s/events/export?date_from=%s&date_to=%s", r.target.Load().api, soakApp, from, to)
	status, body, err := fasthttp.GetTimeout(nil, url, 2*time.Minute)
	if err != nil || status != 200 {
		return nil, fmt.Errorf("events export: status %d, %v: %.300s", status, err, body)
	}
	recs, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil || len(recs) == 0 {
		return nil, fmt.Errorf("events export is not CSV: %v", err)
	}
	col := map[string]int{}
	for i, name := range recs[0] {
		col[name] = i
	}
	for _, need := range []string{"phone", "type", "type_id", "source_type", "source_id", "app_id"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("events export has no %s column: %q", need, recs[0])
		}
	}
	out := make([]soakEvent, 0, len(recs)-1)
	for _, rec := range recs[1:] {
		// The export writes phones in E.164 with "+", as the contacts export does.
		out = append(out, soakEvent{phone: strings.TrimPrefix(rec[col["phone"]], "+"), kind: rec[col["type"]], typeID: rec[col["type_id"]],
			source: rec[col["source_type"]] + ":" + rec[col["source_id"]], app: rec[col["app_id"]]})
	}
	return out, nil
}

// ---- report ----

func (r *soakRun) summary(unresolved int) soakSummary {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := soakSummary{
		Duration: time.Since(r.start).Round(time.Second), Sent: r.sent.Load(), Acked: r.acked.Load(), Retries: r.retries.Load(),
		Statuses: r.statuses.Load(), Garbage: r.garbage.Load(), OffSent: r.offSent.Load(), OffAcked: r.offAcked.Load(),
		Faults: r.faults, Checks: r.checks, Lost: r.lost, Duplicated: r.dup, Misrecorded: r.mis,
		OffThreadLost: r.offLost, OffThreadDuplicated: r.offDup, Leads: len(r.leads), Failures: map[string]int64{},
		Samples: r.rss, Restarts: r.target.Load().gen, Unresolved: unresolved, Rate: r.o.soakRate,
		DiskFull: r.diskNote, InFaultAcked: r.inFaultAcked, InFaultMissing: r.inFaultMissing,
	}
	if r.disk != nil {
		s.DiskAnswered, s.DiskNewLeads, s.DiskRefused = r.disk.stats.answered, r.disk.stats.newLeads, r.disk.stats.refused
	}
	for _, n := range r.faults {
		s.FaultsTotal += n
	}
	r.failed.Range(func(k, v any) bool { s.Failures[k.(string)] = v.(*atomic.Int64).Load(); return true })
	if len(r.rss) > 0 {
		s.RSSMinMiB, s.RSSMaxMiB, s.RSSFinalMiB = r.rss[0].mib, r.rss[0].mib, r.rss[len(r.rss)-1].mib
		for _, x := range r.rss {
			s.RSSMinMiB, s.RSSMaxMiB = min(s.RSSMinMiB, x.mib), max(s.RSSMaxMiB, x.mib)
		}
	}
	return s
}

func (r *soakRun) writeReport(w io.Writer, s soakSummary) {
	fmt.Fprintf(w, "\nsoak summary (%s, %d req/s target)\n", s.Duration, s.Rate)
	fmt.Fprintf(w, "  CTWA webhooks     %d new leads: %d acknowledged during the load, %d after the sender's retries (%d retries in all)\n",
		s.Sent, s.AckedInLoad, s.Acked, s.Retries)
	fmt.Fprintf(w, "  other traffic     %d status webhooks, %d garbage bodies, %d off-thread events (%d acknowledged)\n",
		s.Statuses, s.Garbage, s.OffSent, s.OffAcked)
	names := slices.Sorted(maps.Keys(s.Failures))
	var fails []string
	for _, k := range names {
		fails = append(fails, fmt.Sprintf("%s: %d", k, s.Failures[k]))
	}
	fmt.Fprintf(w, "  not acknowledged  %s\n", strings.Join(fails, ", "))
	var fs []string
	for _, k := range append(slices.Clone(soakFaults), soakDiskFull, soakFlood) {
		switch {
		case k == soakDiskFull && s.DiskFull != "":
			fs = append(fs, fmt.Sprintf("%s skipped (%s)", k, s.DiskFull))
		case k == soakDiskFull && s.Faults[k] == 0:
		default:
			fs = append(fs, fmt.Sprintf("%s ×%d", k, s.Faults[k]))
		}
	}
	fmt.Fprintf(w, "  faults injected   %d: %s (%d sidecar restarts)\n", s.FaultsTotal, strings.Join(fs, ", "), s.Restarts)
	if s.Faults[soakDiskFull] > 0 {
		fmt.Fprintf(w, "  disk full         %d webhooks answered by the upstream while the disk was full, %d of them new leads; "+
			"store_refused_total +%.0f; %d leads acknowledged only on a full disk, %d of them unrecorded (excused)\n",
			s.DiskAnswered, s.DiskNewLeads, s.DiskRefused, s.InFaultAcked, s.InFaultMissing)
	}
	fmt.Fprintf(w, "  checks            %d (after each fault and at the end)\n", s.Checks)
	fmt.Fprintf(w, "  lost              %d   (acknowledged, absent)\n", s.Lost)
	fmt.Fprintf(w, "  duplicated        %d   (counted twice)\n", s.Duplicated)
	fmt.Fprintf(w, "  mis-recorded      %d   (wrong type, source or app, or an event no webhook should give)\n", s.Misrecorded)
	fmt.Fprintf(w, "  off-thread        %d lost, %d duplicated\n", s.OffThreadLost, s.OffThreadDuplicated)
	if s.Unresolved > 0 {
		fmt.Fprintf(w, "  note              %d requests still unacknowledged after two minutes of retries\n", s.Unresolved)
	}
	fmt.Fprintf(w, "  memory (RSS)      min %.1f MiB, max %.1f MiB, final %.1f MiB\n", s.RSSMinMiB, s.RSSMaxMiB, s.RSSFinalMiB)
	step := max(1, len(s.Samples)/24)
	for i := 0; i < len(s.Samples); i += step {
		x := s.Samples[i]
		note := ""
		if i > 0 && x.gen != s.Samples[i-step].gen {
			note = "  (sidecar restarted)"
		}
		fmt.Fprintf(w, "    t=%-6s %6.1f MiB  %s%s\n", x.at.Round(time.Second), x.mib, strings.Repeat("#", int(x.mib/4)), note)
	}
	verdict := "PASS: nothing lost, duplicated or mis-recorded"
	if !s.ok() {
		verdict = "FAIL"
	}
	fmt.Fprintln(w, "  "+verdict)
}
