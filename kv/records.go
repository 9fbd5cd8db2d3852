package kv

import (
	"encoding/binary"
	"math"
)

// MaxText is the longest text or caption kept per message record (SPEC §4.4).
const MaxText = 4 << 10

// Message is the compact record kept per inbound lead message so that a refresh can
// re-classify history with today's definitions (SPEC §4.4). Raw bodies are not stored.
type Message struct {
	ID            string
	AppID         string
	Time          int64 // unix seconds
	Lead          string
	LeadIsBSUID   bool
	Type          string
	Text          string // at most MaxText bytes
	ButtonPayload string
	ReplyKind     string
	ReplyID       string
	ReplyTitle    string
	ContextID     string
	Referral      Referral
}

// Referral is the CTWA ad referral kept on messages and sessions.
type Referral struct {
	SourceType, SourceID, SourceURL, Headline, Body, MediaType, CtwaClid string
}

func (r *Referral) append(dst []byte) []byte {
	for _, s := range [...]string{r.SourceType, r.SourceID, r.SourceURL, r.Headline, r.Body, r.MediaType, r.CtwaClid} {
		dst = appendStr(dst, s)
	}
	return dst
}

func (r *Referral) read(rd *reader) {
	r.SourceType, r.SourceID, r.SourceURL = rd.str(), rd.str(), rd.str()
	r.Headline, r.Body, r.MediaType, r.CtwaClid = rd.str(), rd.str(), rd.str(), rd.str()
}

// A message key holds a Message record, or, when the message's record is its log entry,
// a pointer to it: pointerVersion, the entry's sequence number and the item's index.
const pointerVersion = 0xff

// AppendMessagePointer appends a pointer to item of log entry seq.
func AppendMessagePointer(dst []byte, seq uint64, item int) []byte {
	dst = binary.BigEndian.AppendUint64(append(dst, pointerVersion), seq)
	return binary.BigEndian.AppendUint16(dst, uint16(item))
}

// MessagePointer decodes a value written by AppendMessagePointer; ok is false for a record.
func MessagePointer(v []byte) (seq uint64, item int, ok bool) {
	if len(v) != 11 || v[0] != pointerVersion {
		return 0, 0, false
	}
	return binary.BigEndian.Uint64(v[1:9]), int(binary.BigEndian.Uint16(v[9:])), true
}

// AppendMessage appends the encoding of m to dst.
func AppendMessage(dst []byte, m *Message) []byte {
	dst = append(dst, recordVersion)
	for _, s := range [...]string{m.ID, m.AppID} {
		dst = appendStr(dst, s)
	}
	dst = appendInt(dst, m.Time)
	dst = appendStr(dst, m.Lead)
	dst = appendBool(dst, m.LeadIsBSUID)
	for _, s := range [...]string{m.Type, m.Text, m.ButtonPayload, m.ReplyKind, m.ReplyID, m.ReplyTitle, m.ContextID} {
		dst = appendStr(dst, s)
	}
	return m.Referral.append(dst)
}

// DecodeMessage decodes a record written by AppendMessage.
func DecodeMessage(b []byte) (Message, error) {
	rd := newReader(b)
	var m Message
	m.ID, m.AppID, m.Time = rd.str(), rd.str(), rd.int()
	m.Lead, m.LeadIsBSUID = rd.str(), rd.bool()
	m.Type, m.Text, m.ButtonPayload = rd.str(), rd.str(), rd.str()
	m.ReplyKind, m.ReplyID, m.ReplyTitle, m.ContextID = rd.str(), rd.str(), rd.str(), rd.str()
	m.Referral.read(rd)
	return m, rd.err
}

// Session is one conversation of a lead on an app (SPEC §4.1).
type Session struct {
	ID          string
	AppID       string
	Lead        string
	LeadIsBSUID bool
	Start       int64 // time of the first message
	Last        int64 // time of the latest message; the session expires Last + session window
	Messages    int64
	SourceType  string // ad, post, custom, campaign, organic
	SourceID    string // ad or post id, custom source id, campaign tag; empty for organic
	Referral    Referral
	Engaged     bool
	Converted   bool
}

