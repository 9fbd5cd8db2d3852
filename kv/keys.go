package kv

import (
	"crypto/sha256"
	"encoding/binary"

	"github.com/cespare/xxhash/v2"
)

// Key layout. Every key starts with a short ASCII table name and a NUL; app ids, leads
// and ids never contain NUL. Times are 8-byte big-endian unix seconds, so a prefix scan
// walks a table in time order.
//
//	dup\0m\0<message id>                   dedupe of an inbound message (TTL DedupeTTL)
//	dup\0s\0<message id>\0<status>         dedupe of a status (TTL DedupeTTL)
//	msg\0<app>\0<time8><id hash8>          Message record, for refresh (<message id> in place of the hash before)
//	out\0<app>\0<lead>\0<time8>            outgoing campaign touch: biz_opaque_callback_data
//	lead\0<app>\0<lead>                    id of the lead's latest session
//	ses\0<app>\0<session id>               Session record
//	evt\0<app>\0<time8><event id>          Event record
//	lses\0<lead>\0<start8><app>\0<session id>  index: a lead's sessions by start time
//	xev\0<id>                              off-thread event, JSON
//	xobj\0<object id>                      off-thread event id by object_id (idempotency)
//	xapp\0<app>\0<time8><id>               index: off-thread events of an app by time
//	def\0<kind>\0<app>\0<id>               definitions (event groups, custom sources), JSON
//	seq\0<name>                            id counters for definitions
//	alias\0<number>                        a lead's new number → the lead it continues (user_changed_number)
//	clid\0<app>\0<ctwa_clid>               a click id → the session it opened (automatic_events)
//	log\0<seq8>                            log entry (storage.Log): a webhook's items or a command, kept for good
//	logclaim\0<hash8>                      a file log's claim in a backup: its value, Badger's expiry its own
//	pos\0views                             the log position the views reflect (their checkpoint)
//	waba\0<app>                            the WhatsApp Business Account of an app (phone number), from its webhooks
//	capi\0<event id>                       a conversion for Meta's Conversions API and its delivery (JSON)
//	capit\0<app>\0<time8><event id>        conversions by app and source-event time (activity log)
//	capiq\0<time8><event id>               a conversion waiting to be sent (the outbox), oldest event first
const (
	tDup      = "dup\x00"
	tMsg      = "msg\x00"
	tOut      = "out\x00"
	tLead     = "lead\x00"
	tSes      = "ses\x00"
	tEvt      = "evt\x00"
	tLses     = "lses\x00"
	tXev      = "xev\x00"
	tXobj     = "xobj\x00"
	tXapp     = "xapp\x00"
	tDef      = "def\x00"
	tSeq      = "seq\x00"
	tAlias    = "alias\x00"
	tClid     = "clid\x00"
	tLog      = "log\x00"
	tLogClaim = "logclaim\x00"
	tSpool    = "spool\x00"
	tPos      = "pos\x00"
	tWABA     = "waba\x00"
	tCapi     = "capi\x00"
	tCapit    = "capit\x00"
	tCapiq    = "capiq\x00"
)

func appendTime(dst []byte, t int64) []byte { return binary.BigEndian.AppendUint64(dst, uint64(t)) }

func appendParts(dst []byte, table string, parts ...string) []byte {
	dst = append(dst, table...)
	for i, p := range parts {
		if i > 0 {
			dst = append(dst, 0)
		}
		dst = append(dst, p...)
	}
	return dst
}

// DedupeMessageKey is the dedupe key of an inbound message id.
func DedupeMessageKey(dst []byte, id string) []byte {
	return append(append(append(dst, tDup...), "m\x00"...), id...)
}

// DedupeStatusKey is the dedupe key of one status of a business message.
func DedupeStatusKey(dst []byte, id, status string) []byte {
	dst = append(append(append(dst, tDup...), "s\x00"...), id...)
	return append(append(dst, 0), status...)
}

// MessageKey is the key of a Message record: the message id as its 64-bit hash, so the
// key is 36 bytes rather than 90 (Meta's ids are about 60 characters); the record holds
// the id.
func MessageKey(dst []byte, app string, t int64, id string) []byte {
	dst = appendTime(append(appendParts(dst, tMsg, app), 0), t)
	return binary.BigEndian.AppendUint64(dst, xxhash.Sum64String(id))
}

// LegacyMessageKey is the key a Message record had before MessageKey hashed the id;
// stores written then still hold such keys.
func LegacyMessageKey(dst []byte, app string, t int64, id string) []byte {
	return append(appendTime(append(appendParts(dst, tMsg, app), 0), t), id...)
}

