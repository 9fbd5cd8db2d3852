package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	json "github.com/goccy/go-json"

	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
)

// Definition kinds in the store.
const (
	defGroup  = "group"
	defSource = "source"
)

// Definitions returns the current snapshot of tracked events and sources.
func (r *Recorder) Definitions() *Definitions { return r.defs.Load() }

// reloadDefinitions reads every definition from the store and swaps in a new snapshot.
func (r *Recorder) reloadDefinitions() error {
	var groups []Group
	var sources []Source
	if err := loadJSON(r.views, defGroup, &groups); err != nil {
		return err
	}
	if err := loadJSON(r.views, defSource, &sources); err != nil {
		return err
	}
	// The store returns them by app, then by id as a string ("10" < "2"). Definition
	// order decides between overlapping source phrases and converted groups, so restore
	// it: a restart must classify like before.
	slices.SortFunc(groups, func(a, b Group) int { return compareIDs(a.ID, b.ID) })
	slices.SortFunc(sources, func(a, b Source) int { return compareIDs(a.ID, b.ID) })
	d, err := newDefinitions(groups, sources, r.catalog.Load().adCampaign())
	if err != nil {
		return fmt.Errorf("stored definitions are invalid: %w", err)
	}
	r.defs.Store(d)
	return nil
}

// compareIDs orders the counter ids of nextID numerically.
func compareIDs(a, b string) int {
	return cmp.Or(cmp.Compare(len(a), len(b)), strings.Compare(a, b))
}

func loadJSON[T any](store Views, kind string, into *[]T) error {
	return store.Scan(kv.DefKindPrefix(kind), false, func(key, value []byte) (bool, error) {
		var v T
		if err := json.Unmarshal(value, &v); err != nil {
			return false, fmt.Errorf("cannot read %s definition %q: %w", kind, key, err)
		}
		*into = append(*into, v)
		return true, nil
	})
}

