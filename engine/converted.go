package engine

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
)

// TypeOffThread is the type of a converted event that an off-thread action fires: a
// converted definition {type: off_thread, type_value: purchase} counts a session of its
// campaign (or ad) as converted when the shop reports a purchase credited to it. It is
// no event type: off-thread events are listed with type = their action.
const TypeOffThread = "off_thread"

// ConvertedEvents returns app's converted-event definitions in force, one per campaign
// or ad, in definition order.
func (d *Definitions) ConvertedEvents(app string) []Group {
	var out []Group
	for _, g := range d.Groups {
		if g.AppID == app && g.Converted && g.Active() {
			out = append(out, g)
		}
	}
	return out
}

// validateConverted checks the event of a converted definition: an event type of
// SPEC §4.2 (validateGroup), or an off-thread action.
func validateConverted(g *Group) error {
	if g.Type != TypeOffThread {
		return validateGroup(g)
	}
	g.TypeValue = strings.TrimSpace(g.TypeValue)
	switch {
	case g.TypeValue == "":
		return &FieldError{"type_value", "is required for type off_thread: the action the shop reports, e.g. purchase"}
	case IsEventType(g.TypeValue):
		return &FieldError{"type_value", fmt.Sprintf("%q is a message event type, not an off-thread action; use type %s", g.TypeValue, g.TypeValue)}
	case g.TypeID != "":
		return &FieldError{"type_id", "is not used for type off_thread; leave it out"}
	case len(g.TypeValue) > 100:
		return &FieldError{"type_value", "is longer than 100 bytes, the longest action an off-thread event can have"}
	}
	return nil
}

// ClearConverted archives the converted event of a campaign (or of one ad): from then
// on no event converts its sessions, and after a refresh its history has none. It
// returns the archived definition, or ErrNotFound when it has none.
func (r *Recorder) ClearConverted(ctx context.Context, app, campaignID, adID string) (Group, error) {
	switch {
	case campaignID == "" && adID == "":
		return Group{}, &FieldError{"campaign_id", "is required (or ad_id for one ad)"}
	case campaignID != "" && adID != "":
		return Group{}, &FieldError{"campaign_id", "give ad_id or campaign_id, not both"}
	}
	r.defsMu.Lock()
	defer r.defsMu.Unlock()
	if err := r.Sync(ctx); err != nil { // earlier webhooks are classified with the old definitions
		return Group{}, err
	}
	cur := r.defs.Load()
	var writes [][2][]byte
	var cleared Group
	for _, g := range cur.Groups {
		if g.Converted && g.Active() && g.AppID == app && g.CampaignID == campaignID && g.AdID == adID {
			g.Status = StatusArchived
			writes = append(writes, defPut(defGroup, app, g.ID, &g))
			cleared = g
		}
	}
	if len(writes) == 0 {
		return Group{}, ErrNotFound
	}
	if err := r.logDefinitions(ctx, writes...); err != nil {
		return Group{}, fmt.Errorf("cannot store converted event: %w", err)
	}
	return cleared, nil
}

// offThreadConverter returns the converted definition in force that an off-thread event
// of action credited to a session of source sourceType/sourceID fires, or nil.
func (d *Definitions) offThreadConverter(app, action, sourceType, sourceID string) *Group {
	for i := range d.Groups {
		g := &d.Groups[i]
		if g.Converted && g.Active() && g.AppID == app && g.Type == TypeOffThread &&
			strings.EqualFold(g.TypeValue, action) && d.inScope(g, sourceType, sourceID) {
			return g
		}
	}
	return nil
}

// convertByOffThread marks the session that rec is credited to as converted when rec's
// action is the converted event of the session's campaign or ad and the session is not
// converted yet: the session, a converted event at rec's time, the converted count of
// the session's rollup (on the day it started, as a message's conversion) and, when
// conversions go to Meta, the session's "converted" conversion. A refresh that credits
// the event elsewhere rebuilds the session from its messages first, so the conversion
// moves with the credit.
func (p *placer) convertByOffThread(b kv.Batch, rec *OffThreadRecord) error {
	if !rec.Attributed || rec.AppID == "" || rec.ConversationID == "" || p.defs == nil {
		return nil
	}
	g := p.defs.Load().offThreadConverter(rec.AppID, rec.Action, rec.SourceType, rec.SourceID)
	if g == nil {
		return nil
	}
	s, ok, err := p.storedSession(b, rec.AppID, rec.ConversationID)
	if err != nil || !ok || s.Converted {
		return err
	}
	s.Converted = true
	p.putSession(b, &s)
	ev := kv.Event{ID: p.id("event", rec.ID, TypeConverted), AppID: rec.AppID, Type: TypeConverted, TypeID: g.ID,
		TypeValue: rec.Action, Time: rec.Time, Lead: s.Lead, LeadIsBSUID: s.LeadIsBSUID,
		ConversationID: s.ID, SourceType: s.SourceType, SourceID: s.SourceID}
	b.Set(kv.EventKey(nil, rec.AppID, rec.Time, ev.ID), kv.AppendEvent(nil, &ev))
	if err := p.addConverted(b, &s, 1); err != nil {
		return err
	}
	if name, ok := p.capi[ConversionSourceConverted]; ok {
		c := Conversion{ID: p.id("capi", ConversionSourceConverted, s.ID), Name: name, Time: rec.Time, AppID: rec.AppID,
			Lead: s.Lead, Source: ConversionSourceConverted, SourceEventID: g.ID, ConversationID: s.ID,
			AdID: adOf(&s), ClickID: s.Referral.CtwaClid}
		return p.queueConversion(b, &c)
	}
	return nil
}