// MessagePrefix is the prefix of all Message records of app, in time order.
func MessagePrefix(app string) []byte { return append(appendParts(nil, tMsg, app), 0) }

// OutKey is the key of an outgoing campaign touch of lead at time t.
func OutKey(dst []byte, app, lead string, t int64) []byte {
	return appendTime(append(appendParts(dst, tOut, app, lead), 0), t)
}

// LeadKey is the key of the pointer to the lead's latest session.
func LeadKey(dst []byte, app, lead string) []byte { return appendParts(dst, tLead, app, lead) }

// SessionKey is the key of a Session record.
func SessionKey(dst []byte, app, id string) []byte { return appendParts(dst, tSes, app, id) }

// SessionPrefix is the prefix of all sessions of app.
func SessionPrefix(app string) []byte { return append(appendParts(nil, tSes, app), 0) }

// EventKey is the key of an Event record.
func EventKey(dst []byte, app string, t int64, id string) []byte {
	return append(appendTime(append(appendParts(dst, tEvt, app), 0), t), id...)
}

// EventPrefix is the prefix of all events of app, in time order.
func EventPrefix(app string) []byte { return append(appendParts(nil, tEvt, app), 0) }

// EventTimeKey is the first key of app's events at or after time t.
func EventTimeKey(app string, t int64) []byte { return appendTime(EventPrefix(app), t) }

// DefKey is the key of a definition of kind ("group", "source") with id.
func DefKey(kind, app, id string) []byte { return appendParts(nil, tDef, kind, app, id) }

// SeqKey is the key of the counter name.
func SeqKey(name string) []byte { return appendParts(nil, tSeq, name) }

// DefKindPrefix is the prefix of the definitions of kind across all apps.
func DefKindPrefix(kind string) []byte { return appendParts(nil, tDef, kind, "") }

// LeadSessionKey indexes a session under its lead and start time.
func LeadSessionKey(dst []byte, lead string, start int64, app, id string) []byte {
	dst = appendTime(append(appendParts(dst, tLses, lead), 0), start)
	return append(append(append(dst, app...), 0), id...)
}

// LeadSessionTimeKey is the first index key of lead's sessions that started at t.
func LeadSessionTimeKey(lead string, t int64) []byte {
	return appendTime(append(appendParts(nil, tLses, lead), 0), t)
}

