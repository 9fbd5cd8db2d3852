package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
	"github.com/ctwa-sidecar/ctwa-sidecar/webhook"
)

// Refresh batch sizes: each chunk is one view-lane commit, well inside one Badger
// transaction. Webhooks do not wait on them: they are appended on the log lane, and
// placed by the materializer after the refresh, in log order.
const (
	refreshDeleteChunk = 256
	refreshReplayChunk = 32
)

// ErrRefreshRunning is returned when a refresh of the same app is already logged or
// under way.
var ErrRefreshRunning = errors.New("a refresh of this app is already running")

// RefreshResult tells what a refresh rebuilt.
type RefreshResult struct {
	Messages  int `json:"messages"`
	Sessions  int `json:"sessions"`
	OffThread int `json:"off_thread_events"`
	// MissingOffThread counts off-thread index entries without a record: skipped.
	MissingOffThread int `json:"missing_off_thread_events"`
}

// Refresh rebuilds app's sessions, events and rollups from the logged messages, in
// timestamp order and with today's definitions: a keyword or converted event defined
// today counts last week's messages, and messages that arrived out of order land where
// their timestamps put them (SPEC §4.1). It is a log command: the materializer runs it
// after every webhook acknowledged before it and before any acknowledged after, which
// wait in the log meanwhile (the webhooks themselves are answered as always). Refresh
// returns once the rebuild is done, or with ctx's error (the rebuild goes on).
func (r *Recorder) Refresh(ctx context.Context, app string) (RefreshResult, error) {
	if !r.mat.claimRefresh(app) {
		return RefreshResult{}, ErrRefreshRunning
	}
	seq, err := r.logCommand(ctx, cmdRefresh, []byte(app))
	if err != nil {
		r.mat.releaseRefresh(app)
		return RefreshResult{}, err
	}
	if err := r.mat.wait(ctx, seq, nil); err != nil {
		return RefreshResult{}, err
	}
	out := r.mat.takeOutcome(seq)
	return out.res, out.err
}

// applyRefresh runs a logged refresh on the materializer.
func (r *Recorder) applyRefresh(app string) (RefreshResult, error) {
	r.placer.cache.reset() // history is about to be rewritten
	res, err := r.rebuild(context.Background(), app)
	r.placer.cache.reset()
	return res, err
}

func (r *Recorder) rebuild(ctx context.Context, app string) (RefreshResult, error) {
	var res RefreshResult
	n, err := r.deleteDerived(ctx, app)
	if err != nil {
		return res, err
	}
	touches, err := r.loadTouches(app)
	if err != nil {
		return res, err
	}
	// While the messages are replayed, a lead or rollup the replay did not write is
	// absent: they were all of app's, and only the replay writes them. Not after: the
	// off-thread events re-attributed next move credit from other apps' rollups too.
	r.placer.rebuilt = newKeyFilter(n)
	err = r.replay(ctx, app, touches, &res)
	r.placer.rebuilt = nil
	if err != nil {
		return res, err
	}
	return res, r.reattribute(ctx, app, &res)
}

