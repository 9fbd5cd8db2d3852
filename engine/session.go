package engine

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
)

// writer places logged items into sessions and writes their records: the views. It
// runs only on the store's view lane (inside Apply), one request after another, so its
// buffers and the sessions it reads through the Batch are never shared.
type writer struct {
	window     int64          // session window in seconds
	loc        *time.Location // cuts rollup days
	key, val   []byte
	rkey, rval []byte
	hbuf       []byte
	sess       kv.Session
	lead       kv.Lead
	delta      rollupDelta
	seenAds    map[string]bool // app+ad pairs whose referral is already stored
	cache      writeCache
	aliases    *aliasTable                            // new numbers of leads (user_changed_number)
	capi       ConversionMap                          // conversions sent to Meta; nil when off
	logEntry   func(seq uint64) ([]byte, bool, error) // Log.Entry: message keys point into the log
	pos        logPos                                 // of the item being applied: message keys point to it
}

// logPos is an item's place in the log: its entry's sequence number and its index there.
type logPos struct {
	seq  uint64
	item int
}

// applyStatus records a status of a business message that carries a campaign tag
// (biz_opaque_callback_data): an outgoing touch. The lead's next session, if it opens
// within the session window, is credited to that campaign (SPEC §4.1). Only such
// statuses reach the log (appender.dedupe).
func (w *writer) applyStatus(b kv.Batch, it *Item) error {
	it.Lead = w.aliases.lead(it.Lead)
	b.Set(kv.OutKey(w.key[:0], it.AppID, it.Lead, it.Time), []byte(it.BizOpaque))
	return w.touch(b, it.AppID, it.Lead, it.Time, it.BizOpaque)
}

// touch remembers the lead's latest outgoing campaign touch.
func (w *writer) touch(b kv.Batch, app, lead string, t int64, tag string) error {
	if err := w.loadLead(b, app, lead); err != nil {
		return err
	}
	if t >= w.lead.OutTime {
		w.lead.OutTime, w.lead.OutTag = t, tag
		w.saveLead(b, app, lead)
	}
	return nil
}

// applyMessage records an inbound lead message, deduplicated when it was logged: its
// compact record, its session and its events.
func (w *writer) applyMessage(b kv.Batch, it *Item, c *Classification, defs *Definitions, rec *recording) error {
	it.Lead = w.aliases.lead(it.Lead) // a lead who changed number goes on as the same lead
	w.saveMessage(b, it)
	return w.place(b, it, c, defs, rec)
}

// place puts a message into its session, writes its events and updates the rollup of
// the session's source. Live messages and refresh replays both come through here.
func (w *writer) place(b kv.Batch, it *Item, c *Classification, defs *Definitions, rec *recording) error {
	if err := w.loadLead(b, it.AppID, it.Lead); err != nil {
		return err
	}
	open, err := w.loadSession(b, it.AppID, it.Lead)
	if err != nil {
		return err
	}
	w.delta.reset()
	e := emitter{w: w, b: b, it: it, defs: defs, rec: rec}
	if !open || it.HasReferral() || it.Time > w.sess.Last+w.window {
		w.openSession(it, c, defs)
		w.lead.SessionID = w.sess.ID
		w.saveLead(b, it.AppID, it.Lead)
		// Off-thread events find the lead's sessions, across apps, by start time.
		b.Set(kv.LeadSessionKey(w.key[:0], it.Lead, it.Time, it.AppID, w.sess.ID), nil)
		if err := w.noteReferralAd(b, &w.sess); err != nil {
			return err
		}
		if clid := w.sess.Referral.CtwaClid; clid != "" { // automatic_events name the click
			w.val = append(w.val[:0], w.sess.ID...) // Set copies: the buffer is free again after
			b.Set(kv.ClidKey(w.key[:0], it.AppID, clid), w.val)
		}
		e.emit(TypeConversation, "", conversationValue(&w.sess))
		if it.HasReferral() {
			e.fail(w.queueSessionConversion(b, ConversionSourceLead, it.ID, it))
		}
	} else {
		w.sess.Messages++
		w.sess.Last = max(w.sess.Last, it.Time)
		if !w.sess.Engaged {
			w.sess.Engaged = true
			e.emit(TypeEngagement, "", "")
		}
	}
	for _, cand := range c.Events {
		if cand.group >= 0 && !defs.inScope(&defs.Groups[cand.group], w.sess.SourceType, w.sess.SourceID) {
			continue
		}
		e.emit(cand.Type, cand.TypeID, cand.TypeValue)
	}
	if e.err != nil {
		return e.err
	}
	w.val = kv.AppendSession(w.val[:0], &w.sess)
	b.Set(kv.SessionKey(w.key[:0], it.AppID, w.sess.ID), w.val)
	w.cache.putLead(it.AppID, it.Lead, &w.lead, &w.sess, true)
	return w.applyRollup(b, &w.sess, &w.delta)
}

