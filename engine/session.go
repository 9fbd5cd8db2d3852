package engine

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
	"github.com/ctwa-sidecar/ctwa-sidecar/webhook"
)

// placer places logged items: it puts each message into its lead's session, writes the
// session, its events and the rollup of its source — the views — and so for statuses,
// edits, number changes, automatic events and off-thread events. It runs only on the
// store's view lane (inside Derive or Apply), one step after another, so its buffers and
// the sessions it reads through the Batch are never shared. (The store's writer is
// another thing: the goroutine of a lane that commits groups of requests, storage/lane.go.)
type placer struct {
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
	rebuilt    *keyFilter                             // during a refresh: the leads and rollups it wrote
	aliases    *aliasTable                            // new numbers of leads (user_changed_number)
	capi       ConversionMap                          // conversions sent to Meta; nil when off
	logEntry   func(seq uint64) ([]byte, bool, error) // Log.Entry: message keys point into the log
	pos        logPos                                 // of the item being applied: message keys point to it
	defs       *atomic.Pointer[Definitions]           // the recorder's: off-thread converted events
	placed     placement                              // what the current placement decided
}

// placement is what placing one message or automatic event decided: whether it opened
// a session, and the types of the events it wrote, in order (for the events metrics). Its
// events alias the placer's buffer: valid until the next placement.
type placement struct {
	opened bool
	events []string
}

// start begins a placement.
func (p *placer) start() { p.placed = placement{events: p.placed.events[:0]} }

// logPos is an item's place in the log: its entry's sequence number and its index there.
type logPos struct {
	seq  uint64
	item int
}

// applyStatus records a status of a business message that carries a campaign tag
// (biz_opaque_callback_data): an outgoing touch. The lead's next session, if it opens
// within the session window, is credited to that campaign (SPEC §4.1). Only such
// statuses reach the log (appender.dedupe).
func (p *placer) applyStatus(b kv.Batch, it *webhook.Item) error {
	it.Lead = p.aliases.lead(it.Lead)
	b.Set(kv.OutKey(p.key[:0], it.AppID, it.Lead, it.Time), []byte(it.BizOpaque))
	return p.touch(b, it.AppID, it.Lead, it.Time, it.BizOpaque)
}

// touch remembers the lead's latest outgoing campaign touch.
func (p *placer) touch(b kv.Batch, app, lead string, t int64, tag string) error {
	if err := p.loadLead(b, app, lead); err != nil {
		return err
	}
	if t >= p.lead.OutTime {
		p.lead.OutTime, p.lead.OutTag = t, tag
		p.saveLead(b, app, lead)
	}
	return nil
}

// applyMessage records an inbound lead message, deduplicated when it was logged: its
// compact record, its session and its events.
func (p *placer) applyMessage(b kv.Batch, it *webhook.Item, c *Classification, defs *Definitions) (placement, error) {
	it.Lead = p.aliases.lead(it.Lead) // a lead who changed number goes on as the same lead
	p.saveMessage(b, it)
	return p.place(b, it, c, defs)
}

// place puts a message into its session, writes its events and updates the rollup of
// the session's source, and returns what it decided. Live messages and refresh replays
// both come through here.
func (p *placer) place(b kv.Batch, it *webhook.Item, c *Classification, defs *Definitions) (placement, error) {
	p.start()
	err := p.placeMessage(b, it, c, defs)
	return p.placed, err
}