// deleteDerived removes everything derived from app's messages: sessions, their
// lead index, lead records, events and rollups, and returns how many lead records and
// rollups it removed. Keys are deleted as they are read, a chunk per Apply, so that
// memory stays bounded whatever the size of the app.
func (r *Recorder) deleteDerived(ctx context.Context, app string) (int, error) {
	d := deleter{ctx: ctx, r: r}
	err := r.views.Scan(kv.SessionPrefix(app), false, func(k, v []byte) (bool, error) {
		s, err := kv.DecodeSession(v)
		if err != nil {
			return false, err
		}
		return true, d.add(k, kv.LeadSessionKey(nil, s.Lead, s.Start, app, s.ID))
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, f := range []struct {
		prefix  []byte
		counted bool
	}{{kv.LeadPrefix(app), true}, {kv.EventPrefix(app), false}, {kv.RollupAppPrefix(app), true},
		{kv.RollupLeadAppPrefix(app), false}, {kv.ClidPrefix(app), false}} {
		// Keys only: reading the values (events, in the value log) touched gigabytes of
		// mapped pages at 10 M messages (the process's RSS peaked at 1.1 GiB).
		var addErr error
		err := r.views.ScanKeys(f.prefix, kv.PrefixEnd(f.prefix), func(k []byte) bool {
			if f.counted {
				n++
			}
			addErr = d.add(k)
			return addErr == nil
		})
		if err = errors.Join(err, addErr); err != nil {
			return 0, err
		}
	}
	return n, d.flush()
}

// deleter deletes keys in chunks of refreshDeleteChunk.
type deleter struct {
	ctx  context.Context
	r    *Recorder
	keys [][]byte
}

func (d *deleter) add(keys ...[]byte) error {
	for _, k := range keys {
		d.keys = append(d.keys, bytes.Clone(k))
	}
	if len(d.keys) < refreshDeleteChunk {
		return nil
	}
	return d.flush()
}

func (d *deleter) flush() error {
	if len(d.keys) == 0 {
		return nil
	}
	err := d.r.views.Derive(d.ctx, func(b kv.Batch) error {
		d.r.placer.cache.reset()
		for _, k := range d.keys {
			b.Delete(k)
		}
		return nil
	})
	d.keys = d.keys[:0]
	if err != nil {
		return fmt.Errorf("refresh: cannot clear derived records: %w", err)
	}
	return nil
}

// touch is an outgoing campaign touch to replay.
type touchRecord struct {
	lead string
	time int64
	tag  string
}

// loadTouches reads app's outgoing campaign touches in time order.
func (r *Recorder) loadTouches(app string) ([]touchRecord, error) {
	var out []touchRecord
	err := r.views.Scan(kv.OutAppPrefix(app), false, func(k, v []byte) (bool, error) {
		lead, t, ok := kv.SplitOutKey(app, k)
		if ok {
			out = append(out, touchRecord{lead, t, string(v)})
		}
		return true, nil
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].time < out[j].time })
	return out, err
}

// replay places app's stored messages, and the touches between them, in time order.
func (r *Recorder) replay(ctx context.Context, app string, touches []touchRecord, res *RefreshResult) error {
	var chunk []kv.Message
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		msgs := chunk
		chunk = nil
		return r.views.Derive(ctx, func(b kv.Batch) error {
			return r.placeReplayed(b, msgs, &touches, res)
		})
	}
	err := r.views.Scan(kv.MessagePrefix(app), false, func(_, v []byte) (bool, error) {
		m, err := storedMessage(r.log.Entry, v)
		if err != nil {
			return false, err
		}
		chunk = append(chunk, m)
		if len(chunk) < refreshReplayChunk {
			return true, nil
		}
		return true, flush()
	})
	if err != nil {
		return fmt.Errorf("refresh: cannot replay messages: %w", err)
	}
	if err := flush(); err != nil {
		return err
	}
	// Touches after the last message still set the leads' campaign state.
	return r.views.Derive(ctx, func(b kv.Batch) error {
		r.placer.cache.check(b)
		return r.applyTouches(b, app, &touches, 1<<62)
	})
}

// placeReplayed runs on the view lane: it places logged messages of the app in time order.
func (r *Recorder) placeReplayed(b kv.Batch, msgs []kv.Message, touches *[]touchRecord, res *RefreshResult) error {
	r.placer.cache.check(b)
	defs := r.defs.Load()
	for i := range msgs {
		m := &msgs[i]
		if err := r.applyTouches(b, m.AppID, touches, m.Time); err != nil {
			return err
		}
		placed, err := r.placeMessage(b, m, defs)
		if err != nil {
			return err
		}
		res.Messages++
		if placed.opened {
			res.Sessions++
		}
	}
	return nil
}

// applyTouches applies the touches up to time t and drops them from the list.
func (r *Recorder) applyTouches(b kv.Batch, app string, touches *[]touchRecord, t int64) error {
	for len(*touches) > 0 && (*touches)[0].time <= t {
		tr := (*touches)[0]
		if err := r.placer.touch(b, app, tr.lead, tr.time, tr.tag); err != nil {
			return err
		}
		*touches = (*touches)[1:]
	}
	return nil
}

