package storage

// Keys that link a lead's records across what WhatsApp reports about the thread
// (see the key layout in keys.go and README.md):
//
//	alias\0<number>                        a lead's new number → the lead it continues (user_changed_number)
//	clid\0<app>\0<ctwa_clid>               a click id → the session it opened (automatic_events)
const (
	tAlias = "alias\x00"
	tClid  = "clid\x00"
)

// AliasKey is the key of the lead that a new number continues.
func AliasKey(number string) []byte { return appendParts(nil, tAlias, number) }

// AliasPrefix is the prefix of every alias; the number follows it.
func AliasPrefix() []byte { return []byte(tAlias) }

// ClidKey is the key of the id of the session that click clid opened on app.
func ClidKey(dst []byte, app, clid string) []byte { return appendParts(dst, tClid, app, clid) }

// ClidPrefix is the prefix of app's click ids.
func ClidPrefix(app string) []byte { return append(appendParts(nil, tClid, app), 0) }
