package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/ctwa-sidecar/ctwa-sidecar/storage"
)

// Refresh batch sizes: each chunk is one Apply, well inside one Badger transaction.
const (
	refreshDeleteChunk = 4000
	refreshReplayChunk = 200
)

// ErrRefreshRunning is returned when a refresh of the same app is already under way.
var ErrRefreshRunning = errors.New("a refresh of this app is already running")

// RefreshResult tells what a refresh rebuilt.
type RefreshResult struct {
	Messages  int `json:"messages"`
	Sessions  int `json:"sessions"`
	OffThread int `json:"off_thread_events"`
}

// Refresh rebuilds app's sessions, events and rollups from the stored message records,
// in timestamp order and with today's definitions: a keyword or converted event defined
// today counts last week's messages, and messages that arrived out of order land where
// their timestamps put them (SPEC §4.1). Webhooks keep flowing meanwhile: their messages
// are stored at once and placed when the rebuild ends. Off-thread posts wait for it.
func (r *Recorder) Refresh(ctx context.Context, app string) (RefreshResult, error) {
	r.offMu.Lock() // attribution reads sessions that are being rebuilt
	defer r.offMu.Unlock()
	if err := r.store.Apply(ctx, func(*storage.Batch) error {
		if _, running := r.w.refreshing[app]; running {
			return ErrRefreshRunning
		}
		r.w.refreshing[app] = [][]byte{}
		r.w.cache.reset() // history is about to be rewritten
		return nil
	}); err != nil {
		return RefreshResult{}, err
	}
	res, err := r.rebuild(ctx, app)
	// Place what arrived meanwhile and end the refresh, even after a failure, so that
	// live messages are never left unplaced.
	finishErr := r.finishRefresh(context.WithoutCancel(ctx), app, &res)
	return res, errors.Join(err, finishErr)
}

func (r *Recorder) rebuild(ctx context.Context, app string) (RefreshResult, error) {
	var res RefreshResult
	if err := r.deleteDerived(ctx, app); err != nil {
		return res, err
	}
	touches, err := r.loadTouches(app)
	if err != nil {
		return res, err
	}
	if err := r.replay(ctx, app, touches, &res); err != nil {
		return res, err
	}
	return res, r.reattribute(ctx, app, &res)
}