// placeMessage classifies a stored message with today's definitions and places it; a
// stored automatic event goes on its click's session.
func (r *Recorder) placeMessage(b kv.Batch, m *kv.Message, defs *Definitions) (placement, error) {
	if m.Type == TypeAutomaticEvent {
		it := autoEventFromRecord(m)
		return r.placer.placeAutoEvent(b, &it, defs)
	}
	// The log keeps the number the message came from; a lead who changed number since
	// goes on as the same lead.
	it := webhook.Item{Kind: webhook.KindMessage, AppID: m.AppID, ID: m.ID, Time: m.Time, Lead: r.placer.aliases.lead(m.Lead), LeadIsBSUID: m.LeadIsBSUID,
		Type: m.Type, Text: m.Text, ButtonPayload: m.ButtonPayload, ReplyKind: m.ReplyKind, ReplyID: m.ReplyID,
		ReplyTitle: m.ReplyTitle, ContextID: m.ContextID, Referral: webhook.Referral(m.Referral)}
	var c Classification
	Classify(&c, &it, defs)
	return r.placer.place(b, &it, &c, defs)
}

// reattribute credits off-thread events again against the rebuilt sessions, in time
// order so that chained events follow their (re-attributed) predecessors: app's own
// events, and those that named no app and found no session when posted — the lead's
// first message may have been delivered after them, and refreshed numbers never depend
// on delivery order (SPEC §4.1). An index entry whose record is gone is skipped and
// counted, not taken for the end of the list.
func (r *Recorder) reattribute(ctx context.Context, app string, res *RefreshResult) error {
	refs, err := r.offThreadRefs(app, "")
	if err != nil {
		return fmt.Errorf("refresh: cannot list the off-thread events of app %q: %w", app, err)
	}
	var missing []string
	for _, ref := range refs {
		id := ref[8:]
		old, ok, err := r.OffThread(id)
		switch {
		case err != nil:
			return err
		case !ok:
			missing = append(missing, id)
			continue
		}
		if err := r.reattributeOne(ctx, app, &old); err != nil {
			return fmt.Errorf("refresh: cannot re-attribute off-thread event %q: %w", id, err)
		}
		res.OffThread++
	}
	r.reportMissing(app, missing, res)
	return nil
}

// offThreadRefs lists the events indexed under apps in time order. An entry is the tail
// of its index key: the event time (8 bytes big-endian, so entries sort by time) and the
// event id.
func (r *Recorder) offThreadRefs(apps ...string) ([]string, error) {
	var refs []string
	for _, app := range apps {
		prefix := kv.OffThreadAppPrefix(app)
		err := r.views.Scan(prefix, false, func(k, _ []byte) (bool, error) {
			refs = append(refs, string(k[len(prefix):]))
			return true, nil
		})
		if err != nil {
			return nil, err
		}
	}
	sort.Strings(refs)
	return refs, nil
}

// reattributeOne attributes one event with the rules of its post (SPEC §5): restricted
// to the app it named, or to none when it named none.
func (r *Recorder) reattributeOne(ctx context.Context, app string, old *OffThreadRecord) error {
	rec := *old
	rec.Attributed, rec.ConversationID, rec.SourceType, rec.SourceID = false, "", SourceUnattributed, ""
	rec.AppID = old.namedApp()
	e := OffThread{Lead: old.Lead, Time: old.Time, AppID: rec.AppID, PreviousID: old.PreviousID}
	if err := r.attribute(&rec, e); err != nil && !errors.Is(err, ErrPreviousNotFound) {
		return err
	}
	if old.AppID != app && sameCredit(old, &rec) {
		return nil // its credit, outside app, was not cleared and stays where it is
	}
	return r.views.Derive(ctx, func(b kv.Batch) error {
		return r.placer.recreditOffThread(b, app, old, &rec)
	})
}

// recreditOffThread moves an event's credit from its old attribution to rec. The
// rebuild of app cleared the rows and rollups of app's events but not their index
// entries; an event filed under another app (or none) still holds all of its credit.
func (p *placer) recreditOffThread(b kv.Batch, app string, old, rec *OffThreadRecord) error {
	p.cache.check(b)
	switch {
	case old.AppID != app:
		if err := p.withdrawOffThread(b, old); err != nil {
			return err
		}
	case rec.AppID != app:
		b.Delete(kv.OffThreadAppKey(old.AppID, old.Time, old.ID))
	}
	return p.storeOffThread(b, rec)
}

// reportMissing counts, and logs once, the index entries whose record is gone: their
// events cannot be credited, and the refresh says so rather than dropping them quietly.
func (r *Recorder) reportMissing(app string, ids []string, res *RefreshResult) {
	res.MissingOffThread = len(ids)
	if len(ids) > 0 {
		r.cfg.Log.Warn("refresh: off-thread events are indexed but their records are missing; skipped them",
			"app", app, "count", len(ids), "ids", ids[:min(len(ids), 10)])
	}
}