func (p *placer) placeMessage(b kv.Batch, it *webhook.Item, c *Classification, defs *Definitions) error {
	if err := p.loadLead(b, it.AppID, it.Lead); err != nil {
		return err
	}
	open, err := p.loadSession(b, it.AppID, it.Lead)
	if err != nil {
		return err
	}
	p.delta.reset()
	e := emitter{p: p, b: b, it: it, defs: defs}
	if !open || it.HasReferral() || it.Time > p.sess.Last+p.window {
		p.placed.opened = true
		p.openSession(it, c, defs)
		p.lead.SessionID = p.sess.ID
		p.saveLead(b, it.AppID, it.Lead)
		// Off-thread events find the lead's sessions, across apps, by start time.
		b.Set(kv.LeadSessionKey(p.key[:0], it.Lead, it.Time, it.AppID, p.sess.ID), nil)
		if err := p.noteReferralAd(b, &p.sess, &it.Referral); err != nil {
			return err
		}
		if clid := p.sess.Referral.CtwaClid; clid != "" { // automatic_events name the click
			p.val = append(p.val[:0], p.sess.ID...) // Set copies: the buffer is free again after
			b.Set(kv.ClidKey(p.key[:0], it.AppID, clid), p.val)
		}
		e.emit(TypeConversation, "", conversationValue(&p.sess))
		if it.HasReferral() {
			e.fail(p.queueSessionConversion(b, ConversionSourceLead, it.ID, it))
		}
	} else {
		p.sess.Messages++
		p.sess.Last = max(p.sess.Last, it.Time)
		if !p.sess.Engaged {
			p.sess.Engaged = true
			e.emit(TypeEngagement, "", "")
		}
	}
	for _, cand := range c.Events {
		if cand.group >= 0 && !defs.inScope(&defs.Groups[cand.group], p.sess.SourceType, p.sess.SourceID) {
			continue
		}
		e.emit(cand.Type, cand.TypeID, cand.TypeValue)
	}
	if e.err != nil {
		return e.err
	}
	p.val = kv.AppendSession(p.val[:0], &p.sess)
	b.Set(kv.SessionKey(p.key[:0], it.AppID, p.sess.ID), p.val)
	p.cache.putLead(it.AppID, it.Lead, &p.lead, &p.sess, true)
	return p.applyRollup(b, &p.sess, &p.delta)
}

func conversationValue(s *kv.Session) string {
	if s.SourceID == "" {
		return s.SourceType
	}
	return s.SourceID
}

// openSession starts a new session in p.sess for message it. Its source is, in order:
// the ad referral, a custom-source phrase in the text, a campaign that reached the lead
// within the session window before, else organic (SPEC §4.1).
func (p *placer) openSession(it *webhook.Item, c *Classification, defs *Definitions) {
	p.sess = kv.Session{
		ID: p.id("session", it.AppID, it.Lead, it.ID), AppID: it.AppID, Lead: it.Lead,
		LeadIsBSUID: it.LeadIsBSUID, Start: it.Time, Last: it.Time, Messages: 1,
	}
	switch {
	case it.HasReferral():
		p.sess.SourceType, p.sess.SourceID = SourceAd, it.Referral.SourceID
		if it.Referral.SourceType == SourcePost {
			p.sess.SourceType = SourcePost
		}
		// The texts (URL, headline, body) stay in the message's log entry and, once per
		// ad, in its referral record: a session keeps what its conversions and automatic
		// events need (about 100 bytes less per CTWA session in the value log).
		p.sess.Referral = kv.Referral{SourceType: it.Referral.SourceType, SourceID: it.Referral.SourceID,
			CtwaClid: it.Referral.CtwaClid}
	case c.Source >= 0:
		p.sess.SourceType, p.sess.SourceID = SourceCustom, defs.Sources[c.Source].ID
	case p.lead.OutTag != "" && p.lead.OutTime <= it.Time && it.Time-p.lead.OutTime <= p.window:
		p.sess.SourceType, p.sess.SourceID = SourceCampaign, p.lead.OutTag
	default:
		p.sess.SourceType = SourceOrganic
	}
}

// emitter writes the events of one message.
type emitter struct {
	p    *placer
	b    kv.Batch
	it   *webhook.Item
	defs *Definitions
	err  error // the first failure to queue a conversion
}

func (e *emitter) fail(err error) {
	if e.err == nil {
		e.err = err
	}
}

