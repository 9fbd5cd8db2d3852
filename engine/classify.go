package engine

import (
	"strings"

	"github.com/ctwa-sidecar/ctwa-sidecar/matcher"
	"github.com/ctwa-sidecar/ctwa-sidecar/webhook"
)

// Event types (SPEC §4.2), named as in the Signals API.
const (
	TypeConversation = "conversation"
	TypeEngagement   = "engagement"
	TypeButton       = "button"
	TypeButtonReply  = "button_reply"
	TypeListReply    = "list_reply"
	TypeKeyword      = "keyword"
	TypeLink         = "link"
	TypeConverted    = "converted"
	TypeList         = "list"
	// TypeAutomaticEvent is a lead or purchase Meta detected in a CTWA thread (automatic_events).
	TypeAutomaticEvent = "automatic_event"
)

// EventTypes lists every event type, in the order the API reports them.
var EventTypes = []string{TypeAutomaticEvent, TypeButton, TypeButtonReply, TypeConversation, TypeConverted,
	TypeEngagement, TypeKeyword, TypeLink, TypeList, TypeListReply}

// Source types of a session (SPEC §4.1, §6.3).
const (
	SourceAd       = "ad"
	SourcePost     = "post"
	SourceCustom   = "custom"
	SourceCampaign = "campaign"
	SourceOrganic  = "organic"
)

// Candidate is an event a message produces by itself, before its session is known.
// Strings alias the item or the definitions.
type Candidate struct {
	Type, TypeID, TypeValue string
	group                   int // index of the keyword group in Definitions.Groups, or -1
}

// Classification is what one message yields without looking at session state.
type Classification struct {
	Events []Candidate
	// Source is the index of the first custom source whose phrase the text contains, or -1.
	Source int
	hits   []matcher.Hit
}

// Classify finds the stateless events of message it: the reply it carries, tracked
// keywords and links in its text, and a custom-source phrase. It reuses c's buffers
// and allocates nothing once they have grown.
func Classify(c *Classification, it *webhook.Item, defs *Definitions) {
	c.Events, c.Source = c.Events[:0], -1
	switch {
	case it.Type == "button":
		c.Events = append(c.Events, Candidate{TypeButton, it.ButtonPayload, it.Text, -1})
	case it.ReplyKind == TypeButtonReply || it.ReplyKind == TypeListReply:
		c.Events = append(c.Events, Candidate{it.ReplyKind, it.ReplyID, it.ReplyTitle, -1})
	}
	if it.Text == "" {
		return
	}
	c.hits = defs.matcher.Match(c.hits[:0], it.Text)
	for _, h := range c.hits {
		ref := defs.patternRef[h.Index]
		switch h.Kind {
		case matcher.KindKeyword:
			if g := &defs.Groups[ref]; g.AppID == it.AppID {
				c.Events = append(c.Events, Candidate{TypeKeyword, g.ID, g.TypeValue, ref})
			}
		case matcher.KindSource:
			// The longest phrase wins ("billboard a" over "billboard"); on a tie, the
			// earlier definition, as matcher.Source does.
			if defs.Sources[ref].AppID == it.AppID && (c.Source < 0 || len(h.Text) > len(defs.Sources[c.Source].Phrase)) {
				c.Source = ref
			}
		}
	}
	c.appendLinks(it.Text)
}

// appendLinks adds a link event per distinct host of the http(s) URLs in text.
func (c *Classification) appendLinks(text string) {
	for rest := text; ; {
		i := indexURL(rest)
		if i < 0 {
			return
		}
		rest = rest[i:]
		host := urlHost(rest)
		rest = rest[len("http://"):]
		if host == "" || c.hasLink(host) {
			continue
		}
		c.Events = append(c.Events, Candidate{TypeLink, "", host, -1})
	}
}

func (c *Classification) hasLink(host string) bool {
	for _, e := range c.Events {
		if e.Type == TypeLink && e.TypeValue == host {
			return true
		}
	}
	return false
}

// indexURL returns the index of the next "http://" or "https://" (any case) in s, or -1.
func indexURL(s string) int {
	for i := 0; i+7 <= len(s); i++ {
		if s[i] != 'h' && s[i] != 'H' {
			continue
		}
		if hasPrefixFold(s[i:], "http://") || hasPrefixFold(s[i:], "https://") {
			return i
		}
	}
	return -1
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// urlHost returns the host of the URL at the start of s, lower-cased, without port or
// user info.
func urlHost(s string) string {
	s = s[strings.IndexByte(s, ':')+3:]
	end := strings.IndexAny(s, "/?#: \t\r\n\"'<>)]}")
	if end >= 0 {
		s = s[:end]
	}
	if at := strings.LastIndexByte(s, '@'); at >= 0 {
		s = s[at+1:]
	}
	// Host names are case-insensitive; ToLower returns a lower-case host without copying.
	return strings.ToLower(strings.TrimRight(s, ".,;!"))
}
