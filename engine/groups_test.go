package engine

import (
	"reflect"
	"testing"

	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
)

// groupTestDefs: app A's groups (a keyword of ad 120, an app-wide button reply, an
// archived link, a converted definition) and a group of app B.
func groupTestDefs(t *testing.T) *Definitions {
	return testDefinitions(t, []Group{
		{ID: "1", AppID: "A", Type: TypeKeyword, TypeID: "1", TypeValue: "price", Status: StatusActive, AdID: "120"},
		{ID: "2", AppID: "A", Type: TypeButtonReply, TypeID: "buy", Status: StatusActive},
		{ID: "3", AppID: "A", Type: TypeLink, TypeValue: "shop.example", Status: StatusArchived, CampaignID: "camp"},
		{ID: "4", AppID: "A", Type: TypeEngagement, Status: StatusActive, Converted: true, CampaignID: "camp"},
		{ID: "5", AppID: "B", Type: TypeButtonReply, Status: StatusActive},
	}, nil, map[string]string{"120": "camp", "130": "camp"})
}

func groupIDs(gs []Group) []string {
	ids := []string{}
	for _, g := range gs {
		ids = append(ids, g.ID)
	}
	return ids
}

// The groups GET event_groups lists: the app's, never a converted definition, by the
// status, type, type id and ad filters.
func TestSelectGroups(t *testing.T) {
	d := groupTestDefs(t)
	for _, tc := range []struct {
		f    GroupFilter
		want []string
	}{
		{GroupFilter{AppID: "A"}, []string{"1", "2", "3"}},
		{GroupFilter{AppID: "B"}, []string{"5"}},
		{GroupFilter{AppID: "C"}, []string{}},
		{GroupFilter{AppID: "A", Status: StatusActive}, []string{"1", "2"}},
		{GroupFilter{AppID: "A", Status: StatusArchived}, []string{"3"}},
		{GroupFilter{AppID: "A", Type: TypeButtonReply}, []string{"2"}},
		{GroupFilter{AppID: "A", Type: TypeEngagement}, []string{}}, // only the converted definition
		{GroupFilter{AppID: "A", Type: TypeKeyword, TypeID: "1"}, []string{"1"}},
		{GroupFilter{AppID: "A", TypeID: "buy"}, []string{"2"}},
		{GroupFilter{AppID: "A", AdID: "120"}, []string{"1"}},
		{GroupFilter{AppID: "A", AdID: "130"}, []string{}},
	} {
		if got := groupIDs(d.SelectGroups(tc.f)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("SelectGroups(%+v) = %v, want %v", tc.f, got, tc.want)
		}
	}
}

// The events that count for a group: its app, type, type id and value (case aside), and
// a session in its scope; first and last are the first and last of them in time order.
func TestCountGroupEvents(t *testing.T) {
	d := groupTestDefs(t)
	rows := []GroupStats{{Group: d.Groups[0]}, {Group: d.Groups[1]}, {Group: d.Groups[2]}, {Group: d.Groups[4]}}
	for _, ev := range []kv.Event{
		{AppID: "A", Type: TypeKeyword, TypeID: "1", TypeValue: "price", Time: 10, SourceType: SourceAd, SourceID: "120"},   // 1
		{AppID: "A", Type: TypeKeyword, TypeID: "1", TypeValue: "price", Time: 20, SourceType: SourceAd, SourceID: "130"},   // another ad
		{AppID: "A", Type: TypeKeyword, TypeID: "1", TypeValue: "price", Time: 25, SourceType: SourcePost, SourceID: "120"}, // a post is no ad
		{AppID: "A", Type: TypeKeyword, TypeID: "1", TypeValue: "price", Time: 30, SourceType: SourceAd, SourceID: "120"},   // 1
		{AppID: "A", Type: TypeButtonReply, TypeID: "buy", TypeValue: "Buy now", Time: 40, SourceType: SourceOrganic},       // 2
		{AppID: "A", Type: TypeButtonReply, TypeID: "info", Time: 45, SourceType: SourceOrganic},                            // another id
		{AppID: "A", Type: TypeLink, TypeValue: "SHOP.example", Time: 50, SourceType: SourceAd, SourceID: "130"},            // 3: campaign ad, value case aside
		{AppID: "A", Type: TypeLink, TypeValue: "other.example", Time: 55, SourceType: SourceAd, SourceID: "130"},           // another value
		{AppID: "B", Type: TypeButtonReply, TypeID: "buy", Time: 60, SourceType: SourceOrganic},                             // 5
		{AppID: "A", Type: TypeButtonReply, TypeID: "buy", Time: 70, SourceType: SourceAd, SourceID: "120"},                 // 2
	} {
		d.countEvent(rows, &ev)
	}
	got := [][3]int64{}
	for _, r := range rows {
		got = append(got, [3]int64{int64(r.Events), r.First, r.Last})
	}
	if want := [][3]int64{{2, 10, 30}, {2, 40, 70}, {1, 50, 50}, {1, 60, 60}}; !reflect.DeepEqual(got, want) {
		t.Errorf("events, first, last of groups 1, 2, 3, 5 = %v, want %v", got, want)
	}
}

