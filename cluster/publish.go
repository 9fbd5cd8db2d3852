package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	json "github.com/goccy/go-json"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
)

// Headers of the atomic batch protocol (ADR-50), of the per-subject check and TTL, and
// the sidecar's own: how far after a claim its entry is, so that a member meeting the
// claim later knows which entry to wait for.
const (
	hdrBatchID     = "Nats-Batch-Id"
	hdrBatchSeq    = "Nats-Batch-Sequence"
	hdrBatchCommit = "Nats-Batch-Commit"
	hdrExpectLast  = "Nats-Expected-Last-Subject-Sequence"
	hdrTTL         = "Nats-TTL"
	hdrEntryIn     = "Ctwa-Entry-In"
)

// JetStream API error codes the lane acts on.
const (
	codeWrongLastSeq   = 10071 // a claim's subject holds a message: the key is taken
	codeSubjectInUse   = 10164 // a claim's subject is in another batch in flight
	codeBatchTooLarge  = 10199
	codeIncomplete     = 10176 // a staged message of the batch went missing
	codeTooManyBatches = 10210 // too many batches in flight on the stream (other members')
)

var (
	errClaimTaken = errors.New("a key of the batch is claimed already, or being claimed")
	errBusy       = errors.New("JetStream asked for the batch again")
)

// publish sends b as one atomic batch (or one message) and returns the stream sequence
// of its last message. The earlier messages carry no reply subject: the server reports
// any problem with them on the commit.
func (l *Log) publish(b *batch) (last uint64, err error) {
	msgs := l.messages(b)
	// Checked before anything is sent: a message over the limit would fail on every
	// attempt, and so must come back as too big (the engine splits it), not unreachable.
	for _, m := range msgs {
		if len(m.Data)+len(m.Subject) > int(l.nc.MaxPayload()) {
			return 0, kv.ErrTooBig
		}
	}
	id := nuid.Next()
	for i, m := range msgs {
		if len(msgs) > 1 {
			m.Header.Set(hdrBatchID, id)
			m.Header.Set(hdrBatchSeq, strconv.Itoa(i+1))
		}
		if i < len(msgs)-1 {
			if err := l.nc.PublishMsg(m); err != nil {
				return 0, unavailable(err)
			}
		}
	}
	commit := msgs[len(msgs)-1]
	if len(msgs) > 1 {
		commit.Header.Set(hdrBatchCommit, "1")
	}
	reply, err := l.nc.RequestMsg(commit, l.cfg.Timeout)
	if err != nil {
		return 0, unavailable(err)
	}
	return parseAck(reply.Data)
}

// messages are b's claims, then its entries.
func (l *Log) messages(b *batch) []*nats.Msg {
	msgs := make([]*nats.Msg, 0, b.size())
	for i, c := range b.claims {
		h := nats.Header{hdrExpectLast: {"0"}}
		if c.ttl > 0 {
			h.Set(hdrTTL, strconv.FormatInt(int64(c.ttl.Seconds()), 10)+"s")
		}
		if c.entry >= 0 {
			h.Set(hdrEntryIn, strconv.Itoa(len(b.claims)-i+c.entry))
		}
		msgs = append(msgs, &nats.Msg{Subject: l.claimSubject(c.key), Data: c.value, Header: h})
	}
	for _, e := range b.entries {
		msgs = append(msgs, &nats.Msg{Subject: l.entry, Data: e.data, Header: nats.Header{}})
	}
	return msgs
}

// pubAck is JetStream's answer to a publish or a batch commit.
type pubAck struct {
	Seq   uint64 `json:"seq"`
	Error *struct {
		Code        int    `json:"code"`
		ErrCode     int    `json:"err_code"`
		Description string `json:"description"`
	} `json:"error"`
}

func parseAck(data []byte) (uint64, error) {
	var a pubAck
	if err := json.Unmarshal(data, &a); err != nil {
		return 0, fmt.Errorf("JetStream answered a publish with %q: %w", data, err)
	}
	switch {
	case a.Error == nil && a.Seq > 0:
		return a.Seq, nil
	case a.Error == nil:
		return 0, fmt.Errorf("JetStream answered a publish without a sequence: %q", data)
	case a.Error.ErrCode == codeWrongLastSeq || a.Error.ErrCode == codeSubjectInUse:
		return 0, errClaimTaken
	case a.Error.ErrCode == codeIncomplete || a.Error.ErrCode == codeTooManyBatches:
		return 0, errBusy
	case a.Error.ErrCode == codeBatchTooLarge:
		return 0, fmt.Errorf("%w: %s", kv.ErrTooBig, a.Error.Description)
	case a.Error.Code == 503: // no quorum, JetStream not ready
		return 0, unavailable(errors.New(a.Error.Description))
	}
	return 0, fmt.Errorf("JetStream refused a publish: %s (error %d)", a.Error.Description, a.Error.ErrCode)
}

// getClaim reads the claim of key from the stream.
func (l *Log) getClaim(key string) (heldClaim, bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.Timeout)
	defer cancel()
	s := l.stream.Load()
	if s == nil {
		return heldClaim{}, false, unavailable(errors.New("the stream is not found yet"))
	}
	m, err := (*s).GetLastMsgForSubject(ctx, l.claimSubject(key))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return heldClaim{}, false, nil
	}
	if err != nil {
		return heldClaim{}, false, unavailable(err)
	}
	h := heldClaim{value: m.Data}
	if n, err := strconv.ParseUint(m.Header.Get(hdrEntryIn), 10, 64); err == nil {
		h.entry = m.Sequence + n
	}
	return h, true, nil
}
