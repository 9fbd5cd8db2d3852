package kv

import (
	"encoding/hex"
	"testing"
)

// oldPurchaseRow is an off-thread event row as AppendEvent wrote it before events kept
// their revenue typed: the revenue is only in TypeValue ("49.9 EUR").
const oldPurchaseRow = "01046f6666310f313036353430333532323432393232087075726368617365076f726465722d37" +
	"0834392e3920455552deb2be9b0d0c343931373031323334353637000573657373310261641231323032313030303030303030303030303100"

var purchase = Event{ID: "off1", AppID: "106540352242922", Type: "purchase", TypeID: "order-7", TypeValue: "49.9 EUR",
	Time: 1773653167, Lead: "491701234567", ConversationID: "sess1", SourceType: "ad", SourceID: "120210000000000001"}

// A row written before the revenue fields decodes as it did, without them.
func TestDecodeEventWrittenBeforeTypedRevenue(t *testing.T) {
	b, err := hex.DecodeString(oldPurchaseRow)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeEvent(b)
	if err != nil || got != purchase {
		t.Fatalf("DecodeEvent(old row) = %+v, %v\nwant %+v", got, err, purchase)
	}
	// An event without revenue is still encoded byte for byte as before.
	if enc := hex.EncodeToString(AppendEvent(nil, &purchase)); enc != oldPurchaseRow {
		t.Errorf("AppendEvent without currency = %s\nwant the old encoding %s", enc, oldPurchaseRow)
	}
}

func TestEventRevenueRoundTrip(t *testing.T) {
	for _, ev := range []Event{
		func() Event { e := purchase; e.Amount, e.Currency = 49.9, "EUR"; return e }(),
		func() Event { e := purchase; e.TypeValue, e.Amount, e.Currency = "0 USD", 0, "USD"; return e }(), // a signup
		{ID: "e1", AppID: "a", Type: "conversation", Time: 5, Lead: "4917", MessageID: "wamid.1"},
	} {
		b := AppendEvent(nil, &ev)
		got, err := DecodeEvent(b)
		if err != nil || got != ev {
			t.Errorf("round trip of %+v = %+v, %v", ev, got, err)
		}
		// A record cut inside the revenue fields is corrupt, not an event without revenue.
		if ev.Currency != "" {
			if _, err := DecodeEvent(b[:len(b)-3]); err == nil {
				t.Errorf("%+v cut short decodes without error", ev)
			}
		}
	}
}
