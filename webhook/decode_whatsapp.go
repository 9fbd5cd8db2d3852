package webhook

import "fmt"

// The message and status objects of the WhatsApp Business API, shared by the Cloud API, the
// On-Premises API and (for the message content) YCloud. Only the fields the engine uses are
// declared: the decoder skips the rest (media ids, pricing, profile names, …).

// waContent is the type-dependent content of a message.
type waContent struct {
	Type        string        `json:"type"`
	Text        waText        `json:"text"`
	Image       waMedia       `json:"image"`
	Video       waMedia       `json:"video"`
	Document    waMedia       `json:"document"`
	Button      waButton      `json:"button"`
	Interactive waInteractive `json:"interactive"`
	Context     waContext     `json:"context"`
	Referral    waReferral    `json:"referral"`
	System      waSystem      `json:"system"`
	Edit        waEdit        `json:"edit"`
	Revoke      waRevoke      `json:"revoke"`
}

type waText struct {
	Body string `json:"body"`
}

type waMedia struct {
	Caption string `json:"caption"`
}

// waButton is the reply to a quick-reply button of a template.
type waButton struct {
	Payload string `json:"payload"`
	Text    string `json:"text"`
}

type waInteractive struct {
	Type        string  `json:"type"`
	ButtonReply waReply `json:"button_reply"`
	ListReply   waReply `json:"list_reply"`
}

type waReply struct {
	ID    string `json:"id"`
	Title string `json:"title"`
}

type waContext struct {
	ID string `json:"id"`
}

// waSystem is the content of a system message: a notice about the lead, not the lead's words.
type waSystem struct {
	Type    string `json:"type"`
	WaID    string `json:"wa_id"`     // Cloud API: the lead's new number
	NewWaID string `json:"new_wa_id"` // On-Premises API: the lead's new number
}

// waEdit is the content of an edit: the edited message's id and its new content.
type waEdit struct {
	OriginalMessageID string `json:"original_message_id"`
	Message           struct {
		Type     string  `json:"type"`
		Text     waText  `json:"text"`
		Image    waMedia `json:"image"`
		Video    waMedia `json:"video"`
		Document waMedia `json:"document"`
	} `json:"message"`
}

// text returns the new text of the edited message, or its new caption.
func (e *waEdit) text() string {
	switch m := &e.Message; m.Type {
	case "text":
		return m.Text.Body
	case "image":
		return m.Image.Caption
	case "video":
		return m.Video.Caption
	case "document":
		return m.Document.Caption
	}
	return ""
}

type waRevoke struct {
	OriginalMessageID string `json:"original_message_id"`
}

// waError is an element of an errors[] notification; only its presence matters.
type waError struct {
	Code int `json:"code"`
}

func (e *waError) reset() { *e = waError{} }

// waReferral is the CTWA referral. Its fields are those of Referral, in the same order, so it
// converts to one; image_url, video_url and thumbnail_url are not kept.
type waReferral struct {
	SourceType string `json:"source_type"`
	SourceID   string `json:"source_id"`
	SourceURL  string `json:"source_url"`
	Headline   string `json:"headline"`
	Body       string `json:"body"`
	MediaType  string `json:"media_type"`
	CtwaClid   string `json:"ctwa_clid"`
}

// fill sets the content fields of it.
func (c *waContent) fill(it *Item) {
	it.Type = c.Type
	switch c.Type {
	case "text":
		it.Text = c.Text.Body
	case "image":
		it.Text = c.Image.Caption
	case "video":
		it.Text = c.Video.Caption
	case "document":
		it.Text = c.Document.Caption
	case "button":
		it.ButtonPayload = c.Button.Payload
		it.Text = c.Button.Text
	case "interactive":
		c.Interactive.fill(it)
	}
	it.ContextID = c.Context.ID
	it.Referral = Referral(c.Referral)
}

func (in *waInteractive) fill(it *Item) {
	var r *waReply
	switch in.Type {
	case "button_reply":
		r = &in.ButtonReply
	case "list_reply":
		r = &in.ListReply
	default: // nfm_reply (flows) and others carry no reply id
		return
	}
	it.ReplyKind = in.Type
	it.ReplyID = r.ID
	it.ReplyTitle = r.Title
	it.Text = r.Title
}

// waMessage is a message of messages[] (Cloud and On-Premises APIs).
type waMessage struct {
	ID         string `json:"id"`
	From       string `json:"from"`
	FromUserID string `json:"from_user_id"` // BSUID (usernames, 2026)
	Timestamp  string `json:"timestamp"`
	waContent
}

func (m *waMessage) reset() { *m = waMessage{} }

// waContact is an element of contacts[], which may carry the BSUID of a lead without a phone.
type waContact struct {
	UserID string `json:"user_id"`
}

