package engine

import (
	"time"

	json "github.com/goccy/go-json"

	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
	"github.com/ctwa-sidecar/ctwa-sidecar/webhook"
)

// rollupDelta is what one message changes in its session's daily rollup.
type rollupDelta struct {
	session, engaged, converted bool
	keywords                    []string
	autoEvents                  int64
}

func (d *rollupDelta) reset() {
	d.session, d.engaged, d.converted, d.keywords, d.autoEvents = false, false, false, d.keywords[:0], 0
}

// add notes an event of the message.
func (d *rollupDelta) add(typ, typeID string) {
	switch typ {
	case TypeConversation:
		d.session = true
	case TypeEngagement:
		d.engaged = true
	case TypeConverted:
		d.converted = true
	case TypeKeyword:
		d.keywords = append(d.keywords, typeID)
	case TypeAutomaticEvent:
		d.autoEvents++
	}
}

func (d *rollupDelta) empty() bool {
	return !d.session && !d.engaged && !d.converted && len(d.keywords) == 0 && d.autoEvents == 0
}

// day returns the day number of a unix time in the configured zone (-timezone).
func (p *placer) day(unix int64) int32 { return dayIn(unix, p.loc) }

func dayIn(unix int64, loc *time.Location) int32 {
	y, m, d := time.Unix(unix, 0).In(loc).Date()
	return int32(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
}

// loadRollup returns the rollup under key, from the cache or the store (empty when
// absent); the caller changes it in place and saves it with saveRollup.
func (p *placer) loadRollup(b kv.Batch, key []byte) (*kv.Rollup, error) {
	if r := p.cache.rolls[string(key)]; r != nil {
		return r, nil
	}
	r := new(kv.Rollup)
	if p.rebuilt == nil || p.rebuilt.mayHave(key) {
		v, ok, err := b.Get(key)
		if err == nil && ok {
			err = kv.DecodeRollup(v, r)
		}
		if err != nil {
			return nil, err
		}
	}
	p.cache.putRollup(key, r)
	return r, nil
}

func (p *placer) saveRollup(b kv.Batch, key []byte, r *kv.Rollup) {
	p.rval = kv.AppendRollup(p.rval[:0], r)
	if p.rebuilt != nil {
		p.rebuilt.add(key)
	}
	b.Set(key, p.rval)
}

// applyRollup credits a message's delta to the daily rollup of its session's source on
// the day the session started, so engaged and converted never exceed sessions in a range.
func (p *placer) applyRollup(b kv.Batch, s *kv.Session, d *rollupDelta) error {
	if d.empty() {
		return nil
	}
	day := p.day(s.Start)
	if d.session {
		b.Set(kv.RollupLeadKey(p.rkey[:0], s.AppID, s.SourceType, s.SourceID, day, kv.LeadHash(s.Lead)), nil)
	}
	p.rkey = kv.RollupKey(p.rkey[:0], s.AppID, s.SourceType, s.SourceID, day)
	roll, err := p.loadRollup(b, p.rkey)
	if err != nil {
		return err
	}
	if d.session {
		roll.Sessions++
	}
	if d.engaged {
		roll.Engaged++
	}
	if d.converted {
		roll.Converted++
	}
	for _, id := range d.keywords {
		roll.AddKeyword(id)
	}
	roll.AutoEvents += d.autoEvents
	p.saveRollup(b, p.rkey, roll)
	return nil
}

// applyOffThreadRollup credits an off-thread event to its source on the event's day.
func (p *placer) applyOffThreadRollup(b kv.Batch, rec *OffThreadRecord) error {
	p.rkey = kv.RollupKey(p.rkey[:0], rec.AppID, rec.SourceType, rec.SourceID, p.day(rec.Time))
	roll, err := p.loadRollup(b, p.rkey)
	if err != nil {
		return err
	}
	roll.OffCount++
	if rec.Amount > 0 {
		// An event without revenue (a signup) has the default currency USD: counting
		// it as "0 USD" would list USD beside the account's currency, or make it the
		// reporting currency of an ad without account.
		roll.AddRevenue(rec.Currency, rec.Amount)
	}
	p.saveRollup(b, p.rkey, roll)
	return nil
}

// referralAd is an ad or a post that a referral revealed, named by the referral's
// headline. An ad is listed under ad account "unassigned" until an import places it; a
// post is no ad and only names its post:<id> source.
type referralAd struct {
	ID    string `json:"id"`
	AppID string `json:"app_id"`
	// Type is the session's source type, SourceAd or SourcePost; records written before
	// it was kept have none, and are rewritten by the next referral of their id.
	Type      string `json:"type,omitempty"`
	Headline  string `json:"headline"`
	SourceURL string `json:"source_url"`
	FirstSeen int64  `json:"first_seen"`
}

// noteReferralAd stores the first referral (ref) of an ad or post, once per id and app;
// s is the session the referral opened.
func (p *placer) noteReferralAd(b kv.Batch, s *kv.Session, ref *webhook.Referral) error {
	if s.SourceType != SourceAd && s.SourceType != SourcePost {
		return nil
	}
	k := s.AppID + "\x00" + s.SourceID
	if p.seenAds[k] {
		return nil
	}
	key := kv.ReferralAdKey(s.AppID, s.SourceID)
	ra := referralAd{ID: s.SourceID, AppID: s.AppID, Type: s.SourceType, Headline: ref.Headline,
		SourceURL: ref.SourceURL, FirstSeen: s.Start}
	v, ok, err := b.Get(key)
	if err != nil {
		return err
	}
	if ok {
		var old referralAd
		if json.Unmarshal(v, &old) == nil {
			if old.Type != "" {
				p.seenAds[k] = true
				return nil
			}
			old.Type = s.SourceType // keep what the first referral told
			ra = old
		}
	}
	body, err := json.Marshal(ra)
	if err != nil {
		return err
	}
	// Not cached as seen yet: if this request's commit fails, the next referral of the
	// ad must write it again. The next Get finds it and caches it.
	b.Set(key, body)
	return nil
}
