package engine

// The outbox sender: it reads the oldest pending conversions, sends them to Meta in
// batches and records each outcome in the store. It runs on its own goroutine and only
// reads the store and writes outcomes on the view lane, so it never slows a webhook.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	json "github.com/goccy/go-json"

	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
	"github.com/ctwa-sidecar/ctwa-sidecar/metaapi"
)

// MetaSender is what the outbox needs of Meta's Graph API (metaapi.Client).
type MetaSender interface {
	Dataset(ctx context.Context, waba string) (string, error)
	SendEvents(ctx context.Context, dataset string, events []metaapi.Event, testCode string) (int, error)
}

// OutboxConfig is how conversions reach Meta.
type OutboxConfig struct {
	Meta     MetaSender
	Dataset  string // "" finds (or creates) the dataset of WABA
	WABA     string // whatsapp_business_account_id of events whose app's webhooks named none
	TestCode string // test_event_code, only when set
	DryRun   bool   // mark conversions skipped (dry_run) instead of sending them
	Log      *slog.Logger
	Poll     time.Duration // how often an idle outbox looks for new conversions; 0: 1 s
	RetryMin time.Duration // first wait after a retried failure, doubling to 5 min; 0: 1 s
	maxAge   time.Duration // oldest event sent; 0: conversionMaxAge (tests age events faster)
}

// Backoff of retried sends: doubling from OutboxConfig.RetryMin up to backoffMax, with jitter.
const (
	backoffMax = 5 * time.Minute
	markChunk  = 200 // outcomes per view commit: records are a few hundred bytes
)

// activeOutbox feeds the pending gauges.
var activeOutbox atomic.Pointer[outbox]

func init() {
	metrics.NewGauge("ctwa_sidecar_capi_pending_events", func() float64 {
		n := 0
		_ = activeOutbox.Load().eachPending(func([]byte) bool { n++; return true })
		return float64(n)
	})
	metrics.NewGauge("ctwa_sidecar_capi_oldest_pending_seconds", func() float64 {
		age := 0.0
		_ = activeOutbox.Load().eachPending(func(key []byte) bool { // the oldest is the first key
			age = time.Since(time.Unix(kv.PendingConversionTime(key), 0)).Seconds()
			return false
		})
		return age
	})
}

// countConversion counts conversions that reached a status or were retried.
func countConversion(result, reason string) { countConversions(result, reason, 1) }

func countConversions(result, reason string, n int) {
	name := fmt.Sprintf(`ctwa_sidecar_capi_events_total{result=%q}`, result)
	if reason != "" {
		name = fmt.Sprintf(`ctwa_sidecar_capi_events_total{result=%q,reason=%q}`, result, reason)
	}
	metrics.GetOrCreateCounter(name).Add(n)
}

type outbox struct {
	r        *Recorder
	o        OutboxConfig
	dataset  string
	failures int // consecutive retried failures, for the backoff
}

