package engine

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	json "github.com/goccy/go-json"

	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
)

// SourceUnattributed is the source of off-thread events no session could be credited with.
const SourceUnattributed = "unattributed"

// OffThreadRecord is a stored off-thread event with its attribution.
type OffThreadRecord struct {
	ID             string      `json:"id"`
	Action         string      `json:"action"`
	Amount         float64     `json:"amount"`
	Currency       string      `json:"currency"`
	Time           int64       `json:"time"`
	Lead           string      `json:"lead"`
	LeadIsUser     bool        `json:"lead_is_user,omitempty"`
	ObjectID       string      `json:"object_id,omitempty"`
	PreviousID     string      `json:"previous_id,omitempty"`
	Attributes     []Attribute `json:"attributes,omitempty"`
	Attributed     bool        `json:"attributed"`
	AppID          string      `json:"app_id"`
	ConversationID string      `json:"conversation_id,omitempty"`
	SourceType     string      `json:"source_type"`
	SourceID       string      `json:"source_id,omitempty"`
	// AnyApp is set when the event named no app_id: a refresh may credit it to a session
	// of any app, as its post would have if the session had been known then (SPEC §5).
	AnyApp bool `json:"any_app,omitempty"`
}

// ErrPreviousNotFound is returned for an unknown previous_external_event_id.
var ErrPreviousNotFound = errors.New("previous_external_event_id is not a known off-thread event")

// RecordOffThread logs e and returns it as the materializer attributed it to the lead's
// last touch, in log order: after every webhook acknowledged before. created is false
// when e's object_id was recorded before: the first record is returned and nothing is
// added (idempotency, decided on the log lane).
func (r *Recorder) RecordOffThread(ctx context.Context, e OffThread) (rec OffThreadRecord, created bool, err error) {
	if !e.LeadIsUser {
		e.Lead = r.aliases.lead(e.Lead) // a lead who changed number is credited as the same lead
	}
	if e.PreviousID != "" {
		if _, ok, err := r.OffThread(e.PreviousID); err != nil || !ok {
			return OffThreadRecord{}, false, cmp.Or(err, ErrPreviousNotFound)
		}
	}
	rec = OffThreadRecord{ID: newID(), Action: e.Action, Amount: e.Amount, Currency: e.Currency, Time: e.Time,
		Lead: e.Lead, LeadIsUser: e.LeadIsUser, ObjectID: e.ObjectID, PreviousID: e.PreviousID,
		Attributes: e.Attributes, AnyApp: e.AppID == "", AppID: e.AppID, SourceType: SourceUnattributed}
	first, seq, err := r.logOffThread(ctx, &rec)
	if err != nil {
		return OffThreadRecord{}, false, fmt.Errorf("cannot store off-thread event: %w", err)
	}
	// The materializer attributes and stores it (or the first event of its object_id).
	timer := time.NewTimer(offThreadWait)
	defer timer.Stop()
	_ = r.mat.wait(ctx, seq, timer.C)
	id := cmp.Or(first, rec.ID)
	stored, ok, err := r.OffThread(id)
	switch {
	case err != nil:
		return OffThreadRecord{}, false, err
	case !ok && first == "":
		return rec, true, nil // logged; the views are behind and will attribute it
	case !ok:
		return OffThreadRecord{}, false, fmt.Errorf("off-thread event %q of object_id %q is not in the views yet", first, e.ObjectID)
	}
	return stored, first == "", nil
}

// offThreadWait bounds how long a post waits for its attribution; a refresh in progress
// holds it back until the refresh ends.
const offThreadWait = 30 * time.Second