// deleteDerived removes everything derived from app's messages: sessions, their
// lead index, lead records, events and rollups.
func (r *Recorder) deleteDerived(ctx context.Context, app string) error {
	var keys [][]byte
	err := r.store.Scan(storage.SessionPrefix(app), false, func(k, v []byte) (bool, error) {
		s, err := storage.DecodeSession(v)
		if err != nil {
			return false, err
		}
		keys = append(keys, bytes.Clone(k), storage.LeadSessionKey(nil, s.Lead, s.Start, app, s.ID))
		return true, nil
	})
	if err != nil {
		return err
	}
	for _, prefix := range [][]byte{storage.LeadPrefix(app), storage.EventPrefix(app), storage.RollupAppPrefix(app), storage.RollupLeadAppPrefix(app)} {
		err := r.store.Scan(prefix, false, func(k, _ []byte) (bool, error) {
			keys = append(keys, bytes.Clone(k))
			return true, nil
		})
		if err != nil {
			return err
		}
	}
	for chunk := range slices.Chunk(keys, refreshDeleteChunk) {
		if err := r.store.Apply(ctx, func(b *storage.Batch) error {
			r.w.cache.reset()
			for _, k := range chunk {
				b.Delete(k)
			}
			return nil
		}); err != nil {
			return fmt.Errorf("refresh: cannot clear derived records: %w", err)
		}
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
	err := r.store.Scan(storage.OutAppPrefix(app), false, func(k, v []byte) (bool, error) {
		lead, t, ok := storage.SplitOutKey(app, k)
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
	var chunk []storage.Message
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		msgs := chunk
		chunk = nil
		return r.store.Apply(ctx, func(b *storage.Batch) error {
			return r.placeReplayed(b, app, msgs, &touches, res)
		})
	}
	err := r.store.Scan(storage.MessagePrefix(app), false, func(_, v []byte) (bool, error) {
		m, err := storage.DecodeMessage(v)
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
	return r.store.Apply(ctx, func(b *storage.Batch) error {
		r.w.cache.check(b)
		return r.applyTouches(b, app, &touches, 1<<62)
	})
}

// placeReplayed runs on the writer goroutine: it places messages that were stored before
// the refresh began (later ones are in the pending list and placed at the end).
func (r *Recorder) placeReplayed(b *storage.Batch, app string, msgs []storage.Message, touches *[]touchRecord, res *RefreshResult) error {
	r.w.cache.check(b)
	pending := r.w.refreshing[app]
	defs := r.defs.Load()
	var rec recording
	for i := range msgs {
		m := &msgs[i]
		key := storage.MessageKey(nil, app, m.Time, m.ID)
		if slices.ContainsFunc(pending, func(p []byte) bool { return bytes.Equal(p, key) }) {
			continue
		}
		if err := r.applyTouches(b, app, touches, m.Time); err != nil {
			return err
		}
		if err := r.placeMessage(b, m, defs, &rec); err != nil {
			return err
		}
		res.Messages++
		if rec.opened() {
			res.Sessions++
		}
	}
	return nil
}

// applyTouches applies the touches up to time t and drops them from the list.
func (r *Recorder) applyTouches(b *storage.Batch, app string, touches *[]touchRecord, t int64) error {
	for len(*touches) > 0 && (*touches)[0].time <= t {
		tr := (*touches)[0]
		if err := r.w.touch(b, app, tr.lead, tr.time, tr.tag); err != nil {
			return err
		}
		*touches = (*touches)[1:]
	}
	return nil
}

// placeMessage classifies a stored message with today's definitions and places it.
func (r *Recorder) placeMessage(b *storage.Batch, m *storage.Message, defs *Definitions, rec *recording) error {
	it := Item{Kind: KindMessage, AppID: m.AppID, ID: m.ID, Time: m.Time, Lead: m.Lead, LeadIsBSUID: m.LeadIsBSUID,
		Type: m.Type, Text: m.Text, ButtonPayload: m.ButtonPayload, ReplyKind: m.ReplyKind, ReplyID: m.ReplyID,
		ReplyTitle: m.ReplyTitle, ContextID: m.ContextID, Referral: Referral(m.Referral)}
	var c Classification
	Classify(&c, &it, defs)
	rec.events = rec.events[:0]
	return r.w.place(b, &it, &c, defs, rec)
}

// opened reports whether the last placed message opened a session.
func (rec *recording) opened() bool {
	return len(rec.events) > 0 && rec.events[0] == TypeConversation
}

// finishRefresh places the messages that arrived during the refresh and ends it.
func (r *Recorder) finishRefresh(ctx context.Context, app string, res *RefreshResult) error {
	return r.store.Apply(ctx, func(b *storage.Batch) error {
		r.w.cache.check(b)
		pending := r.w.refreshing[app]
		delete(r.w.refreshing, app)
		defs := r.defs.Load()
		var rec recording
		for _, key := range pending {
			v, ok, err := b.Get(key)
			if err != nil {
				return err
			}
			if !ok {
				continue // its request failed to commit
			}
			m, err := storage.DecodeMessage(v)
			if err != nil {
				return err
			}
			if err := r.placeMessage(b, &m, defs, &rec); err != nil {
				return err
			}
			res.Messages++
		}
		return nil
	})
}

// reattribute credits app's off-thread events again, against the rebuilt sessions, in
// time order so that chained events follow their (re-attributed) predecessors.
func (r *Recorder) reattribute(ctx context.Context, app string, res *RefreshResult) error {
	var ids []string
	err := r.store.Scan(storage.OffThreadAppPrefix(app), false, func(k, _ []byte) (bool, error) {
		ids = append(ids, string(k[len(storage.OffThreadAppPrefix(app))+8:]))
		return true, nil
	})
	if err != nil {
		return err
	}
	for _, id := range ids {
		old, ok, err := r.OffThread(id)
		if err != nil || !ok {
			return err
		}
		rec := old
		rec.Attributed, rec.ConversationID, rec.SourceType, rec.SourceID = false, "", SourceUnattributed, ""
		e := OffThread{Lead: old.Lead, Time: old.Time, AppID: app, PreviousID: old.PreviousID}
		if err := r.attribute(&rec, e); err != nil && !errors.Is(err, ErrPreviousNotFound) {
			return err
		}
		rec.AppID = app // a refresh of one app never moves its events to another
		if err := r.store.Apply(ctx, func(b *storage.Batch) error {
			return r.w.storeOffThread(b, &rec)
		}); err != nil {
			return err
		}
		res.OffThread++
	}
	return nil
}