// FieldError is a definition rejected for one field; the API turns it into a 400 that
// names the field.
type FieldError struct {
	Field, Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// AddGroup validates and stores a new event group; a keyword group makes its keyword
// tracked from now on. It returns the stored group with its id.
func (r *Recorder) AddGroup(ctx context.Context, g Group) (Group, error) {
	if err := validateGroup(&g); err != nil {
		return Group{}, err
	}
	r.defsMu.Lock()
	defer r.defsMu.Unlock()
	if err := r.Sync(ctx); err != nil { // earlier webhooks are classified with the old definitions
		return Group{}, err
	}
	cur := r.defs.Load()
	if old := cur.trackedKeyword(&g); old != nil {
		return Group{}, &FieldError{"type_value", fmt.Sprintf("keyword %q is already tracked by group %s", g.TypeValue, old.ID)}
	}
	g.Status, g.Created = StatusActive, time.Now().Unix()
	if err := checkMatcher(append(slices.Clone(cur.Groups), g), cur.Sources, "type_value"); err != nil {
		return Group{}, err
	}
	id, counter, err := r.nextID(defGroup)
	if err != nil {
		return Group{}, err
	}
	g.ID = id
	if g.Type == TypeKeyword {
		g.TypeID = id // keyword events carry the definition id (SPEC §4.2)
	}
	if err := r.logDefinitions(ctx, counter, defPut(defGroup, g.AppID, g.ID, &g)); err != nil {
		return Group{}, fmt.Errorf("cannot store event group: %w", err)
	}
	return g, nil
}

// trackedKeyword returns the active keyword group that already tracks g's keyword in
// the same scope, or nil.
func (d *Definitions) trackedKeyword(g *Group) *Group {
	if g.Type != TypeKeyword {
		return nil
	}
	for i := range d.Groups {
		old := &d.Groups[i]
		if old.ID != g.ID && old.AppID == g.AppID && old.Type == TypeKeyword && old.Active() && old.AdID == g.AdID &&
			old.CampaignID == g.CampaignID && sameWords(old.TypeValue, g.TypeValue) {
			return old
		}
	}
	return nil
}

// sameWords compares keywords as the matcher does: case and runs of white space ignored.
func sameWords(a, b string) bool {
	return strings.EqualFold(strings.Join(strings.Fields(a), " "), strings.Join(strings.Fields(b), " "))
}

// SetGroupStatus activates or archives a group; archiving a keyword group stops tracking it.
func (r *Recorder) SetGroupStatus(ctx context.Context, app, id, status string) (Group, error) {
	if status != StatusActive && status != StatusArchived {
		return Group{}, &FieldError{"status", fmt.Sprintf("%q is not active or archived", status)}
	}
	r.defsMu.Lock()
	defer r.defsMu.Unlock()
	if err := r.Sync(ctx); err != nil { // earlier webhooks are classified with the old definitions
		return Group{}, err
	}
	cur := r.defs.Load()
	i := slices.IndexFunc(cur.Groups, func(g Group) bool { return g.AppID == app && g.ID == id })
	if i < 0 {
		return Group{}, ErrNotFound
	}
	groups := slices.Clone(cur.Groups)
	groups[i].Status = status
	if old := cur.trackedKeyword(&groups[i]); status == StatusActive && old != nil {
		return Group{}, &FieldError{"status", fmt.Sprintf("keyword %q is already tracked by active group %s; archive it first", groups[i].TypeValue, old.ID)}
	}
	if err := checkMatcher(groups, cur.Sources, "status"); err != nil {
		return Group{}, err
	}
	if err := r.logDefinitions(ctx, defPut(defGroup, app, id, &groups[i])); err != nil {
		return Group{}, fmt.Errorf("cannot store event group: %w", err)
	}
	return groups[i], nil
}

// AddSource validates and stores a custom source phrase (QR code, wa.me link).
func (r *Recorder) AddSource(ctx context.Context, s Source) (Source, error) {
	if err := validateSource(&s); err != nil {
		return Source{}, err
	}
	r.defsMu.Lock()
	defer r.defsMu.Unlock()
	if err := r.Sync(ctx); err != nil { // earlier webhooks are classified with the old definitions
		return Source{}, err
	}
	cur := r.defs.Load()
	for _, old := range cur.Sources {
		if old.AppID == s.AppID && strings.EqualFold(old.Phrase, s.Phrase) {
			return Source{}, &FieldError{"phrase", fmt.Sprintf("phrase %q is already the source %q", s.Phrase, old.Name)}
		}
	}
	s.Created = time.Now().Unix()
	if err := checkMatcher(cur.Groups, append(slices.Clone(cur.Sources), s), "phrase"); err != nil {
		return Source{}, err
	}
	id, counter, err := r.nextID(defSource)
	if err != nil {
		return Source{}, err
	}
	s.ID = id
	if err := r.logDefinitions(ctx, counter, defPut(defSource, s.AppID, s.ID, &s)); err != nil {
		return Source{}, fmt.Errorf("cannot store source: %w", err)
	}
	return s, nil
}

func validateSource(s *Source) error {
	s.Name, s.Phrase = strings.TrimSpace(s.Name), strings.TrimSpace(s.Phrase)
	switch {
	case s.Name == "":
		return &FieldError{"name", "is required"}
	case len(s.Name) > 255:
		return &FieldError{"name", "is longer than 255 bytes"}
	case s.Phrase == "":
		return &FieldError{"phrase", "is required: the prefilled text of the QR code or wa.me link"}
	}
	return nil
}

// ErrNotFound is returned for an unknown definition id.
var ErrNotFound = errors.New("not found")

// checkMatcher refuses definitions whose keywords or phrases break the matcher's limits,
// before anything is stored.
func checkMatcher(groups []Group, sources []Source, field string) error {
	if _, err := newDefinitions(groups, sources, nil); err != nil {
		return &FieldError{field, err.Error()}
	}
	return nil
}

// defPut is the write that stores definition v of kind under app and id.
func defPut(kind, app, id string, v any) [2][]byte {
	body, err := json.Marshal(v)
	if err != nil {
		panic(err) // definitions are plain structs: they always marshal
	}
	return [2][]byte{kv.DefKey(kind, app, id), body}
}

// logDefinitions logs writes of definitions and waits until the materializer applied
// them and reloaded the definitions: webhooks logged after classify with them.
func (r *Recorder) logDefinitions(ctx context.Context, writes ...[2][]byte) error {
	return r.logPuts(ctx, reloadDefs, writes)
}

// nextID returns the next id of kind and the write that takes it. The caller holds
// defsMu and has synced the views, so the stored counter is current.
func (r *Recorder) nextID(kind string) (string, [2][]byte, error) {
	key := kv.SeqKey(kind)
	v, ok, err := r.views.Get(key)
	if err != nil {
		return "", [2][]byte{}, err
	}
	var n int64
	if ok {
		if n, err = strconv.ParseInt(string(v), 10, 64); err != nil {
			return "", [2][]byte{}, fmt.Errorf("corrupt counter %s: %w", kind, err)
		}
	}
	id := strconv.FormatInt(n+1, 10)
	return id, [2][]byte{key, []byte(id)}, nil
}

// validateGroup checks an event group as the API receives it.
func validateGroup(g *Group) error {
	g.TypeValue = strings.TrimSpace(g.TypeValue)
	switch {
	case !slices.Contains(EventTypes, g.Type):
		return &FieldError{"type", fmt.Sprintf("%q is not one of %s", g.Type, strings.Join(EventTypes, ", "))}
	case g.AdID != "" && g.CampaignID != "":
		return &FieldError{"campaign_id", "give ad_id or campaign_id, not both"}
	case g.Type == TypeKeyword && g.TypeValue == "":
		return &FieldError{"type_value", "is required for a keyword group: the keyword to track"}
	case g.Type == TypeKeyword && g.TypeID != "":
		// Keyword events carry the group id as type_id (SPEC §4.2); a group with another
		// type_id would never match its own events.
		return &FieldError{"type_id", "is set by the sidecar for a keyword group (the group id); leave it out"}
	case len(g.TypeValue) > 255 || len(g.TypeID) > 255:
		return &FieldError{"type_value", "is longer than 255 bytes"}
	}
	return nil
}

// SetConverted makes g (type, optional id and value) the converted event of a campaign
// or an ad (SPEC §6.2), replacing the one it had: an event type, or TypeOffThread with
// the action as value. New messages and off-thread events count at once; history after
// a refresh.
func (r *Recorder) SetConverted(ctx context.Context, g Group) (Group, error) {
	switch {
	case g.CampaignID == "" && g.AdID == "":
		return Group{}, &FieldError{"campaign_id", "is required (or ad_id for one ad)"}
	case g.Type == TypeConverted:
		return Group{}, &FieldError{"type", "converted cannot define itself; pick the event that means converted"}
	}
	if err := validateConverted(&g); err != nil {
		return Group{}, err
	}
	r.defsMu.Lock()
	defer r.defsMu.Unlock()
	if err := r.Sync(ctx); err != nil { // earlier webhooks are classified with the old definitions
		return Group{}, err
	}
	cur := r.defs.Load()
	groups := slices.Clone(cur.Groups)
	var replaced []int
	for i := range groups {
		old := &groups[i]
		if old.Converted && old.Active() && old.AppID == g.AppID && old.CampaignID == g.CampaignID && old.AdID == g.AdID {
			old.Status = StatusArchived
			replaced = append(replaced, i)
		}
	}
	g.Converted, g.Status, g.Created = true, StatusActive, time.Now().Unix()
	id, counter, err := r.nextID(defGroup)
	if err != nil {
		return Group{}, err
	}
	g.ID = id
	writes := [][2][]byte{counter}
	for _, i := range replaced {
		writes = append(writes, defPut(defGroup, g.AppID, groups[i].ID, &groups[i]))
	}
	if err := r.logDefinitions(ctx, append(writes, defPut(defGroup, g.AppID, g.ID, &g))...); err != nil {
		return Group{}, fmt.Errorf("cannot store converted event: %w", err)
	}
	return g, nil
}