// SplitLeadSessionKey returns the app and session id of a LeadSessionKey.
func SplitLeadSessionKey(key []byte) (app, id string, ok bool) {
	lead := key[len(tLses):]
	i := indexByte(lead, 0)
	if i < 0 || len(lead) < i+1+8 {
		return "", "", false
	}
	rest := lead[i+1+8:]
	j := indexByte(rest, 0)
	if j < 0 {
		return "", "", false
	}
	return string(rest[:j]), string(rest[j+1:]), true
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// OffThreadKey is the key of an off-thread event.
func OffThreadKey(id string) []byte { return appendParts(nil, tXev, id) }

// ObjectKey maps an off-thread object_id to its event id.
func ObjectKey(objectID string) []byte { return appendParts(nil, tXobj, objectID) }

// OffThreadAppKey indexes an off-thread event under its app and time.
func OffThreadAppKey(app string, t int64, id string) []byte {
	return append(appendTime(append(appendParts(nil, tXapp, app), 0), t), id...)
}

// Daily rollups and the ad catalogue.
//
//	roll\0<app>\0<source type>\0<source id>\0<day4>   Rollup of one source on one day
//	rlead\0<app>\0<source type>\0<source id>\0<day4><lead hash8>   a lead with a session of the source that day
//	cat\0<kind>\0<id>                                catalogue: facebook accounts, ad accounts, campaigns, ad sets, ads (JSON)
//	spend\0<ad id>\0<day4>                            imported delivery of an ad on a day (JSON)
const (
	tRoll  = "roll\x00"
	tRlead = "rlead\x00"
	tCat   = "cat\x00"
	tSpend = "spend\x00"
)

func appendDay(dst []byte, day int32) []byte { return binary.BigEndian.AppendUint32(dst, uint32(day)) }

// RollupKey is the key of the rollup of a source of app on day (days since 1970-01-01).
func RollupKey(dst []byte, app, srcType, srcID string, day int32) []byte {
	return appendDay(append(appendParts(dst, tRoll, app, srcType, srcID), 0), day)
}

// RollupSourcePrefix is the prefix of one source's rollups, in day order.
func RollupSourcePrefix(app, srcType, srcID string) []byte {
	return append(appendParts(nil, tRoll, app, srcType, srcID), 0)
}

// RollupAppPrefix is the prefix of all rollups of app.
func RollupAppPrefix(app string) []byte { return append(appendParts(nil, tRoll, app), 0) }

// SplitRollupKey returns the source and day of a RollupKey.
func SplitRollupKey(key []byte) (srcType, srcID string, day int32, ok bool) {
	rest := key[len(tRoll):]
	app := indexByte(rest, 0)
	if app < 0 || len(rest) < app+1+4 {
		return "", "", 0, false
	}
	parts := rest[app+1 : len(rest)-5]
	t := indexByte(parts, 0)
	if t < 0 {
		return "", "", 0, false
	}
	return string(parts[:t]), string(parts[t+1:]), int32(binary.BigEndian.Uint32(rest[len(rest)-4:])), true
}

// CatalogKey is the key of a catalogue entry of kind.
func CatalogKey(kind, id string) []byte { return appendParts(nil, tCat, kind, id) }

// CatalogPrefix is the prefix of all catalogue entries of kind.
func CatalogPrefix(kind string) []byte { return append(appendParts(nil, tCat, kind), 0) }

// SpendKey is the key of an ad's imported delivery on day.
func SpendKey(adID string, day int32) []byte {
	return appendDay(append(appendParts(nil, tSpend, adID), 0), day)
}

// SpendPrefix is the prefix of an ad's delivery rows, in day order.
func SpendPrefix(adID string) []byte { return append(appendParts(nil, tSpend, adID), 0) }

// ReferralAdKey is the key of an ad first seen in a referral of app.
func ReferralAdKey(app, adID string) []byte { return appendParts(nil, tCat, "refad", app, adID) }

// ReferralAdPrefix is the prefix of the referral-revealed ads of app.
func ReferralAdPrefix(app string) []byte { return append(appendParts(nil, tCat, "refad", app), 0) }

// SpendDay returns the day of a SpendKey.
func SpendDay(key []byte) int32 { return int32(binary.BigEndian.Uint32(key[len(key)-4:])) }

// SplitOutKey returns the lead and time of an OutKey of app.
func SplitOutKey(app string, key []byte) (lead string, t int64, ok bool) {
	rest := key[len(tOut)+len(app)+1:]
	if len(rest) < 9 || rest[len(rest)-9] != 0 {
		return "", 0, false
	}
	return string(rest[:len(rest)-9]), int64(binary.BigEndian.Uint64(rest[len(rest)-8:])), true
}

// OutAppPrefix is the prefix of all outgoing touches of app.
func OutAppPrefix(app string) []byte { return append(appendParts(nil, tOut, app), 0) }

// LeadPrefix is the prefix of all lead records of app.
func LeadPrefix(app string) []byte { return append(appendParts(nil, tLead, app), 0) }

// OffThreadAppPrefix is the prefix of app's off-thread index.
func OffThreadAppPrefix(app string) []byte { return append(appendParts(nil, tXapp, app), 0) }

// RollupLeadKey marks that a session of lead (by LeadHash) of a source started on day.
func RollupLeadKey(dst []byte, app, srcType, srcID string, day int32, lead uint64) []byte {
	dst = appendDay(append(appendParts(dst, tRlead, app, srcType, srcID), 0), day)
	return binary.BigEndian.AppendUint64(dst, lead)
}

// RollupLeadSourcePrefix is the prefix of one source's lead keys, in day order.
func RollupLeadSourcePrefix(app, srcType, srcID string) []byte {
	return append(appendParts(nil, tRlead, app, srcType, srcID), 0)
}

// RollupLeadAppPrefix is the prefix of all lead keys of app.
func RollupLeadAppPrefix(app string) []byte { return append(appendParts(nil, tRlead, app), 0) }

// LeadHashOf returns the lead hash at the end of a RollupLeadKey.
func LeadHashOf(key []byte) uint64 { return binary.BigEndian.Uint64(key[len(key)-8:]) }

// RollupDay returns the day of a RollupKey.
func RollupDay(key []byte) int32 { return int32(binary.BigEndian.Uint32(key[len(key)-4:])) }

// RollupLeadDay returns the day of a RollupLeadKey.
func RollupLeadDay(key []byte) int32 {
	return int32(binary.BigEndian.Uint32(key[len(key)-12 : len(key)-8]))
}

// AliasKey is the key of the lead that a new number continues.
func AliasKey(number string) []byte { return appendParts(nil, tAlias, number) }

// AliasPrefix is the prefix of every alias; the number follows it.
func AliasPrefix() []byte { return []byte(tAlias) }

// ClidKey is the key of the id of the session that click clid opened on app: the click
// id as 16 bytes of its SHA-256, so the key is 37 bytes rather than 119 (Meta's
// ctwa_clid runs to about a hundred characters, and every new CTWA session writes one;
// `go run ./bench` stores one per webhook). Two clicks of an app share a key only if
// their hashes collide (about 2⁻¹²⁸ a pair).
func ClidKey(dst []byte, app, clid string) []byte {
	sum := sha256.Sum256([]byte(clid))
	return append(append(appendParts(dst, tClid, app), 0), sum[:16]...)
}

// LegacyClidKey is the key a click had before ClidKey hashed it; stores written then
// still hold such keys.
func LegacyClidKey(dst []byte, app, clid string) []byte { return appendParts(dst, tClid, app, clid) }

// ClidPrefix is the prefix of app's click ids.
func ClidPrefix(app string) []byte { return append(appendParts(nil, tClid, app), 0) }

// EntryKey is the key of entry seq of the log whose keys start with prefix.
func EntryKey(dst, prefix []byte, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(append(dst, prefix...), seq)
}

// LogPrefix is the prefix of every log entry key.
func LogPrefix() []byte { return []byte(tLog) }

// SpoolPrefix is the prefix of the spool's entries: the webhooks a cluster member logged
// while its cluster could not be reached (SPEC §11), until they are published.
func SpoolPrefix() []byte { return []byte(tSpool) }

// LogSeq is the sequence number of a log entry key (of any prefix).
func LogSeq(key []byte) uint64 { return binary.BigEndian.Uint64(key[len(key)-8:]) }

// ClaimPrefixes are the prefixes of the dedupe marks a log keeps in Badger: those of
// messages and statuses, and the off-thread object ids.
func ClaimPrefixes() [][]byte { return [][]byte{[]byte(tDup), []byte(tXobj)} }

// LogClaimKey is the key of a file log's claim, by the hash of its key, in a backup.
func LogClaimKey(h uint64) []byte { return binary.BigEndian.AppendUint64([]byte(tLogClaim), h) }

// LogClaimPrefix is the prefix of LogClaimKey.
func LogClaimPrefix() []byte { return []byte(tLogClaim) }

// ViewPosKey holds the log position the views reflect (AppendViewPos).
func ViewPosKey() []byte { return appendParts(nil, tPos, "views") }

// AppendViewPos encodes the views' checkpoint: every entry up to applied in full, and
// partial items of the next one.
func AppendViewPos(dst []byte, applied uint64, partial uint32) []byte {
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64(dst, applied), partial)
}