// storedSession reads a session: the cached latest session of its lead when it is that
// one (it may be newer than the store's until the commit), else the store's.
func (p *placer) storedSession(b kv.Batch, app, id string) (kv.Session, bool, error) {
	v, ok, err := b.Get(kv.SessionKey(nil, app, id))
	if err != nil || !ok {
		return kv.Session{}, false, err
	}
	s, err := kv.DecodeSession(v)
	if err != nil {
		return kv.Session{}, false, err
	}
	if st := p.cache.lead(app, s.Lead); st != nil && st.hasSess && st.sess.ID == id {
		s = cloneSession(&st.sess)
	}
	return s, true, nil
}

// putSession writes a session changed outside a placement, and the lead's cached copy.
func (p *placer) putSession(b kv.Batch, s *kv.Session) {
	b.Set(kv.SessionKey(nil, s.AppID, s.ID), kv.AppendSession(nil, s))
	if st := p.cache.lead(s.AppID, s.Lead); st != nil && st.hasSess && st.sess.ID == s.ID {
		st.sess.Converted = s.Converted
	}
}

// addConverted adds n to the converted count of session s's rollup, on its start day.
func (p *placer) addConverted(b kv.Batch, s *kv.Session, n int64) error {
	p.rkey = kv.RollupKey(p.rkey[:0], s.AppID, s.SourceType, s.SourceID, p.day(s.Start))
	roll, err := p.loadRollup(b, p.rkey)
	if err != nil {
		return err
	}
	roll.Converted = max(roll.Converted+n, 0)
	p.saveRollup(b, p.rkey, roll)
	return nil
}

// ConversionChoice is an event that could count a campaign's (or an ad's) sessions as
// converted: its type, id and value as a converted definition takes them, and how many
// of the scope's sessions had it (all time) — what "converted" would count after a
// refresh.
type ConversionChoice struct {
	Type      string `json:"type"`
	TypeID    string `json:"type_id,omitempty"`
	TypeValue string `json:"type_value"`
	Sessions  int64  `json:"sessions"`
	Events    int64  `json:"events"`
}

// choiceTypes are the event types offered as converted events, besides off-thread actions.
var choiceTypes = []string{TypeKeyword, TypeButton, TypeButtonReply, TypeListReply}

// ConversionChoices lists the events recorded in the sessions of app's ads (of one
// campaign, or of one ad, when given) that a converted definition can name: tracked
// keywords (by keyword), template buttons, button and list replies (by id and title) and
// off-thread actions (type off_thread, by action). Most sessions first.
func (r *Recorder) ConversionChoices(app, campaignID, adID string) ([]ConversionChoice, error) {
	defs := r.defs.Load()
	scope := Group{AppID: app, CampaignID: campaignID, AdID: adID}
	type key struct{ typ, id, value string }
	found := map[key]*ConversionChoice{}
	seen := map[key]map[string]bool{} // sessions per choice
	err := r.Events(EventFilter{AppID: app, From: 0, To: 1 << 62}, func(ev *kv.Event) bool {
		if ev.SourceType != SourceAd || ev.ConversationID == "" || !defs.inScope(&scope, ev.SourceType, ev.SourceID) {
			return true
		}
		var k key
		switch {
		case !IsEventType(ev.Type):
			k = key{TypeOffThread, "", strings.ToLower(ev.Type)}
		case ev.Type == TypeKeyword:
			k = key{TypeKeyword, "", strings.ToLower(ev.TypeValue)}
		case slices.Contains(choiceTypes, ev.Type):
			k = key{ev.Type, ev.TypeID, ev.TypeValue}
		default:
			return true
		}
		c := found[k]
		if c == nil {
			c = &ConversionChoice{Type: k.typ, TypeID: k.id, TypeValue: k.value}
			if !IsEventType(ev.Type) {
				c.TypeValue = ev.Type
			}
			found[k], seen[k] = c, map[string]bool{}
		}
		c.Events++
		if !seen[k][ev.ConversationID] {
			seen[k][ev.ConversationID] = true
			c.Sessions++
		}
		return true
	})
	out := make([]ConversionChoice, 0, len(found))
	for _, c := range found {
		out = append(out, *c)
	}
	slices.SortFunc(out, func(a, b ConversionChoice) int {
		return cmp.Or(cmp.Compare(b.Sessions, a.Sessions), strings.Compare(a.Type, b.Type),
			strings.Compare(a.TypeValue, b.TypeValue), strings.Compare(a.TypeID, b.TypeID))
	})
	return out, err
}

// ConvertedEvents returns app's converted-event definitions in force (Definitions.ConvertedEvents).
func (r *Recorder) ConvertedEvents(app string) []Group { return r.defs.Load().ConvertedEvents(app) }
