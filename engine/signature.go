package engine

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"hash"
	"sync"

	"github.com/ctwa-sidecar/ctwa-sidecar/webhook"
)

// Signature carries the signature headers of a webhook request, as the edge read them.
// Values alias the request and are valid only while it is handled.
type Signature struct {
	HubSignature256 []byte // X-Hub-Signature-256: sha256=<hex> (Meta)
	YCloud          []byte // YCloud-Signature: t=<unix>,s=<hex>
	Sinch           []byte // x-sinch-webhook-signature: base64
	SinchNonce      []byte // x-sinch-webhook-signature-nonce
	SinchTimestamp  []byte // x-sinch-webhook-signature-timestamp
}

// Secrets are the webhook signing secrets. A format whose secret is set is recorded only
// when its signature verifies; the webhook is forwarded either way (the upstream decides).
type Secrets struct {
	Meta   string // -app-secret: HMAC-SHA256 of the raw body (Cloud API, On-Premises)
	YCloud string // -ycloud-secret: HMAC-SHA256 of "<t>.<body>"
	Sinch  string // -sinch-secret: base64 HMAC-SHA256 of "<body>.<nonce>.<timestamp>"
}

var (
	errUnsigned     = errors.New("signature missing")
	errBadSignature = errors.New("signature does not verify")
)

// signer verifies HMAC-SHA256 signatures with one secret; it pools the HMAC states.
type signer struct{ pool sync.Pool }

func newSigner(secret string) *signer {
	if secret == "" {
		return nil
	}
	key := []byte(secret)
	s := &signer{}
	s.pool.New = func() any { return hmac.New(sha256.New, key) }
	return s
}

// sum returns the HMAC of the concatenated parts, appended to dst.
func (s *signer) sum(dst []byte, parts ...[]byte) []byte {
	h := s.pool.Get().(hash.Hash)
	defer s.pool.Put(h)
	h.Reset()
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(dst)
}

// signers holds one signer per configured secret.
type signers struct{ meta, ycloud, sinch *signer }

func newSigners(s Secrets) signers {
	return signers{meta: newSigner(s.Meta), ycloud: newSigner(s.YCloud), sinch: newSigner(s.Sinch)}
}

var dot = []byte(".")

// verify checks the signature of a body of format f when its secret is set.
func (ss *signers) verify(f webhook.Format, body []byte, sig *Signature) error {
	if sig == nil {
		sig = &Signature{}
	}
	switch {
	case (f == webhook.FormatCloud || f == webhook.FormatOnPrem) && ss.meta != nil:
		return verifyHex(ss.meta, bytes.TrimPrefix(sig.HubSignature256, []byte("sha256=")), len(sig.HubSignature256), body)
	case f == webhook.FormatYCloud && ss.ycloud != nil:
		t, s := ycloudParts(sig.YCloud)
		return verifyHex(ss.ycloud, s, len(t), t, dot, body)
	case f == webhook.FormatSinch && ss.sinch != nil:
		return verifySinch(ss.sinch, sig, body)
	}
	return nil
}

// verifyHex compares a hex signature with the HMAC of parts in constant time; present
// is the length of the header, 0 when it was absent.
func verifyHex(s *signer, got []byte, present int, parts ...[]byte) error {
	if present == 0 || len(got) == 0 {
		return errUnsigned
	}
	var buf [sha256.Size]byte
	want := s.sum(buf[:0], parts...)
	var hexWant [2 * sha256.Size]byte
	hex.Encode(hexWant[:], want)
	if !hmac.Equal(bytes.ToLower(got), hexWant[:]) {
		return errBadSignature
	}
	return nil
}

// ycloudParts splits "t=1654084800,s=abc…" into its timestamp and signature.
func ycloudParts(h []byte) (t, s []byte) {
	for _, part := range bytes.Split(h, []byte(",")) {
		part = bytes.TrimSpace(part)
		switch {
		case bytes.HasPrefix(part, []byte("t=")):
			t = part[2:]
		case bytes.HasPrefix(part, []byte("s=")):
			s = part[2:]
		}
	}
	return t, s
}

func verifySinch(s *signer, sig *Signature, body []byte) error {
	if len(sig.Sinch) == 0 || len(sig.SinchNonce) == 0 || len(sig.SinchTimestamp) == 0 {
		return errUnsigned
	}
	var buf [sha256.Size]byte
	want := s.sum(buf[:0], body, dot, sig.SinchNonce, dot, sig.SinchTimestamp)
	var b64 [44]byte
	base64.StdEncoding.Encode(b64[:], want)
	if !hmac.Equal(bytes.TrimSpace(sig.Sinch), b64[:]) {
		return errBadSignature
	}
	return nil
}
