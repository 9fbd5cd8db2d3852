package engine

import "github.com/ctwa-sidecar/ctwa-sidecar/kv"

// GroupFilter selects the event groups of one app that GET event_groups lists, and the
// time range their events are counted over.
type GroupFilter struct {
	AppID    string
	Status   string // active or archived; "" for both
	Type     string // "" for any
	TypeID   string // "" for any
	AdID     string // "" for any
	From, To int64  // events in [From, To), unix seconds
}

// GroupStats is an event group with the events that count for it in a time range.
type GroupStats struct {
	Group
	Events      int
	First, Last int64 // times of the first and the last of them; 0 when there is none
}

// SelectGroups returns the event groups f selects, in definition order. Converted-event
// definitions are no event groups: they are never listed.
func (d *Definitions) SelectGroups(f GroupFilter) []Group {
	var out []Group
	for _, g := range d.Groups {
		if g.AppID == f.AppID && !g.Converted && (f.Status == "" || g.Status == f.Status) &&
			(f.Type == "" || g.Type == f.Type) && (f.TypeID == "" || g.TypeID == f.TypeID) && (f.AdID == "" || g.AdID == f.AdID) {
			out = append(out, g)
		}
	}
	return out
}

// EventGroups lists a page of the groups f selects, limit from offset, each with its
// events in [f.From, f.To); total is how many f selects.
func (r *Recorder) EventGroups(f GroupFilter, offset, limit int) (rows []GroupStats, total int, err error) {
	groups := r.defs.Load().SelectGroups(f)
	total = len(groups)
	groups = groups[min(offset, total):min(offset+limit, total)]
	rows, err = r.GroupEvents(f.AppID, groups, f.From, f.To)
	return rows, total, err
}

// GroupEvents counts the events of app in [from, to) that count for each of groups, in
// one pass over the app's events.
func (r *Recorder) GroupEvents(app string, groups []Group, from, to int64) ([]GroupStats, error) {
	rows := make([]GroupStats, len(groups))
	for i := range groups {
		rows[i].Group = groups[i]
	}
	if len(groups) == 0 {
		return rows, nil
	}
	defs := r.defs.Load()
	err := r.Events(EventFilter{AppID: app, From: from, To: to}, func(ev *kv.Event) bool {
		defs.countEvent(rows, ev)
		return true
	})
	if err != nil {
		return nil, err
	}
	return rows, nil
}

// countEvent counts ev, read in time order, for each group of rows it counts for: an
// event of the group's app whose type, id and value match it, from a session in its
// scope (an ad's or a campaign's sessions, for a group of an ad or a campaign).
func (d *Definitions) countEvent(rows []GroupStats, ev *kv.Event) {
	for i := range rows {
		if !d.countsFor(&rows[i].Group, ev) {
			continue
		}
		if rows[i].Events == 0 {
			rows[i].First = ev.Time
		}
		rows[i].Last = ev.Time
		rows[i].Events++
	}
}

// countsFor reports whether event ev counts for group g.
func (d *Definitions) countsFor(g *Group, ev *kv.Event) bool {
	return g.AppID == ev.AppID && g.matches(ev.Type, ev.TypeID, ev.TypeValue) && d.inScope(g, ev.SourceType, ev.SourceID)
}

// groupMatches reports whether event ev counts for group g under the current definitions.
func (r *Recorder) groupMatches(g *Group, ev *kv.Event) bool { return r.defs.Load().countsFor(g, ev) }

// ActiveGroupsOf counts the active event groups that apply to ad: the ad's own, its
// campaign's and the app-wide ones. Converted-event definitions are no event groups.
func (d *Definitions) ActiveGroupsOf(ad *Ad) int {
	n := 0
	for i := range d.Groups {
		g := &d.Groups[i]
		if g.AppID == ad.AppID && g.Active() && !g.Converted &&
			(g.AdID == ad.ID || (g.CampaignID != "" && g.CampaignID == ad.CampaignID) || (g.AdID == "" && g.CampaignID == "")) {
			n++
		}
	}
	return n
}
