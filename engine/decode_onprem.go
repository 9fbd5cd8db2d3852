package engine

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
