package engine

import (
	"encoding/binary"
	"maps"
	"strings"
	"sync/atomic"

	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
	"github.com/ctwa-sidecar/ctwa-sidecar/webhook"
)

// What WhatsApp reports about a lead's thread besides the lead's own messages (SPEC §3.4):
// edits of earlier messages, a lead's change of number, and the leads and purchases Meta
// detected in a CTWA thread (automatic_events). None of them opens a session.

// aliasTable maps a lead's new number to the lead it continues. It changes only on a
// user_changed_number notice, so readers get an immutable snapshot and a change copies it.
type aliasTable struct {
	m atomic.Pointer[map[string]string]
}

// lead returns the lead that number continues, or number itself.
func (t *aliasTable) lead(number string) string {
	if m := t.m.Load(); m != nil {
		if to, ok := (*m)[number]; ok {
			return to
		}
	}
	return number
}

// load reads the aliases stored by earlier number changes.
func (t *aliasTable) load(store Views) error {
	m := map[string]string{}
	prefix := kv.AliasPrefix()
	err := store.Scan(prefix, false, func(k, v []byte) (bool, error) {
		m[string(k[len(prefix):])] = string(v)
		return true, nil
	})
	t.m.Store(&m)
	return err
}

// applyNumberChange links the lead's new number to the lead's history: later messages,
// statuses and off-thread events of the new number continue the same lead. The link goes
// to the lead's first number, so chains (A→B, then B→C) all lead back to A.
func (p *placer) applyNumberChange(b kv.Batch, it *webhook.Item) error {
	lead, number := p.aliases.lead(it.Lead), it.NewLead
	if number == lead {
		return nil
	}
	// Written even when known: a request whose commit failed may have published it.
	b.Set(kv.AliasKey(number), []byte(lead))
	if p.aliases.lead(number) != lead {
		// Published before the commit: a request that fails to commit is retried (by the
		// sender, or in halves when too big) and writes the same alias again.
		// The item's strings alias the request body, which is reused after the request.
		next := maps.Clone(*p.aliases.m.Load())
		next[strings.Clone(number)] = strings.Clone(lead)
		p.aliases.m.Store(&next)
	}
	return nil
}

// applyEdit keeps the new text of an edited message on its stored record (written in
// full, in place of the pointer to the log), so that a refresh classifies what the
// lead's message says now. An edit of a message the store
// does not have (older than the dedupe window, or never received) changes nothing.
func (p *placer) applyEdit(b kv.Batch, it *webhook.Item) error {
	t := it.EditTime
	if t == 0 {
		// Logged before edits carried the time: the message's dedupe claim has it.
		v, ok, err := b.Get(kv.DedupeMessageKey(p.key[:0], it.EditOf))
		if err != nil || !ok || len(v) != 8 {
			return err
		}
		t = int64(binary.BigEndian.Uint64(v))
	}
	key := kv.MessageKey(p.rkey[:0], it.AppID, t, it.EditOf)
	v, ok, err := b.Get(key)
	if err == nil && !ok { // a message recorded before the key held the id's hash
		key = kv.LegacyMessageKey(p.rkey[:0], it.AppID, t, it.EditOf)
		v, ok, err = b.Get(key)
	}
	if err != nil || !ok {
		return err
	}
	m, err := storedMessage(p.logEntry, v)
	if err != nil {
		return err
	}
	m.Text = truncateUTF8(it.Text, kv.MaxText)
	p.val = kv.AppendMessage(p.val[:0], &m)
	b.Set(key, p.val)
	return nil
}

// applyAutoEvent records an automatic event: its record (so that a refresh places it again)
// and, where the click's session is known, the automatic_event event on that session.
func (p *placer) applyAutoEvent(b kv.Batch, it *webhook.Item, defs *Definitions) (placement, error) {
	p.val = kv.AppendMessagePointer(p.val[:0], p.pos.seq, p.pos.item)
	key := kv.MessageKey(p.key[:0], it.AppID, it.Time, autoEventID(it))
	b.Set(key, p.val)
	return p.placeAutoEvent(b, it, defs)
}

