package webhook

import (
	"strings"
	"unsafe"
)

// sinchBody is a Sinch Conversation API callback. Only inbound WhatsApp contact messages are
// decoded into lead messages; delivery reports and the other callbacks (events, contact and
// conversation notifications, …) are recognized and ignored.
type sinchBody struct {
	AppID                 string       `json:"app_id"`
	EventTime             string       `json:"event_time"`
	AcceptedTime          string       `json:"accepted_time"`
	Message               sinchMessage `json:"message"`
	MessageDeliveryReport struct {
		MessageID string `json:"message_id"`
	} `json:"message_delivery_report"`
	EventDeliveryReport struct {
		EventID string `json:"event_id"`
	} `json:"event_delivery_report"`
}

// isSinch reports whether b is a Sinch callback: a contact message, or any callback of an
// app (every Sinch callback names its app_id and when Sinch accepted it).
func (b *sinchBody) isSinch() bool {
	return b.Message.ChannelIdentity != (sinchChannelIdentity{}) ||
		b.AppID != "" && (b.AcceptedTime != "" || b.EventTime != "")
}

type sinchMessage struct {
	ID              string               `json:"id"`
	Direction       string               `json:"direction"`
	ChannelIdentity sinchChannelIdentity `json:"channel_identity"`
	ContactMessage  sinchContactMessage  `json:"contact_message"`
	// Metadata is a JSON document in a string; for a Click-to-WhatsApp message it holds
	// {"referral":{…}} with the fields of the Cloud API referral.
	Metadata string `json:"metadata"`
}

type sinchChannelIdentity struct {
	Channel  string `json:"channel"`
	Identity string `json:"identity"`
}

// sinchContactMessage holds one of its kinds; which one is told by the fields that are set.
type sinchContactMessage struct {
	TextMessage struct {
		Text string `json:"text"`
	} `json:"text_message"`
	MediaMessage struct {
		URL string `json:"url"`
	} `json:"media_message"`
	MediaCardMessage struct {
		URL     string `json:"url"`
		Caption string `json:"caption"`
	} `json:"media_card_message"`
	ChoiceResponseMessage struct {
		MessageID    string `json:"message_id"`
		PostbackData string `json:"postback_data"`
	} `json:"choice_response_message"`
	LocationMessage struct {
		Title       string `json:"title"`
		Coordinates struct {
			Latitude  float64 `json:"latitude"`
			Longitude float64 `json:"longitude"`
		} `json:"coordinates"`
	} `json:"location_message"`
	ReplyTo struct {
		MessageID string `json:"message_id"`
	} `json:"reply_to"`
}

type sinchMetadata struct {
	Referral waReferral `json:"referral"`
}

func (d *Decoder) appendSinch(b *sinchBody) {
	m := &b.Message
	// Only a lead's WhatsApp messages are lead messages; echoes of the app's own messages
	// (TO_CONTACT), other channels and other callbacks are recognized, not recorded.
	switch {
	case b.MessageDeliveryReport.MessageID != "" || b.EventDeliveryReport.EventID != "":
		d.ignore(FormatSinch, b.AppID, IgnoreDeliveryReport)
	case m.ChannelIdentity == (sinchChannelIdentity{}):
		d.ignore(FormatSinch, b.AppID, IgnoreEvent)
	case m.Direction != "TO_APP":
		d.ignore(FormatSinch, b.AppID, IgnoreOutbound)
	case m.ChannelIdentity.Channel != "WHATSAPP":
		d.ignore(FormatSinch, b.AppID, IgnoreOtherChannel)
	default:
		if err := d.appendSinchMessage(b); err != nil {
			d.reject(err)
		}
	}
}

func (d *Decoder) appendSinchMessage(b *sinchBody) error {
	it, err := b.item()
	if err != nil {
		return err
	}
	if it.Referral, err = d.sinchReferral(b.Message.Metadata); err != nil {
		return err
	}
	b.Message.ContactMessage.fill(&it)
	d.items = append(d.items, it)
	return nil
}

// item returns the message item of b without its content.
func (b *sinchBody) item() (Item, error) {
	m := &b.Message
	if b.AppID == "" {
		return Item{}, rejectf(rejectBadApp, "app_id is missing")
	}
	if m.ID == "" {
		return Item{}, rejectf(rejectMissingID, "message.id is missing")
	}
	lead, isBSUID, err := resolveLead("message.channel_identity.identity", m.ChannelIdentity.Identity, "")
	if err != nil {
		return Item{}, err
	}
	// event_time is when the channel reported the message, accepted_time when Sinch took it.
	field, value := "event_time", b.EventTime
	if value == "" {
		field, value = "accepted_time", b.AcceptedTime
	}
	t, err := parseRFC3339(field, value)
	if err != nil {
		return Item{}, err
	}
	return Item{
		Kind: KindMessage, Format: FormatSinch, AppID: b.AppID, ID: m.ID, Time: t,
		Lead: lead, LeadIsBSUID: isBSUID,
	}, nil
}

// sinchReferral decodes the referral of the JSON document in message.metadata. The JSON
// decoder has unescaped the string already, so it is decoded in place, its strings
// aliasing it. Metadata that is not a JSON object is not a referral and is ignored.
func (d *Decoder) sinchReferral(metadata string) (Referral, error) {
	if !strings.HasPrefix(strings.TrimSpace(metadata), "{") {
		return Referral{}, nil
	}
	d.sinchMeta = sinchMetadata{}
	if err := unmarshal(unsafe.Slice(unsafe.StringData(metadata), len(metadata)), &d.sinchMeta); err != nil {
		return Referral{}, rejectf(rejectBadMetadata, "message.metadata is not valid JSON: %w", err)
	}
	return Referral(d.sinchMeta.Referral), nil
}

// fill sets the content fields of it. Sinch does not tell images from videos or documents
// ("media"), nor reply buttons from list rows: a choice is reported as a button_reply whose
// id is the postback_data, with no title.
func (c *sinchContactMessage) fill(it *Item) {
	it.ContextID = c.ReplyTo.MessageID
	switch {
	case c.TextMessage.Text != "":
		it.Type, it.Text = "text", c.TextMessage.Text
	case c.MediaCardMessage.URL != "" || c.MediaCardMessage.Caption != "":
		it.Type, it.Text = "media", c.MediaCardMessage.Caption
	case c.MediaMessage.URL != "":
		it.Type = "media"
	case c.ChoiceResponseMessage.PostbackData != "":
		it.Type, it.ReplyKind, it.ReplyID = "interactive", "button_reply", c.ChoiceResponseMessage.PostbackData
		if it.ContextID == "" {
			it.ContextID = c.ChoiceResponseMessage.MessageID
		}
	case c.LocationMessage.Title != "" || c.LocationMessage.Coordinates.Latitude != 0 ||
		c.LocationMessage.Coordinates.Longitude != 0:
		it.Type = "location"
	default:
		it.Type = "unsupported"
	}
}
