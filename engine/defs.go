package engine

import (
	"strings"

	"github.com/ctwa-sidecar/ctwa-sidecar/matcher"
)

// Group is a tracked event definition, an "event group" of the Signals API. A keyword
// group makes its keyword tracked; a converted group (Converted) names the event that
// counts a session of its ad or campaign as converted (SPEC §6.2).
type Group struct {
	ID         string `json:"id"`
	AppID      string `json:"app_id"`
	AdID       string `json:"ad_id,omitempty"`
	CampaignID string `json:"campaign_id,omitempty"`
	Type       string `json:"type"`
	TypeID     string `json:"type_id,omitempty"`
	TypeValue  string `json:"type_value,omitempty"`
	Status     string `json:"status"` // active or archived
	Converted  bool   `json:"converted,omitempty"`
	Created    int64  `json:"created"`
}

// Active reports whether the group is in force.
func (g *Group) Active() bool { return g.Status == StatusActive }

// Group statuses.
const (
	StatusActive   = "active"
	StatusArchived = "archived"
)

// Source is a custom incoming source: a QR code or wa.me link whose prefilled text
// contains Phrase (SPEC §6.3).
type Source struct {
	ID      string `json:"id"`
	AppID   string `json:"app_id"`
	Name    string `json:"name"`
	Phrase  string `json:"phrase"`
	Created int64  `json:"created"`
}

// Definitions is an immutable snapshot of what is tracked; the recorder swaps in a new
// one when definitions change, so readers never lock.
type Definitions struct {
	Groups  []Group
	Sources []Source
	// AdCampaign maps an ad id to its campaign id, known from spend imports; it scopes
	// campaign-wide groups.
	AdCampaign map[string]string
	// matcher finds the active keywords and the source phrases; it belongs to this
	// snapshot, so a hit's index always refers to this snapshot's patternRef.
	matcher *matcher.Matcher
	// patternRef maps a matcher pattern index to its group or source index.
	patternRef []int
}

// newDefinitions builds the snapshot and its matcher. It fails when a keyword or phrase
// breaks the matcher's limits, so a bad definition is refused before it is stored.
func newDefinitions(groups []Group, sources []Source, adCampaign map[string]string) (*Definitions, error) {
	d := &Definitions{Groups: groups, Sources: sources, AdCampaign: adCampaign}
	var patterns []matcher.Pattern
	for i := range groups {
		g := &groups[i]
		if g.Active() && g.Type == TypeKeyword && g.TypeValue != "" && !(g.Converted && tracked(groups, g)) {
			patterns = append(patterns, matcher.Pattern{ID: g.ID, Text: g.TypeValue, Kind: matcher.KindKeyword})
			d.patternRef = append(d.patternRef, i)
		}
	}
	for i := range sources {
		patterns = append(patterns, matcher.Pattern{ID: sources[i].ID, Text: sources[i].Phrase, Kind: matcher.KindSource})
		d.patternRef = append(d.patternRef, i)
	}
	m, err := matcher.New(patterns)
	if err != nil {
		return nil, err
	}
	d.matcher = m
	return d, nil
}

// tracked reports whether an active keyword group that is not a converted definition
// tracks c's keyword in c's app. A converted definition of type keyword then only
// watches that group's keyword events; otherwise it tracks the keyword itself, so that
// each message yields one keyword event, not two.
func tracked(groups []Group, c *Group) bool {
	for i := range groups {
		g := &groups[i]
		if !g.Converted && g.Active() && g.Type == TypeKeyword && g.AppID == c.AppID && sameWords(g.TypeValue, c.TypeValue) {
			return true
		}
	}
	return false
}

// inScope reports whether group g applies to a session from source sourceType/sourceID.
// A group of an ad or a campaign applies to sessions of source ad:<id> only: a post is no
// ad (SPEC §4.1), even when its id equals the ad's.
func (d *Definitions) inScope(g *Group, sourceType, sourceID string) bool {
	isAd := sourceType == SourceAd
	switch {
	case g.AdID != "":
		return isAd && g.AdID == sourceID
	case g.CampaignID != "":
		return isAd && d.AdCampaign[sourceID] == g.CampaignID
	}
	return true
}

// matches reports whether event e satisfies group g's type, id and value.
func (g *Group) matches(typ, typeID, typeValue string) bool {
	return g.Type == typ && (g.TypeID == "" || g.TypeID == typeID) &&
		(g.TypeValue == "" || strings.EqualFold(g.TypeValue, typeValue))
}

// KeywordText returns the keyword of a keyword group, or the id when it is unknown.
func (d *Definitions) KeywordText(groupID string) string {
	for i := range d.Groups {
		if d.Groups[i].ID == groupID {
			return d.Groups[i].TypeValue
		}
	}
	return groupID
}