// DecodeViewPos decodes a ViewPosKey value; ok is false for one of another length.
func DecodeViewPos(v []byte) (applied uint64, partial uint32, ok bool) {
	if len(v) != 12 {
		return 0, 0, false
	}
	return binary.BigEndian.Uint64(v), binary.BigEndian.Uint32(v[8:]), true
}

// ConversionKey is the key of a conversion (its Conversions API event id).
func ConversionKey(id string) []byte { return appendParts(nil, tCapi, id) }

// ConversionAppKey indexes a conversion under its app and source-event time.
func ConversionAppKey(app string, t int64, id string) []byte {
	return append(appendTime(append(appendParts(nil, tCapit, app), 0), t), id...)
}

// ConversionAppPrefix is the prefix of an app's conversion index.
func ConversionAppPrefix(app string) []byte { return append(appendParts(nil, tCapit, app), 0) }

// ConversionAppID is the event id of a ConversionAppKey.
func ConversionAppID(app string, key []byte) string {
	return string(key[len(ConversionAppPrefix(app))+8:])
}

// PendingConversionKey marks a conversion the outbox has still to send.
func PendingConversionKey(t int64, id string) []byte {
	return append(appendTime([]byte(tCapiq), t), id...)
}

// PendingConversionTime is the source-event time of a PendingConversionKey.
func PendingConversionTime(key []byte) int64 {
	return int64(binary.BigEndian.Uint64(key[len(tCapiq) : len(tCapiq)+8]))
}

// PendingConversionID is the event id of a PendingConversionKey.
func PendingConversionID(key []byte) string { return string(key[len(tCapiq)+8:]) }

// PendingConversionPrefix is the prefix of the outbox.
func PendingConversionPrefix() []byte { return []byte(tCapiq) }

// WABAKey maps an app (phone number id) to its WhatsApp Business Account.
func WABAKey(app string) []byte { return appendParts(nil, tWABA, app) }