// autoEventRecord is the stored record of an automatic event, kept with the messages so
// that a refresh replays it in time order. Its id differs from the message's, in which
// Meta detected the event, so that both records are kept.
func autoEventRecord(it *webhook.Item) kv.Message {
	return kv.Message{
		ID: autoEventID(it), AppID: it.AppID, Time: it.Time, Type: TypeAutomaticEvent,
		ReplyID: it.EventName, Text: autoEventValue(it), ContextID: it.ID,
		Referral: kv.Referral{CtwaClid: it.Referral.CtwaClid},
	}
}

func autoEventID(it *webhook.Item) string { return it.ID + "#" + it.EventName }

// autoEventFromRecord is the item of a stored automatic event (refresh).
func autoEventFromRecord(m *kv.Message) webhook.Item {
	return webhook.Item{Kind: webhook.KindAutoEvent, AppID: m.AppID, ID: m.ContextID, Time: m.Time, EventName: m.ReplyID,
		Text: m.Text, Referral: webhook.Referral{CtwaClid: m.Referral.CtwaClid}}
}

// autoEventValue is the type_value of an automatic event: "25 USD" for a purchase.
func autoEventValue(it *webhook.Item) string {
	if it.Text != "" || it.Currency == "" {
		return it.Text
	}
	return revenueText(it.Amount, it.Currency)
}

// placeAutoEvent writes the automatic_event event on the session whose click is the
// event's ctwa_clid. An event whose click is not known yet is counted and placed by the
// next refresh, once the click's message is in. It returns what it decided.
func (p *placer) placeAutoEvent(b kv.Batch, it *webhook.Item, defs *Definitions) (placement, error) {
	p.start()
	err := p.placeOnClick(b, it, defs)
	return p.placed, err
}

func (p *placer) placeOnClick(b kv.Batch, it *webhook.Item, defs *Definitions) error {
	sid, ok, err := b.Get(kv.ClidKey(p.key[:0], it.AppID, it.Referral.CtwaClid))
	if err == nil && !ok { // a click recorded before the key held the click id's hash
		sid, ok, err = b.Get(kv.LegacyClidKey(p.key[:0], it.AppID, it.Referral.CtwaClid))
	}
	if err != nil || !ok {
		if err == nil {
			autoEventsUnmatched.Inc()
		}
		return err
	}
	if err := p.loadClickSession(b, it.AppID, string(sid)); err != nil {
		return err
	}
	ev := *it
	ev.Lead, ev.LeadIsBSUID = p.sess.Lead, p.sess.LeadIsBSUID
	p.delta.reset()
	e := emitter{p: p, b: b, it: &ev, defs: defs}
	e.emit(TypeAutomaticEvent, it.EventName, autoEventValue(it))
	p.val = kv.AppendSession(p.val[:0], &p.sess)
	b.Set(kv.SessionKey(p.key[:0], it.AppID, p.sess.ID), p.val)
	if p.lead.SessionID == p.sess.ID {
		p.cache.putLead(it.AppID, p.sess.Lead, &p.lead, &p.sess, true)
	}
	return p.applyRollup(b, &p.sess, &p.delta)
}

// loadClickSession loads session id of app into p.sess and its lead into p.lead, through
// the cache when it is the lead's latest session.
func (p *placer) loadClickSession(b kv.Batch, app, id string) error {
	v, ok, err := b.Get(kv.SessionKey(p.key[:0], app, id))
	if err != nil || !ok {
		return err
	}
	if p.sess, err = kv.DecodeSession(v); err != nil {
		return err
	}
	lead := p.sess.Lead
	if err := p.loadLead(b, app, lead); err != nil {
		return err
	}
	if p.lead.SessionID == id {
		_, err = p.loadSession(b, app, lead)
	}
	return err
}