// SendConversions runs the outbox until ctx ends or the store closes.
func (r *Recorder) SendConversions(ctx context.Context, o OutboxConfig) {
	if o.Log == nil {
		o.Log = r.cfg.Log
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.RetryMin <= 0 {
		o.RetryMin = time.Second
	}
	if o.maxAge <= 0 {
		o.maxAge = conversionMaxAge
	}
	ob := &outbox{r: r, o: o, dataset: o.Dataset}
	activeOutbox.Store(ob)
	defer activeOutbox.CompareAndSwap(ob, nil)
	for {
		wait, err := ob.step(ctx)
		var acct *metaapi.Error
		if errors.As(err, &acct) && acct.Account() {
			o.Log.Error("conversions to Meta stopped: Meta refuses the setup, not the events; they stay pending "+
				"until a restart with a working -meta-token and -capi-dataset or -waba-id", "err", err)
			return
		}
		if err != nil && !errors.Is(err, context.Canceled) {
			o.Log.Warn("conversions to Meta: retrying", "err", err, "in", wait.Round(time.Millisecond))
		}
		select {
		case <-ctx.Done():
			return
		case <-r.views.Closing():
			return
		case <-time.After(wait):
		}
	}
}

// step sends one batch and returns how long to wait before the next.
func (ob *outbox) step(ctx context.Context) (time.Duration, error) {
	if ob.dataset == "" && !ob.o.DryRun {
		id, err := ob.o.Meta.Dataset(ctx, ob.o.WABA)
		if err != nil {
			return ob.retryIn(err), fmt.Errorf("cannot find the dataset of WABA %s: %w", ob.o.WABA, err)
		}
		ob.o.Log.Info("conversions to Meta: dataset found", "waba_id", ob.o.WABA, "dataset", id)
		ob.dataset = id
	}
	batch, err := ob.next()
	if err != nil || len(batch) == 0 {
		return ob.o.Poll, err
	}
	if ob.o.DryRun {
		return 0, ob.mark(batch, func(c *Conversion) { c.Status, c.Reason = ConversionSkipped, "dry_run" })
	}
	if err := ob.deliver(ctx, batch); err != nil {
		return ob.retryIn(err), err
	}
	ob.failures = 0
	if len(batch) < metaapi.MaxEvents {
		return ob.o.Poll, nil
	}
	return 0, nil
}

// retryIn is the wait before retrying after err: exponential with jitter, at least
// Meta's Retry-After.
func (ob *outbox) retryIn(err error) time.Duration {
	ob.failures++
	d := backoff(ob.o.RetryMin, backoffMax, ob.failures)
	var me *metaapi.Error
	if errors.As(err, &me) && me.RetryAfter > d {
		d = me.RetryAfter
	}
	return d
}

// next returns up to MaxEvents pending conversions, oldest first; the ones Meta would no
// longer take are marked expired instead, and those of no known WABA skipped (no_waba).
func (ob *outbox) next() ([]Conversion, error) {
	var batch, expired, noWABA []Conversion
	err := ob.eachPending(func(key []byte) bool {
		c, ok, err := ob.r.conversion(kv.PendingConversionID(key))
		switch {
		case err != nil || !ok:
			return true // a pending mark without a readable record: the others go on
		case time.Since(time.Unix(c.Time, 0)) > ob.o.maxAge:
			expired = append(expired, c)
		case c.WABA == "" && ob.o.WABA == "":
			noWABA = append(noWABA, c)
		default:
			batch = append(batch, c)
		}
		return len(batch) < metaapi.MaxEvents
	})
	if err == nil && len(expired) > 0 {
		err = ob.mark(expired, func(c *Conversion) { c.Status = ConversionExpired })
	}
	if err == nil && len(noWABA) > 0 {
		err = ob.mark(noWABA, func(c *Conversion) {
			c.Status, c.Reason = ConversionSkipped, "no_waba"
			c.LastError = "no webhook of this app named its WhatsApp Business Account, and -waba-id is not set"
		})
	}
	return batch, err
}

// deliver sends batch. A refusal that is not retryable and not of the setup is of one
// event or more: the batch is split until each refused event is alone, and that one is
// failed with Meta's error; the others are sent.
func (ob *outbox) deliver(ctx context.Context, batch []Conversion) error {
	received, err := ob.o.Meta.SendEvents(ctx, ob.dataset, ob.events(batch), ob.o.TestCode)
	if ctx.Err() != nil {
		return ctx.Err() // shutting down: the request was cut short; the batch stays pending as it was
	}
	var me *metaapi.Error
	switch {
	case err == nil && received == len(batch):
		now := time.Now().Unix()
		return ob.mark(batch, func(c *Conversion) {
			c.Status, c.SentAt, c.LastError, c.ErrorCode, c.ErrorSubcode = ConversionSent, now, "", 0, 0
			c.Attempts++
		})
	case err == nil:
		err = fmt.Errorf("Meta received %d of %d events; sending them again with the same ids", received, len(batch))
		countConversions("retried", "partial", len(batch))
		return errors.Join(err, ob.note(batch, err))
	case !errors.As(err, &me):
		return err
	case me.Retryable() || me.Account():
		countConversions("retried", retryReason(me), len(batch))
		return errors.Join(err, ob.note(batch, err))
	case len(batch) > 1:
		half := len(batch) / 2
		return errors.Join(ob.deliver(ctx, batch[:half]), ob.deliver(ctx, batch[half:]))
	}
	return ob.mark(batch, func(c *Conversion) {
		c.Status, c.Reason, c.LastError = ConversionFailed, refusalReason(me), err.Error()
		c.ErrorCode, c.ErrorSubcode = me.Code, me.Subcode
		c.Attempts++
	})
}

func retryReason(e *metaapi.Error) string {
	switch {
	case e.Account():
		return "setup"
	case e.Transport != nil:
		return "unreachable"
	case e.Status >= 500:
		return "server_error"
	}
	return "throttled"
}

// refusalReason names a refusal by Meta's code and subcode, for the metric.
func refusalReason(e *metaapi.Error) string {
	if e.Subcode != 0 {
		return fmt.Sprintf("code_%d_%d", e.Code, e.Subcode)
	}
	return fmt.Sprintf("code_%d", e.Code)
}

// events is batch as Meta's events.
func (ob *outbox) events(batch []Conversion) []metaapi.Event {
	evs := make([]metaapi.Event, len(batch))
	for i := range batch {
		c := &batch[i]
		evs[i] = metaapi.Event{EventName: c.Name, EventTime: c.Time, EventID: c.ID,
			ActionSource: "business_messaging", MessagingChannel: "whatsapp",
			UserData: metaapi.UserData{CtwaClid: c.ClickID, WABA: cmp.Or(c.WABA, ob.o.WABA)}}
		if c.Currency != "" {
			evs[i].CustomData = &metaapi.CustomData{Currency: c.Currency, Value: c.Value}
		}
	}
	return evs
}

// note records a failed attempt that will be retried.
func (ob *outbox) note(batch []Conversion, err error) error {
	return ob.mark(batch, func(c *Conversion) { c.Attempts++; c.LastError = err.Error() })
}

// mark applies update to each conversion of batch as stored and writes it; a conversion
// that is no longer pending leaves the outbox, and is counted.
func (ob *outbox) mark(batch []Conversion, update func(c *Conversion)) error {
	now := time.Now().Unix()
	for len(batch) > 0 {
		n := min(len(batch), markChunk)
		chunk := batch[:n]
		batch = batch[n:]
		counts := map[[2]string]int{}
		err := ob.r.views.Apply(context.Background(), func(b kv.Batch) error {
			clear(counts)
			for i := range chunk {
				c := chunk[i]
				update(&c)
				c.Updated = now
				body, err := json.Marshal(&c)
				if err != nil {
					return err
				}
				b.Set(kv.ConversionKey(c.ID), body)
				if c.Status != ConversionPending {
					b.Delete(c.pendingKey())
					counts[[2]string{c.Status, c.Reason}]++
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("cannot record conversion outcomes: %w", err)
		}
		for k, n := range counts {
			countConversions(k[0], k[1], n)
		}
	}
	return nil
}

// eachPending calls fn with the outbox's keys, oldest event first, until it returns false.
func (ob *outbox) eachPending(fn func(key []byte) bool) error {
	if ob == nil {
		return nil
	}
	return ob.r.views.Scan(kv.PendingConversionPrefix(), false, func(key, _ []byte) (bool, error) {
		return fn(key), nil
	})
}