// logOffThread appends rec to the log as entry seq, unless its object_id was logged
// before: then it returns the id of that first event, and in seq an entry at or after it.
func (r *Recorder) logOffThread(ctx context.Context, rec *OffThreadRecord) (first string, seq uint64, err error) {
	body, err := json.Marshal(rec)
	if err != nil {
		return "", 0, err
	}
	if err := r.refuseWhileSpooling(); err != nil {
		return "", 0, err
	}
	err = r.log.Append(ctx, func(tx kv.LogTx) error {
		first, seq = "", 0
		if rec.ObjectID != "" {
			v, fresh, err := tx.Claim(kv.ObjectKey(rec.ObjectID), []byte(rec.ID), 0)
			if err != nil || !fresh {
				// The first event's entry is committed with its key, at or before the
				// last entry logged so far: the post waits for that one.
				first, seq = string(v), tx.Last()
				return err
			}
		}
		appendCommand(tx, cmdOffThread, body, &seq)
		return nil
	})
	// Only an entry this append added is published (see materializer.published): the
	// first event's entry may be another cluster member's, not yet in this member's copy.
	if err == nil && first == "" && seq > 0 {
		r.mat.published(seq)
	}
	return first, seq, err
}

// applyOffThread attributes a logged off-thread event and stores it, on the view lane.
// It runs in a step of its own (see materializer.apply), so what it reads is committed.
func (r *Recorder) applyOffThread(b kv.Batch, body []byte) error {
	var rec OffThreadRecord
	if err := json.Unmarshal(body, &rec); err != nil {
		return fmt.Errorf("off-thread log entry: %w", err)
	}
	e := OffThread{Lead: rec.Lead, Time: rec.Time, AppID: rec.namedApp(), PreviousID: rec.PreviousID}
	if err := r.attribute(&rec, e); err != nil && !errors.Is(err, ErrPreviousNotFound) {
		return err
	}
	return r.placer.storeOffThread(b, &rec)
}

// storeOffThread writes an off-thread event and credits it to its source's rollup (and,
// when its action is the converted event of its session's campaign or ad, converts the
// session). It runs on the view lane (inside Derive or Apply), which owns the rollup cache.
func (p *placer) storeOffThread(b kv.Batch, rec *OffThreadRecord) error {
	p.cache.check(b)
	if err := writeOffThread(b, rec); err != nil {
		return err
	}
	if err := p.queueOffThreadConversion(b, rec); err != nil {
		return err
	}
	if err := p.convertByOffThread(b, rec); err != nil {
		return err
	}
	return p.applyOffThreadRollup(b, rec)
}

// writeOffThread writes the record, its app index and, when it has an app, the event row
// that the events API lists (type = the action).
func writeOffThread(b kv.Batch, rec *OffThreadRecord) error {
	body, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	b.Set(kv.OffThreadKey(rec.ID), body)
	b.Set(kv.OffThreadAppKey(rec.AppID, rec.Time, rec.ID), nil)
	if rec.AppID == "" {
		return nil
	}
	ev := kv.Event{ID: rec.ID, AppID: rec.AppID, Type: rec.Action, TypeID: rec.ObjectID,
		TypeValue: revenueText(rec.Amount, rec.Currency), Time: rec.Time, Lead: rec.Lead, LeadIsBSUID: rec.LeadIsUser,
		ConversationID: rec.ConversationID, SourceType: rec.SourceType, SourceID: rec.SourceID,
		Amount: rec.Amount, Currency: rec.Currency}
	b.Set(kv.EventKey(nil, rec.AppID, rec.Time, rec.ID), kv.AppendEvent(nil, &ev))
	return nil
}

// namedApp is the app the event is restricted to: the app_id it was posted with, or ""
// for any app. A record stored before AnyApp existed counts as naming the app it is
// filed under, which is how refreshes treated it then.
func (rec *OffThreadRecord) namedApp() string {
	if rec.AnyApp {
		return ""
	}
	return rec.AppID
}

// sameCredit reports whether two attributions of an event credit the same session.
func sameCredit(a, b *OffThreadRecord) bool {
	return a.Attributed == b.Attributed && a.AppID == b.AppID && a.ConversationID == b.ConversationID &&
		a.SourceType == b.SourceType && a.SourceID == b.SourceID
}

// withdrawOffThread takes back everything an event's current attribution wrote besides
// its record: its index entry, its event row and its rollup credit.
func (p *placer) withdrawOffThread(b kv.Batch, rec *OffThreadRecord) error {
	b.Delete(kv.OffThreadAppKey(rec.AppID, rec.Time, rec.ID))
	if rec.AppID != "" {
		b.Delete(kv.EventKey(nil, rec.AppID, rec.Time, rec.ID))
	}
	return p.withdrawOffThreadRollup(b, rec)
}