func conversationValue(s *kv.Session) string {
	if s.SourceID == "" {
		return s.SourceType
	}
	return s.SourceID
}

// openSession starts a new session in w.sess for message it. Its source is, in order:
// the ad referral, a custom-source phrase in the text, a campaign that reached the lead
// within the session window before, else organic (SPEC §4.1).
func (w *writer) openSession(it *Item, c *Classification, defs *Definitions) {
	w.sess = kv.Session{
		ID: w.id("session", it.AppID, it.Lead, it.ID), AppID: it.AppID, Lead: it.Lead,
		LeadIsBSUID: it.LeadIsBSUID, Start: it.Time, Last: it.Time, Messages: 1,
	}
	switch {
	case it.HasReferral():
		w.sess.SourceType, w.sess.SourceID = SourceAd, it.Referral.SourceID
		if it.Referral.SourceType == SourcePost {
			w.sess.SourceType = SourcePost
		}
		w.sess.Referral = kv.Referral(it.Referral)
	case c.Source >= 0:
		w.sess.SourceType, w.sess.SourceID = SourceCustom, defs.Sources[c.Source].ID
	case w.lead.OutTag != "" && w.lead.OutTime <= it.Time && it.Time-w.lead.OutTime <= w.window:
		w.sess.SourceType, w.sess.SourceID = SourceCampaign, w.lead.OutTag
	default:
		w.sess.SourceType = SourceOrganic
	}
}

// emitter writes the events of one message.
type emitter struct {
	w    *writer
	b    kv.Batch
	it   *Item
	defs *Definitions
	rec  *recording
	err  error // the first failure to queue a conversion
}

func (e *emitter) fail(err error) {
	if e.err == nil {
		e.err = err
	}
}

// emit writes one event and, when it is the converted event of the session's ad or
// campaign, the session's converted event (once per session).
func (e *emitter) emit(typ, typeID, typeValue string) {
	w, it := e.w, e.it
	ev := kv.Event{
		ID: w.id("event", it.ID, typ, typeID, typeValue), AppID: it.AppID, Type: typ, TypeID: typeID,
		TypeValue: typeValue, Time: it.Time, Lead: it.Lead, LeadIsBSUID: it.LeadIsBSUID,
		ConversationID: w.sess.ID, SourceType: w.sess.SourceType, SourceID: w.sess.SourceID, MessageID: it.ID,
	}
	w.val = kv.AppendEvent(w.val[:0], &ev)
	e.b.Set(kv.EventKey(w.key[:0], it.AppID, it.Time, ev.ID), w.val)
	e.rec.events = append(e.rec.events, typ)
	w.delta.add(typ, typeID)
	if typ == TypeConverted || w.sess.Converted {
		return
	}
	for i := range e.defs.Groups {
		g := &e.defs.Groups[i]
		if g.Converted && g.Active() && g.matches(typ, typeID, typeValue) &&
			e.defs.inScope(g, w.sess.SourceType, w.sess.SourceID) {
			w.sess.Converted = true
			e.emit(TypeConverted, g.ID, convertedValue(typ, typeValue))
			e.fail(w.queueSessionConversion(e.b, ConversionSourceConverted, g.ID, it))
			return
		}
	}
}

// convertedValue is the matched value of a converted event: the triggering event's
// value, or its type when it has none (engagement).
func convertedValue(typ, typeValue string) string {
	if typeValue != "" {
		return typeValue
	}
	return typ
}

