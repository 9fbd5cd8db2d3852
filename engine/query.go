package engine

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ctwa-sidecar/ctwa-sidecar/internal/currency"
	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
)

// EventFilter selects events of one app (the filters of the Signals events list).
type EventFilter struct {
	AppID    string
	From, To int64  // unix seconds: From inclusive, To exclusive
	AdID     string // events of sessions from this ad (source ad:<AdID>; a post is no ad)
	Type     string
	TypeID   string
}

// ParseEventTypeID splits an event_type_id such as "keyword#1" into type and id.
func ParseEventTypeID(s string) (typ, id string, err error) {
	typ, id, ok := strings.Cut(s, "#")
	if !ok || id == "" || !IsEventType(typ) {
		return "", "", fmt.Errorf("%q is not <event type>#<id>, such as keyword#1", s)
	}
	return typ, id, nil
}

// IsEventType reports whether typ is one of the event types of SPEC §4.2.
func IsEventType(typ string) bool {
	for _, t := range EventTypes {
		if t == typ {
			return true
		}
	}
	return false
}

func (f *EventFilter) match(e *kv.Event) bool {
	return (f.Type == "" || e.Type == f.Type) && (f.TypeID == "" || e.TypeID == f.TypeID) &&
		(f.AdID == "" || (e.SourceID == f.AdID && e.SourceType == SourceAd))
}

// errStop ends a scan early without an error for the caller.
var errStop = errors.New("stop")

// Events calls fn, in time order, for every event that f selects, until fn returns false.
func (r *Recorder) Events(f EventFilter, fn func(e *kv.Event) bool) error {
	r.settle()
	start, end := kv.EventTimeKey(f.AppID, f.From), kv.EventTimeKey(f.AppID, f.To)
	err := r.views.ScanRange(start, end, func(_, v []byte) (bool, error) {
		e, err := decodeEvent(v)
		if err != nil {
			return false, err
		}
		if f.match(&e) && !fn(&e) {
			return false, errStop
		}
		return true, nil
	})
	if errors.Is(err, errStop) {
		return nil
	}
	return err
}

// decodeEvent decodes a stored event. An off-thread event row written before rows kept
// their revenue typed has it only as text in TypeValue ("49.9 EUR"): it is read from
// there, here and nowhere else, so every reader sees Amount and Currency.
func decodeEvent(v []byte) (kv.Event, error) {
	e, err := kv.DecodeEvent(v)
	if err == nil && e.Currency == "" && !IsEventType(e.Type) {
		e.Amount, e.Currency = parseRevenueText(e.TypeValue)
	}
	return e, err
}

// parseRevenueText reads revenueText's "49.9 EUR"; "" currency when s is not that.
func parseRevenueText(s string) (float64, string) {
	amount, code, ok := strings.Cut(s, " ")
	f, err := strconv.ParseFloat(amount, 64)
	if !ok || err != nil || !currency.Valid(code) {
		return 0, ""
	}
	return f, code
}

// Session returns a session of app by id.
func (r *Recorder) Session(app, id string) (kv.Session, bool, error) {
	r.settle()
	return r.session(app, id)
}

// session is Session for the materializer and the refresh, which must not wait for the
// views they are writing.
func (r *Recorder) session(app, id string) (kv.Session, bool, error) {
	v, ok, err := r.views.Get(kv.SessionKey(nil, app, id))
	if err != nil || !ok {
		return kv.Session{}, false, err
	}
	s, err := kv.DecodeSession(v)
	return s, err == nil, err
}

// Sessions calls fn for every session of app until fn returns false.
func (r *Recorder) Sessions(app string, fn func(s *kv.Session) bool) error {
	r.settle()
	err := r.views.Scan(kv.SessionPrefix(app), false, func(_, v []byte) (bool, error) {
		s, err := kv.DecodeSession(v)
		if err != nil {
			return false, err
		}
		return fn(&s), nil
	})
	return err
}

// sessionWindow is the configured session window in seconds.
func (r *Recorder) sessionWindow() int64 { return int64(r.cfg.SessionWindow / time.Second) }

// Apps lists the app ids with recorded sessions or off-thread events. The unattributed
// off-thread events that named no app are filed under "", which is no app: not listed.
func (r *Recorder) Apps() ([]string, error) {
	r.settle()
	var apps []string
	err := r.views.Read(func(rd kv.Reader) (err error) {
		apps, err = kv.Apps(rd)
		return err
	})
	return slices.DeleteFunc(apps, func(id string) bool { return id == "" }), err
}