// withdrawOffThreadRollup undoes applyOffThreadRollup. A rollup left with nothing is
// deleted, so that its source stops listing (an empty "unattributed" row).
func (p *placer) withdrawOffThreadRollup(b kv.Batch, rec *OffThreadRecord) error {
	p.rkey = kv.RollupKey(p.rkey[:0], rec.AppID, rec.SourceType, rec.SourceID, p.day(rec.Time))
	roll, err := p.loadRollup(b, p.rkey)
	if err != nil || roll.OffCount == 0 {
		return err // nothing credited there: nothing to take back
	}
	roll.OffCount--
	if rec.Amount > 0 {
		withdrawRevenue(roll, rec.Currency, rec.Amount)
	}
	if rollupEmpty(roll) {
		delete(p.cache.rolls, string(p.rkey))
		b.Delete(p.rkey)
		return nil
	}
	p.saveRollup(b, p.rkey, roll)
	return nil
}

// withdrawRevenue subtracts amount in currency. A currency left with less than half a
// cent is what float sums leave of nothing: it is dropped rather than listed as 0.00.
func withdrawRevenue(r *kv.Rollup, currency string, amount float64) {
	i := slices.IndexFunc(r.Revenue, func(m kv.Money) bool { return m.Currency == currency })
	if i < 0 {
		return
	}
	r.Revenue[i].Amount -= amount
	if math.Abs(r.Revenue[i].Amount) < 0.005 {
		r.Revenue = slices.Delete(r.Revenue, i, i+1)
	}
}

// rollupEmpty reports whether every field of r is zero.
func rollupEmpty(r *kv.Rollup) bool {
	return r.Sessions == 0 && r.Engaged == 0 && r.Converted == 0 && r.KeywordEvents == 0 && r.OffCount == 0 &&
		r.AutoEvents == 0 && len(r.Keywords) == 0 && len(r.Revenue) == 0
}

// revenueText shows revenue as an event's type_value: "49.9 EUR" (parseRevenueText reads it).
func revenueText(amount float64, currency string) string {
	return strconv.FormatFloat(amount, 'f', -1, 64) + " " + currency
}

// attribute credits rec to a session: the one of previous_external_event_id when given,
// else the lead's most recent session (of app_id when given) that started at or before
// the event and at most the attribution window before it (last touch).
func (r *Recorder) attribute(rec *OffThreadRecord, e OffThread) error {
	if e.PreviousID != "" {
		prev, ok, err := r.OffThread(e.PreviousID)
		switch {
		case err != nil:
			return err
		case !ok:
			return ErrPreviousNotFound
		}
		rec.Attributed, rec.ConversationID = prev.Attributed, prev.ConversationID
		rec.AppID, rec.SourceType, rec.SourceID = prev.AppID, prev.SourceType, prev.SourceID
		return nil
	}
	from := max(e.Time-int64(r.cfg.AttributionWindow.Seconds()), 0) // keys hold unsigned seconds
	start, end := kv.LeadSessionTimeKey(e.Lead, from), kv.LeadSessionTimeKey(e.Lead, e.Time+1)
	return r.views.ScanRangeReverse(start, end, func(key, _ []byte) (bool, error) {
		app, id, ok := kv.SplitLeadSessionKey(key)
		if !ok || (e.AppID != "" && app != e.AppID) {
			return true, nil
		}
		s, found, err := r.session(app, id)
		if err != nil || !found {
			return !found, err
		}
		rec.Attributed, rec.AppID, rec.ConversationID = true, app, s.ID
		rec.SourceType, rec.SourceID = s.SourceType, s.SourceID
		return false, nil
	})
}

// OffThread returns a stored off-thread event by id.
func (r *Recorder) OffThread(id string) (OffThreadRecord, bool, error) {
	return getJSON[OffThreadRecord](r.views, kv.OffThreadKey(id), "off-thread event", id)
}

// newID returns a random 26-character id.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux (Go ≥ 1.24 panics instead)
	return idEncoding.EncodeToString(b[:])
}