// emit writes one event and, when it is the converted event of the session's ad or
// campaign, the session's converted event (once per session); the placement notes their
// types.
func (e *emitter) emit(typ, typeID, typeValue string) {
	p, it := e.p, e.it
	ev := kv.Event{
		ID: p.id("event", it.ID, typ, typeID, typeValue), AppID: it.AppID, Type: typ, TypeID: typeID,
		TypeValue: typeValue, Time: it.Time, Lead: it.Lead, LeadIsBSUID: it.LeadIsBSUID,
		ConversationID: p.sess.ID, SourceType: p.sess.SourceType, SourceID: p.sess.SourceID, MessageID: it.ID,
	}
	p.val = kv.AppendEvent(p.val[:0], &ev)
	e.b.Set(kv.EventKey(p.key[:0], it.AppID, it.Time, ev.ID), p.val)
	p.placed.events = append(p.placed.events, typ)
	p.delta.add(typ, typeID)
	if typ == TypeConverted || p.sess.Converted {
		return
	}
	for i := range e.defs.Groups {
		g := &e.defs.Groups[i]
		if g.Converted && g.Active() && g.matches(typ, typeID, typeValue) &&
			e.defs.inScope(g, p.sess.SourceType, p.sess.SourceID) {
			p.sess.Converted = true
			e.emit(TypeConverted, g.ID, convertedValue(typ, typeValue))
			e.fail(p.queueSessionConversion(e.b, ConversionSourceConverted, g.ID, it))
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
func (p *placer) saveMessage(b kv.Batch, it *webhook.Item) {
	p.val = kv.AppendMessagePointer(p.val[:0], p.pos.seq, p.pos.item)
	b.Set(kv.MessageKey(p.key[:0], it.AppID, it.Time, it.ID), p.val)
}

// messageRecord is the stored record of a lead message item.
func messageRecord(it *webhook.Item) kv.Message {
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
	if it := &items[item]; it.Kind == webhook.KindAutoEvent {
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

func (p *placer) loadLead(b kv.Batch, app, lead string) error {
	p.lead = kv.Lead{}
	if st := p.cache.lead(app, lead); st != nil {
		p.lead = st.lead
		return nil
	}
	key := kv.LeadKey(p.key[:0], app, lead)
	if p.rebuilt != nil && !p.rebuilt.mayHave(key) {
		return nil
	}
	v, ok, err := b.Get(key)
	if err != nil || !ok {
		return err
	}
	p.lead, err = kv.DecodeLead(v)
	return err
}

func (p *placer) saveLead(b kv.Batch, app, lead string) {
	p.val = kv.AppendLead(p.val[:0], &p.lead)
	p.key = kv.LeadKey(p.key[:0], app, lead)
	if p.rebuilt != nil {
		p.rebuilt.add(p.key)
	}
	b.Set(p.key, p.val)
	if st := p.cache.lead(app, lead); st != nil {
		st.lead = p.lead
		ownLead(&st.lead)
		st.hasSess = st.hasSess && st.sess.ID == p.lead.SessionID
	}
}

// loadSession loads the lead's latest session into p.sess; false when there is none.
func (p *placer) loadSession(b kv.Batch, app, lead string) (bool, error) {
	if p.lead.SessionID == "" {
		return false, nil
	}
	if st := p.cache.lead(app, lead); st != nil && st.hasSess && st.sess.ID == p.lead.SessionID {
		p.sess = st.sess
		return true, nil
	}
	v, ok, err := b.Get(kv.SessionKey(p.key[:0], app, p.lead.SessionID))
	if err != nil || !ok {
		return false, err
	}
	p.sess, err = kv.DecodeSession(v)
	return err == nil, err
}

// idEncoding writes ids with lower-case letters and digits only: safe in URLs and
// paths, and never starting with a character a spreadsheet reads as a formula.
var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// id returns a stable 26-character id for parts. Ids derived from message ids make a
// re-classification (refresh) rebuild the same keys instead of adding new ones.
func (p *placer) id(parts ...string) string {
	p.hbuf = p.hbuf[:0]
	for _, part := range parts {
		p.hbuf = append(append(p.hbuf, part...), 0)
	}
	sum := sha256.Sum256(p.hbuf)
	return idEncoding.EncodeToString(sum[:16])
}