// saveMessage indexes a logged message by app and time, for refresh: the index points to
// the message's item in the log, which is its record.
func (w *writer) saveMessage(b kv.Batch, it *Item) {
	w.val = kv.AppendMessagePointer(w.val[:0], w.pos.seq, w.pos.item)
	b.Set(kv.MessageKey(w.key[:0], it.AppID, it.Time, it.ID), w.val)
}

// messageRecord is the stored record of a lead message item.
func messageRecord(it *Item) kv.Message {
	return kv.Message{
		ID: it.ID, AppID: it.AppID, Time: it.Time, Lead: it.Lead, LeadIsBSUID: it.LeadIsBSUID,
		Type: it.Type, Text: truncateUTF8(it.Text, kv.MaxText), ButtonPayload: it.ButtonPayload,
		ReplyKind: it.ReplyKind, ReplyID: it.ReplyID, ReplyTitle: it.ReplyTitle, ContextID: it.ContextID,
		Referral: kv.Referral(it.Referral),
	}
}

// storedMessage returns the record that the value v of a message key holds, or the log
// item it points to, read with entry. Its strings alias what entry returned.
func storedMessage(entry func(seq uint64) ([]byte, bool, error), v []byte) (kv.Message, error) {
	seq, item, ok := kv.MessagePointer(v)
	if !ok {
		return kv.DecodeMessage(v) // an edited message, or a store from before the log
	}
	e, found, err := entry(seq)
	if err != nil {
		return kv.Message{}, err
	}
	if !found {
		return kv.Message{}, fmt.Errorf("message record: log entry %d is missing", seq)
	}
	items, err := decodeEntry(nil, e)
	if err != nil || item >= len(items) {
		return kv.Message{}, fmt.Errorf("message record: log entry %d has no item %d (%v)", seq, item, err)
	}
	if it := &items[item]; it.Kind == KindAutoEvent {
		return autoEventRecord(it), nil
	}
	return messageRecord(&items[item]), nil
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func (w *writer) loadLead(b kv.Batch, app, lead string) error {
	w.lead = kv.Lead{}
	if st := w.cache.lead(app, lead); st != nil {
		w.lead = st.lead
		return nil
	}
	v, ok, err := b.Get(kv.LeadKey(w.key[:0], app, lead))
	if err != nil || !ok {
		return err
	}
	w.lead, err = kv.DecodeLead(v)
	return err
}

func (w *writer) saveLead(b kv.Batch, app, lead string) {
	w.val = kv.AppendLead(w.val[:0], &w.lead)
	b.Set(kv.LeadKey(w.key[:0], app, lead), w.val)
	if st := w.cache.lead(app, lead); st != nil {
		st.lead = w.lead
		st.lead.SessionID, st.lead.OutTag = strings.Clone(w.lead.SessionID), strings.Clone(w.lead.OutTag)
		st.hasSess = st.hasSess && st.sess.ID == w.lead.SessionID
	}
}

// loadSession loads the lead's latest session into w.sess; false when there is none.
func (w *writer) loadSession(b kv.Batch, app, lead string) (bool, error) {
	if w.lead.SessionID == "" {
		return false, nil
	}
	if st := w.cache.lead(app, lead); st != nil && st.hasSess && st.sess.ID == w.lead.SessionID {
		w.sess = st.sess
		return true, nil
	}
	v, ok, err := b.Get(kv.SessionKey(w.key[:0], app, w.lead.SessionID))
	if err != nil || !ok {
		return false, err
	}
	w.sess, err = kv.DecodeSession(v)
	return err == nil, err
}

// idEncoding writes ids with lower-case letters and digits only: safe in URLs and
// paths, and never starting with a character a spreadsheet reads as a formula.
var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// id returns a stable 26-character id for parts. Ids derived from message ids make a
// re-classification (refresh) rebuild the same keys instead of adding new ones.
func (w *writer) id(parts ...string) string {
	w.hbuf = w.hbuf[:0]
	for _, p := range parts {
		w.hbuf = append(append(w.hbuf, p...), 0)
	}
	sum := sha256.Sum256(w.hbuf)
	return idEncoding.EncodeToString(sum[:16])
}
