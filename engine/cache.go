package engine

import (
	"strings"

	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
)

// writeCache keeps what the placer last wrote for hot keys — the rollups of the day and
// the latest session of recent leads — so that a message usually needs no store read
// for them. It holds only values the placer wrote or read itself, and is dropped
// whenever the store reports a lost request (a rollback or a failed commit), when a
// refresh rewrites history, and when it grows past its bounds.
type writeCache struct {
	losses uint64 // kv.Batch.Losses when the cache was last known valid
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

// Cache bounds: about 4 MiB of rollups and 20 MiB of lead states at most.
const (
	maxCachedRolls = 16 << 10
	maxCachedLeads = 64 << 10
)

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
	if len(c.leads) >= maxCachedLeads {
		c.leads = make(map[string]*leadState)
	}
	// The placer's records may alias the log entry being applied: keep copies.
	st := &leadState{lead: *l, hasSess: hasSess}
	st.lead.SessionID, st.lead.OutTag = strings.Clone(l.SessionID), strings.Clone(l.OutTag)
	if hasSess {
		st.sess = cloneSession(s)
	}
	c.leads[leadKey(app, lead)] = st
}

// cloneSession copies a session with strings of its own.
func cloneSession(s *kv.Session) kv.Session {
	c := *s
	for _, p := range [...]*string{&c.ID, &c.AppID, &c.Lead, &c.SourceType, &c.SourceID, &c.Referral.SourceType,
		&c.Referral.SourceID, &c.Referral.SourceURL, &c.Referral.Headline, &c.Referral.Body, &c.Referral.MediaType,
		&c.Referral.CtwaClid} {
		*p = strings.Clone(*p)
	}
	return c
}

func (c *writeCache) putRollup(key []byte, r *kv.Rollup) {
	if len(c.rolls) >= maxCachedRolls {
		c.rolls = make(map[string]*kv.Rollup)
	}
	c.rolls[string(key)] = r
}
