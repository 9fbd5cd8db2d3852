package engine

import (
	"errors"
	"fmt"
)

// cloudBody is a Meta Cloud API webhook: entry[].changes[].value carries the messages and
// statuses of the phone number value.metadata.phone_number_id.
type cloudBody struct {
	Object string       `json:"object"`
	Entry  []cloudEntry `json:"entry"`
}

type cloudEntry struct {
	Changes []cloudChange `json:"changes"`
}

type cloudChange struct {
	Value cloudValue `json:"value"`
}

type cloudValue struct {
	Metadata struct {
		PhoneNumberID string `json:"phone_number_id"`
	} `json:"metadata"`
	Contacts []waContact `json:"contacts"`
	Messages []waMessage `json:"messages"`
	Statuses []waStatus  `json:"statuses"`
}

func (b *cloudBody) reset() {
	b.Object = ""
	b.Entry = resetElems(b.Entry)
}

func (e *cloudEntry) reset()  { e.Changes = resetElems(e.Changes) }
func (c *cloudChange) reset() { c.Value.reset() }

func (v *cloudValue) reset() {
	v.Metadata.PhoneNumberID = ""
	v.Contacts = resetElems(v.Contacts)
	v.Messages = resetElems(v.Messages)
	v.Statuses = resetElems(v.Statuses)
}

// appendCloud appends the items of every change of b.
func (d *Decoder) appendCloud(b *cloudBody) error {
	for i := range b.Entry {
		for j := range b.Entry[i].Changes {
			if err := d.appendCloudValue(&b.Entry[i].Changes[j].Value); err != nil {
				return fmt.Errorf("entry[%d].changes[%d].value.%w", i, j, err)
			}
		}
	}
	return nil
}

// appendCloudValue appends the items of one change. Changes of other fields (template
// status, account updates, …) have no messages or statuses and add nothing.
func (d *Decoder) appendCloudValue(v *cloudValue) error {
	if len(v.Messages) == 0 && len(v.Statuses) == 0 {
		return nil
	}
	appID := v.Metadata.PhoneNumberID
	if appID == "" {
		return errors.New("metadata.phone_number_id is missing")
	}
	return d.appendWA(FormatCloud, appID, v.Contacts, v.Messages, v.Statuses)
}