// The active event groups of an ad: its own, its campaign's, the app-wide ones.
func TestActiveGroupsOf(t *testing.T) {
	d := testDefinitions(t, []Group{
		{ID: "1", AppID: "A", Type: TypeKeyword, TypeID: "1", TypeValue: "price", Status: StatusActive, AdID: "120"},
		{ID: "2", AppID: "A", Type: TypeButtonReply, Status: StatusActive},
		{ID: "3", AppID: "A", Type: TypeLink, Status: StatusActive, CampaignID: "camp"},
		{ID: "4", AppID: "A", Type: TypeList, Status: StatusArchived},
		{ID: "5", AppID: "A", Type: TypeEngagement, Status: StatusActive, Converted: true},
		{ID: "6", AppID: "A", Type: TypeButton, Status: StatusActive, AdID: "130"},
		{ID: "7", AppID: "B", Type: TypeButton, Status: StatusActive},
	}, nil, nil)
	for _, tc := range []struct {
		ad   Ad
		want int
	}{
		{Ad{ID: "120", AppID: "A", CampaignID: "camp"}, 3},  // 1, 2, 3
		{Ad{ID: "120", AppID: "A"}, 2},                      // 1, 2
		{Ad{ID: "130", AppID: "A", CampaignID: "other"}, 2}, // 2, 6
		{Ad{ID: "140", AppID: "B"}, 1},                      // 7
	} {
		if got := d.ActiveGroupsOf(&tc.ad); got != tc.want {
			t.Errorf("ActiveGroupsOf(%+v) = %d, want %d", tc.ad, got, tc.want)
		}
	}
}

// Standalone sessions: those no click on an ad or a post started; a conversation event
// opens one.
func TestStandaloneCounts(t *testing.T) {
	var s Standalone
	for _, ev := range []kv.Event{
		{Type: TypeConversation, SourceType: SourceOrganic},
		{Type: TypeEngagement, SourceType: SourceOrganic},
		{Type: TypeConversation, SourceType: SourceAd, SourceID: "120"},
		{Type: TypeKeyword, SourceType: SourceAd, SourceID: "120"},
		{Type: TypeConversation, SourceType: SourcePost, SourceID: "9"},
		{Type: TypeConversation, SourceType: SourceCustom, SourceID: "1"},
		{Type: TypeConversation, SourceType: SourceCampaign, SourceID: "spring"},
		{Type: TypeButton, SourceType: SourceCampaign, SourceID: "spring"},
		{Type: "purchase", SourceType: SourceUnattributed},
	} {
		s.add(&ev)
	}
	if want := (Standalone{Sessions: 3, Events: 6}); s != want {
		t.Errorf("standalone = %+v, want %+v", s, want)
	}
}
