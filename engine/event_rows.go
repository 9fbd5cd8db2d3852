package engine

import (
	"errors"

	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
)

// EventRow is one event as the Signals events list and export show it.
type EventRow struct {
	ID, AppID string
	// AdID and CampaignID are set for an event of an ad's session: the ad, and its
	// campaign when an import named it. A post is no ad (SPEC §4.1): its id is only SourceID.
	AdID, CampaignID string
	Phone, UserID    string // the lead: its phone number, or its business-scoped user id
	Type, TypeID     string
	TypeValue        string
	Time             int64 // unix seconds
	ConversationID   string
	ExpireTime       int64 // when the session expires: its latest message plus the session window
	SourceType       string
	SourceID         string
}

// EventPage returns the rows of the events f selects, limit from offset, in time order,
// and how many f selects.
func (r *Recorder) EventPage(f EventFilter, offset, limit int) (rows []EventRow, total int, err error) {
	m := r.rowMaker()
	rows = []EventRow{}
	err = r.Events(f, func(ev *kv.Event) bool {
		if total >= offset && len(rows) < limit {
			rows = append(rows, m.row(ev))
		}
		total++
		return true
	})
	return rows, total, errors.Join(err, m.err)
}

// ExportEvents calls fn with the rows of the events f selects, limit from offset, in time
// order, until fn returns false. A row whose session cannot be read expires a session
// window after the event.
func (r *Recorder) ExportEvents(f EventFilter, offset, limit int, fn func(row *EventRow) bool) error {
	m, n := r.rowMaker(), 0
	return r.Events(f, func(ev *kv.Event) bool {
		if n >= offset {
			row := m.row(ev)
			if !fn(&row) {
				return false
			}
		}
		n++
		return n < offset+limit
	})
}

// eventRowMaker turns events into rows, looking each session up once.
type eventRowMaker struct {
	r       *Recorder
	defs    *Definitions
	expires map[string]int64
	window  int64
	err     error // the first session that could not be read
}

func (r *Recorder) rowMaker() *eventRowMaker {
	return &eventRowMaker{r: r, defs: r.defs.Load(), expires: map[string]int64{}, window: r.sessionWindow()}
}

func (m *eventRowMaker) row(ev *kv.Event) EventRow {
	row := EventRow{ID: ev.ID, AppID: ev.AppID, Type: ev.Type, TypeID: ev.TypeID, TypeValue: ev.TypeValue,
		Time: ev.Time, ConversationID: ev.ConversationID, SourceType: ev.SourceType, SourceID: ev.SourceID,
		ExpireTime: m.expire(ev)}
	if ev.LeadIsBSUID {
		row.UserID = ev.Lead
	} else {
		row.Phone = ev.Lead
	}
	if ev.SourceType == SourceAd {
		row.AdID, row.CampaignID = ev.SourceID, m.defs.AdCampaign[ev.SourceID]
	}
	return row
}

// expire returns the current expiry of ev's session: its last message plus the window
// (the event's time plus the window when the session is not found).
func (m *eventRowMaker) expire(ev *kv.Event) int64 {
	if t, ok := m.expires[ev.ConversationID]; ok {
		return t
	}
	s, ok, err := m.r.session(ev.AppID, ev.ConversationID)
	t := ev.Time + m.window
	if ok {
		t = s.Last + m.window
	}
	if err != nil && m.err == nil {
		m.err = err
	}
	m.expires[ev.ConversationID] = t
	return t
}

// EventTypesOf lists, in EventTypes order, the event types among the events f selects.
func (r *Recorder) EventTypesOf(f EventFilter) ([]string, error) {
	seen := map[string]bool{}
	err := r.Events(f, func(ev *kv.Event) bool {
		seen[ev.Type] = true
		return len(seen) < len(EventTypes)
	})
	var out []string
	for _, t := range EventTypes {
		if seen[t] {
			out = append(out, t)
		}
	}
	return out, err
}

// Standalone counts the sessions that no referral click (on an ad or a post) started —
// QR codes, links, campaigns, organic — and their events.
type Standalone struct {
	Sessions int `json:"sessions_num"`
	Events   int `json:"events_num"`
}

// StandaloneStats counts the standalone sessions of app that started in [from, to), and
// the events of standalone sessions in that range.
func (r *Recorder) StandaloneStats(app string, from, to int64) (Standalone, error) {
	var s Standalone
	err := r.Events(EventFilter{AppID: app, From: from, To: to}, func(ev *kv.Event) bool {
		s.add(ev)
		return true
	})
	return s, err
}

// add counts ev when its session is standalone; a conversation event opens a session.
func (s *Standalone) add(ev *kv.Event) {
	if isReferralSource(ev.SourceType) {
		return
	}
	s.Events++
	if ev.Type == TypeConversation {
		s.Sessions++
	}
}

// isReferralSource reports whether a session of source type t was started by a referral
// click, on an ad or on a post: such sessions are not standalone.
func isReferralSource(t string) bool { return t == SourceAd || t == SourcePost }
