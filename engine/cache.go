package engine

import (
	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
	"github.com/ctwa-sidecar/ctwa-sidecar/webhook"
)

// writeCache keeps what the placer last wrote for hot keys — the rollups of the day and
// the latest session of recent leads — so that a message usually needs no store read
// for them. It holds only values the placer wrote or read itself, and is dropped
// whenever the store reports a lost request (a rollback or a failed commit), when a
// refresh rewrites history, and when it grows past its bounds.
type writeCache struct {
	losses uint64 // kv.Batch.Losses when the cache was last known valid
	bound  int    // entries of each map before it is dropped: maxCached (tests make it small)
	rolls  map[string]*kv.Rollup
	leads  map[string]*leadState
	wabas  map[string]string // app → the WABA stored for it ("" none), once read
}

// leadState is a lead's record and, when HasSess, its latest session.
type leadState struct {
	lead    kv.Lead
	sess    kv.Session
	hasSess bool
}

// Cache bounds: about 4 MiB of rollups and 5 MiB of lead states at most. The heap's
// soft limit (main.go) makes the garbage collector run once the heap grows past what
// is live by what is left under the limit: every MiB the cache holds is one less of
// that room, and lead states are what it must walk (`go run ./bench -store-scale
// 1000000`: 64 Ki leads held 26 MiB; at 16 Ki the build ran at 45 900 messages a second
// instead of 38 000 and the refresh took 38.5 s instead of 53.3, with 910 collections
// instead of 2 449). A lead's record and session not in the cache cost a store read.
const maxCached = 16 << 10

// check drops the cache when the store lost a request since it was last valid.
func (c *writeCache) check(b kv.Batch) {
	if l := b.Losses(); l != c.losses || c.rolls == nil {
		c.reset()
		c.losses = l
	}
}

func (c *writeCache) reset() {
	c.rolls = make(map[string]*kv.Rollup)
	c.leads = make(map[string]*leadState)
	c.wabas = make(map[string]string)
}

// leadKey is the cache key of a lead of an app.
func leadKey(app, lead string) string { return app + "\x00" + lead }

func (c *writeCache) lead(app, lead string) *leadState { return c.leads[leadKey(app, lead)] }

// putLead records the lead's state after a write.
func (c *writeCache) putLead(app, lead string, l *kv.Lead, s *kv.Session, hasSess bool) {
	if len(c.leads) >= c.bound {
		c.leads = make(map[string]*leadState)
	}
	// The placer's records may alias the log entry being applied: keep copies.
	st := &leadState{lead: *l, hasSess: hasSess}
	ownLead(&st.lead)
	if hasSess {
		st.sess = cloneSession(s)
	}
	c.leads[leadKey(app, lead)] = st
}

// ownLead gives a lead record strings of its own.
func ownLead(l *kv.Lead) { webhook.OwnStrings(&l.SessionID, &l.OutTag) }

// cloneSession copies a session with strings of its own, in one allocation.
func cloneSession(s *kv.Session) kv.Session {
	c := *s
	webhook.OwnStrings(&c.ID, &c.AppID, &c.Lead, &c.SourceType, &c.SourceID, &c.Referral.SourceType,
		&c.Referral.SourceID, &c.Referral.SourceURL, &c.Referral.Headline, &c.Referral.Body,
		&c.Referral.MediaType, &c.Referral.CtwaClid)
	return c
}

func (c *writeCache) putRollup(key []byte, r *kv.Rollup) {
	if len(c.rolls) >= c.bound {
		c.rolls = make(map[string]*kv.Rollup)
	}
	c.rolls[string(key)] = r
}
