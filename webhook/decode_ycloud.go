package webhook

import "fmt"

// ycloudBody is a YCloud webhook event. Two event types carry items: an inbound message
// (whatsappInboundMessage, content as in the Cloud API) and the status update of a message
// the business sent (whatsappMessage). Other events add nothing.
type ycloudBody struct {
	Type     string         `json:"type"`
	Inbound  ycloudInbound  `json:"whatsappInboundMessage"`
	Outbound ycloudOutbound `json:"whatsappMessage"`
}

type ycloudInbound struct {
	ID         string `json:"id"`     // YCloud's id
	Wamid      string `json:"wamid"`  // WhatsApp's id, as the Cloud API reports it
	WABA       string `json:"wabaId"` // the WhatsApp Business Account
	From       string `json:"from"`
	FromUserID string `json:"fromUserId"` // BSUID (usernames, 2026)
	To         string `json:"to"`
	SendTime   string `json:"sendTime"`
	waContent
}

type ycloudOutbound struct {
	ID          string `json:"id"`
	Wamid       string `json:"wamid"`
	From        string `json:"from"` // the business phone
	To          string `json:"to"`   // the lead
	Status      string `json:"status"`
	BizOpaque   string `json:"bizOpaqueCallbackData"`
	SendTime    string `json:"sendTime"`
	DeliverTime string `json:"deliverTime"`
	ReadTime    string `json:"readTime"`
	UpdateTime  string `json:"updateTime"`
}

func (d *Decoder) appendYCloud(b *ycloudBody) {
	var (
		it  Item
		err error
	)
	switch b.Type {
	case "whatsapp.inbound_message.received":
		if it, err = b.Inbound.item(); err != nil {
			err = fmt.Errorf("whatsappInboundMessage.%w", err)
		}
	case "whatsapp.message.updated":
		if it, err = b.Outbound.item(); err != nil {
			err = fmt.Errorf("whatsappMessage.%w", err)
		}
	default: // template reviews, business echoes, account updates, …
		d.ignore(FormatYCloud, "", IgnoreEvent)
		return
	}
	if err != nil {
		d.reject(err)
		return
	}
	d.items = append(d.items, it)
}

func (m *ycloudInbound) item() (Item, error) {
	id := firstSet(m.Wamid, m.ID)
	if id == "" {
		return Item{}, rejectf(rejectMissingID, "wamid is missing")
	}
	appID, ok := normalizePhone(m.To)
	if !ok {
		return Item{}, rejectf(rejectBadApp, "to %q is not a phone number", m.To)
	}
	lead, isBSUID, err := resolveLead("from", m.From, m.FromUserID)
	if err != nil {
		return Item{}, err
	}
	t, err := parseRFC3339("sendTime", m.SendTime)
	if err != nil {
		return Item{}, err
	}
	if m.Type == "" {
		return Item{}, rejectf(rejectMissingType, "type is missing")
	}
	it := Item{
		Kind: KindMessage, Format: FormatYCloud, AppID: appID, WABA: m.WABA, ID: id, Time: t,
		Lead: lead, LeadIsBSUID: isBSUID,
	}
	return it, m.fillItem(&it)
}

func (m *ycloudOutbound) item() (Item, error) {
	id := firstSet(m.Wamid, m.ID)
	if id == "" {
		return Item{}, rejectf(rejectMissingID, "wamid is missing")
	}
	if m.Status == "" {
		return Item{}, rejectf(rejectMissingStatus, "status is missing")
	}
	appID, ok := normalizePhone(m.From)
	if !ok {
		return Item{}, rejectf(rejectBadApp, "from %q is not a phone number", m.From)
	}
	lead, isBSUID, err := resolveLead("to", m.To, "")
	if err != nil {
		return Item{}, err
	}
	field, value := m.statusTime()
	t, err := parseRFC3339(field, value)
	if err != nil {
		return Item{}, err
	}
	return Item{
		Kind: KindStatus, Format: FormatYCloud, AppID: appID, ID: id, Time: t,
		Lead: lead, LeadIsBSUID: isBSUID, Status: m.Status, BizOpaque: m.BizOpaque,
	}, nil
}

// statusTime returns the time at which the message reached its status: YCloud keeps one
// field per status and updateTime for the others (failed).
func (m *ycloudOutbound) statusTime() (field, value string) {
	switch {
	case m.Status == "sent" && m.SendTime != "":
		return "sendTime", m.SendTime
	case m.Status == "delivered" && m.DeliverTime != "":
		return "deliverTime", m.DeliverTime
	case m.Status == "read" && m.ReadTime != "":
		return "readTime", m.ReadTime
	}
	return "updateTime", m.UpdateTime
}

func firstSet(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