func (c *waContact) reset() { *c = waContact{} }

// waStatus is a status of statuses[]: what happened to a message the business sent.
type waStatus struct {
	ID              string `json:"id"`
	Status          string `json:"status"`
	Timestamp       string `json:"timestamp"`
	RecipientID     string `json:"recipient_id"`
	RecipientType   string `json:"recipient_type"`    // "group" for a message sent to a group (Groups API)
	RecipientUserID string `json:"recipient_user_id"` // BSUID (usernames, 2026)
	BizOpaque       string `json:"biz_opaque_callback_data"`
}

func (s *waStatus) reset() { *s = waStatus{} }

// appendWA appends the items of one messages/statuses batch of app appID; an item that
// fails validation is rejected alone.
func (d *Decoder) appendWA(f Format, appID string, contacts []waContact, msgs []waMessage, sts []waStatus) {
	for i := range msgs {
		if err := d.appendWAMessage(f, appID, &msgs[i], contactUserID(contacts, i)); err != nil {
			d.reject(fmt.Errorf("messages[%d].%w", i, err))
		}
	}
	for i := range sts {
		if err := d.appendWAStatus(f, appID, &sts[i]); err != nil {
			d.reject(fmt.Errorf("statuses[%d].%w", i, err))
		}
	}
}

// contactUserID returns the BSUID of the contact of messages[i]: contacts[] lists one contact
// per message, or one for all of them.
func contactUserID(contacts []waContact, i int) string {
	switch {
	case i < len(contacts):
		return contacts[i].UserID
	case len(contacts) == 1:
		return contacts[0].UserID
	}
	return ""
}

func (d *Decoder) appendWAMessage(f Format, appID string, m *waMessage, contactUserID string) error {
	if m.ID == "" {
		return rejectf(rejectMissingID, "id is missing")
	}
	userID := m.FromUserID
	if userID == "" {
		userID = contactUserID
	}
	lead, isBSUID, err := resolveLead("from", m.From, userID)
	if err != nil {
		return err
	}
	t, err := parseUnix("timestamp", m.Timestamp)
	if err != nil {
		return err
	}
	if m.Type == "" {
		return rejectf(rejectMissingType, "type is missing")
	}
	it := Item{Kind: KindMessage, Format: f, AppID: appID, ID: m.ID, Time: t, Lead: lead, LeadIsBSUID: isBSUID}
	if err := m.waContent.fillItem(&it); err != nil {
		return err
	}
	d.items = append(d.items, it)
	return nil
}

// fillItem sets the content of it, or tells that the message is not the lead talking: a
// system notice, an edit or a revoke of an earlier message (SPEC §3.4).
func (c *waContent) fillItem(it *Item) error {
	switch c.Type {
	case "system":
		it.Kind, it.Reason = KindIgnored, IgnoreSystem
		if c.System.Type != "user_changed_number" {
			return nil
		}
		newLead, ok := normalizePhone(firstSet(c.System.WaID, c.System.NewWaID))
		if !ok {
			return rejectf(rejectBadLead, "system.wa_id %q is not a phone number", firstSet(c.System.WaID, c.System.NewWaID))
		}
		if !it.LeadIsBSUID && newLead != it.Lead {
			it.Kind, it.Reason, it.NewLead = KindNumberChange, IgnoreNumberChange, newLead
		}
	case "edit":
		if c.Edit.OriginalMessageID == "" {
			return rejectf(rejectMissingID, "edit.original_message_id is missing")
		}
		it.Kind, it.Reason, it.EditOf, it.Text = KindEdit, IgnoreEdit, c.Edit.OriginalMessageID, c.Edit.text()
	case "revoke":
		it.Kind, it.Reason = KindIgnored, IgnoreRevoke
	default:
		c.fill(it)
	}
	return nil
}

func (d *Decoder) appendWAStatus(f Format, appID string, s *waStatus) error {
	if s.ID == "" {
		return rejectf(rejectMissingID, "id is missing")
	}
	if s.Status == "" {
		return rejectf(rejectMissingStatus, "status is missing")
	}
	if s.RecipientType == "group" {
		// The recipient is a group id, not a lead: nothing of a lead's to record.
		d.ignore(f, appID, IgnoreGroupStatus)
		return nil
	}
	lead, isBSUID, err := resolveLead("recipient_id", s.RecipientID, s.RecipientUserID)
	if err != nil {
		return err
	}
	t, err := parseUnix("timestamp", s.Timestamp)
	if err != nil {
		return err
	}
	d.items = append(d.items, Item{
		Kind: KindStatus, Format: f, AppID: appID, ID: s.ID, Time: t,
		Lead: lead, LeadIsBSUID: isBSUID, Status: s.Status, BizOpaque: s.BizOpaque,
	})
	return nil
}
