package webhook

import "fmt"

// cloudBody is a Meta Cloud API webhook: entry[].changes[].value carries the messages and
// statuses of the phone number value.metadata.phone_number_id.
type cloudBody struct {
	Object string       `json:"object"`
	Entry  []cloudEntry `json:"entry"`
}

type cloudEntry struct {
	ID      string        `json:"id"` // the WABA
	Changes []cloudChange `json:"changes"`
}

type cloudChange struct {
	Value cloudValue `json:"value"`
}

type cloudValue struct {
	Metadata struct {
		PhoneNumberID string `json:"phone_number_id"`
	} `json:"metadata"`
	Contacts        []waContact   `json:"contacts"`
	Messages        []waMessage   `json:"messages"`
	Statuses        []waStatus    `json:"statuses"`
	Errors          []waError     `json:"errors"`
	AutomaticEvents []waAutoEvent `json:"automatic_events"`
}

func (b *cloudBody) reset() {
	b.Object = ""
	b.Entry = resetElems(b.Entry)
}

func (e *cloudEntry) reset()  { e.ID, e.Changes = "", resetElems(e.Changes) }
func (c *cloudChange) reset() { c.Value.reset() }

func (v *cloudValue) reset() {
	v.Metadata.PhoneNumberID = ""
	v.Contacts = resetElems(v.Contacts)
	v.Messages = resetElems(v.Messages)
	v.Statuses = resetElems(v.Statuses)
	v.Errors = resetElems(v.Errors)
	v.AutomaticEvents = resetElems(v.AutomaticEvents)
}

// appendCloud appends the items of every change of b.
func (d *Decoder) appendCloud(b *cloudBody) {
	for i := range b.Entry {
		first := len(d.items)
		for j := range b.Entry[i].Changes {
			n := len(d.rejects)
			d.appendCloudValue(&b.Entry[i].Changes[j].Value)
			d.prefixRejects(n, "entry[%d].changes[%d].value.", i, j)
		}
		for k := first; k < len(d.items); k++ {
			d.items[k].WABA = b.Entry[i].ID
		}
	}
}

// appendCloudValue appends the items of one change. Changes of other fields (template
// status, account updates, user preferences, …) add nothing.
func (d *Decoder) appendCloudValue(v *cloudValue) {
	items := len(v.Messages) + len(v.Statuses) + len(v.AutomaticEvents)
	appID := v.Metadata.PhoneNumberID
	switch {
	case items == 0 && len(v.Errors) > 0:
		d.ignore(FormatCloud, appID, IgnoreErrors)
		return
	case items == 0:
		return
	case appID == "":
		err := rejectf(rejectBadApp, "metadata.phone_number_id is missing")
		for range items {
			d.reject(err)
		}
		return
	}
	d.appendWA(FormatCloud, appID, v.Contacts, v.Messages, v.Statuses)
	for i := range v.AutomaticEvents {
		if err := d.appendAutoEvent(appID, &v.AutomaticEvents[i]); err != nil {
			d.reject(fmt.Errorf("automatic_events[%d].%w", i, err))
		}
	}
}
