package engine

import (
	"errors"
	"fmt"
)

// onpremBody is an On-Premises API webhook: messages and statuses at the top level, with no
// app id (the sidecar's -app-id stands in).
type onpremBody struct {
	Contacts []waContact `json:"contacts"`
	Messages []waMessage `json:"messages"`
	Statuses []waStatus  `json:"statuses"`
}

func (b *onpremBody) reset() {
	b.Contacts = resetElems(b.Contacts)
	b.Messages = resetElems(b.Messages)
	b.Statuses = resetElems(b.Statuses)
}

// decodeOnPrem decodes an On-Premises webhook of app appID. The byte scan that chose this
// format may have seen the keys nested in some other payload: a body with no top-level
// contact, message or status is reported as unknown.
func (d *Decoder) decodeOnPrem(body []byte, appID string) (Format, error) {
	b := &d.onprem
	b.reset()
	if err := unmarshal(body, b); err != nil {
		return FormatOnPrem, fmt.Errorf("cannot decode on-premises api payload: %w", err)
	}
	if len(b.Contacts) == 0 && len(b.Messages) == 0 && len(b.Statuses) == 0 {
		return FormatUnknown, errors.New("payload has no top-level contacts, messages or statuses")
	}
	return FormatOnPrem, d.appendWA(FormatOnPrem, appID, b.Contacts, b.Messages, b.Statuses)
}