// AppendSession appends the encoding of s to dst.
func AppendSession(dst []byte, s *Session) []byte {
	dst = append(dst, recordVersion)
	dst = appendStr(appendStr(appendStr(dst, s.ID), s.AppID), s.Lead)
	dst = appendBool(dst, s.LeadIsBSUID)
	dst = appendInt(appendInt(appendInt(dst, s.Start), s.Last), s.Messages)
	dst = appendStr(appendStr(dst, s.SourceType), s.SourceID)
	dst = s.Referral.append(dst)
	return appendBool(appendBool(dst, s.Engaged), s.Converted)
}

// DecodeSession decodes a record written by AppendSession.
func DecodeSession(b []byte) (Session, error) {
	rd := newReader(b)
	var s Session
	s.ID, s.AppID, s.Lead, s.LeadIsBSUID = rd.str(), rd.str(), rd.str(), rd.bool()
	s.Start, s.Last, s.Messages = rd.int(), rd.int(), rd.int()
	s.SourceType, s.SourceID = rd.str(), rd.str()
	s.Referral.read(rd)
	s.Engaged, s.Converted = rd.bool(), rd.bool()
	return s, rd.err
}

// Event is one recorded event (SPEC §4.2), joined to its session by ConversationID.
type Event struct {
	ID             string
	AppID          string
	Type           string
	TypeID         string
	TypeValue      string
	Time           int64
	Lead           string
	LeadIsBSUID    bool
	ConversationID string
	SourceType     string
	SourceID       string
	MessageID      string
	// Amount and Currency are the revenue of an off-thread event row (its TypeValue
	// shows it as text, "49.9 EUR"). Currency is "" on every other event, and on the
	// off-thread rows written before these fields: engine reads their revenue from
	// TypeValue.
	Amount   float64
	Currency string
}

// AppendEvent appends the encoding of e to dst. The revenue fields follow only when
// Currency is set, so an event without revenue is encoded as before they existed.
func AppendEvent(dst []byte, e *Event) []byte {
	dst = append(dst, recordVersion)
	for _, s := range [...]string{e.ID, e.AppID, e.Type, e.TypeID, e.TypeValue} {
		dst = appendStr(dst, s)
	}
	dst = appendStr(appendInt(dst, e.Time), e.Lead)
	dst = appendBool(dst, e.LeadIsBSUID)
	for _, s := range [...]string{e.ConversationID, e.SourceType, e.SourceID, e.MessageID} {
		dst = appendStr(dst, s)
	}
	if e.Currency != "" {
		dst = binary.BigEndian.AppendUint64(appendStr(dst, e.Currency), math.Float64bits(e.Amount))
	}
	return dst
}

// DecodeEvent decodes a record written by AppendEvent.
func DecodeEvent(b []byte) (Event, error) {
	rd := newReader(b)
	var e Event
	e.ID, e.AppID, e.Type, e.TypeID, e.TypeValue = rd.str(), rd.str(), rd.str(), rd.str(), rd.str()
	e.Time, e.Lead, e.LeadIsBSUID = rd.int(), rd.str(), rd.bool()
	e.ConversationID, e.SourceType, e.SourceID, e.MessageID = rd.str(), rd.str(), rd.str(), rd.str()
	if rd.more() { // events without revenue, and those written before it was kept, end here
		e.Currency, e.Amount = rd.str(), math.Float64frombits(rd.uint64())
	}
	return e, rd.err
}

// Lead is the per-lead state engine needs to place the next message: the latest
// session and the latest outgoing campaign touch.
type Lead struct {
	SessionID string
	OutTime   int64  // time of the latest business message with a campaign tag
	OutTag    string // its biz_opaque_callback_data
}

// AppendLead appends the encoding of l to dst.
func AppendLead(dst []byte, l *Lead) []byte {
	dst = appendStr(append(dst, recordVersion), l.SessionID)
	return appendStr(appendInt(dst, l.OutTime), l.OutTag)
}

// DecodeLead decodes a record written by AppendLead.
func DecodeLead(b []byte) (Lead, error) {
	rd := newReader(b)
	l := Lead{SessionID: rd.str(), OutTime: rd.int(), OutTag: rd.str()}
	return l, rd.err
}
