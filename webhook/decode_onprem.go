package webhook

// onpremBody is an On-Premises API webhook: messages and statuses at the top level, with no
// app id (the sidecar's -app-id stands in). A webhook of errors alone reports a failure of
// the client (e.g. a media download).
type onpremBody struct {
	Contacts []waContact `json:"contacts"`
	Messages []waMessage `json:"messages"`
	Statuses []waStatus  `json:"statuses"`
	Errors   []waError   `json:"errors"`
}

func (b *onpremBody) reset() {
	b.Contacts = resetElems(b.Contacts)
	b.Messages = resetElems(b.Messages)
	b.Statuses = resetElems(b.Statuses)
	b.Errors = resetElems(b.Errors)
}

func (d *Decoder) appendOnPrem(b *onpremBody, appID string) {
	if len(b.Messages) == 0 && len(b.Statuses) == 0 && len(b.Errors) > 0 {
		d.ignore(FormatOnPrem, appID, IgnoreErrors)
		return
	}
	d.appendWA(FormatOnPrem, appID, b.Contacts, b.Messages, b.Statuses)
}
