package engine

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/ctwa-sidecar/ctwa-sidecar/webhook"
)

func hmacHex(secret, msg string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}

func TestSignatureVerification(t *testing.T) {
	body := `{"object":"whatsapp_business_account"}`
	ss := newSigners(Secrets{Meta: "meta-secret", YCloud: "yc-secret", Sinch: "sinch-secret"})
	sinchSig := func(secret string) []byte {
		m := hmac.New(sha256.New, []byte(secret))
		m.Write([]byte(body + ".nonce-1.1700000000"))
		return []byte(base64.StdEncoding.EncodeToString(m.Sum(nil)))
	}
	cases := []struct {
		name   string
		format webhook.Format
		sig    *Signature
		want   error
	}{
		{"meta ok", webhook.FormatCloud, &Signature{HubSignature256: []byte("sha256=" + hmacHex("meta-secret", body))}, nil},
		{"meta ok, upper-case hex", webhook.FormatOnPrem, &Signature{HubSignature256: []byte("sha256=" + upper(hmacHex("meta-secret", body)))}, nil},
		{"meta wrong secret", webhook.FormatCloud, &Signature{HubSignature256: []byte("sha256=" + hmacHex("other", body))}, errBadSignature},
		{"meta missing", webhook.FormatCloud, &Signature{}, errUnsigned},
		{"meta nil headers", webhook.FormatCloud, nil, errUnsigned},
		{"meta truncated", webhook.FormatCloud, &Signature{HubSignature256: []byte("sha256=abcd")}, errBadSignature},
		{"ycloud ok", webhook.FormatYCloud, &Signature{YCloud: []byte("t=1654084800, s=" + hmacHex("yc-secret", "1654084800."+body))}, nil},
		{"ycloud signed another time", webhook.FormatYCloud, &Signature{YCloud: []byte("t=1654084801,s=" + hmacHex("yc-secret", "1654084800."+body))}, errBadSignature},
		{"ycloud no s", webhook.FormatYCloud, &Signature{YCloud: []byte("t=1654084800")}, errUnsigned},
		{"sinch ok", webhook.FormatSinch, &Signature{Sinch: sinchSig("sinch-secret"), SinchNonce: []byte("nonce-1"), SinchTimestamp: []byte("1700000000")}, nil},
		{"sinch wrong secret", webhook.FormatSinch, &Signature{Sinch: sinchSig("x"), SinchNonce: []byte("nonce-1"), SinchTimestamp: []byte("1700000000")}, errBadSignature},
		{"sinch no nonce", webhook.FormatSinch, &Signature{Sinch: sinchSig("sinch-secret"), SinchTimestamp: []byte("1700000000")}, errUnsigned},
		{"meta signature does not sign ycloud", webhook.FormatYCloud, &Signature{HubSignature256: []byte("sha256=" + hmacHex("meta-secret", body))}, errUnsigned},
	}
	for _, c := range cases {
		if err := ss.verify(c.format, []byte(body), c.sig); !errors.Is(err, c.want) {
			t.Errorf("%s: verify = %v, want %v", c.name, err, c.want)
		}
	}
	none := newSigners(Secrets{})
	if err := none.verify(webhook.FormatCloud, []byte(body), nil); err != nil {
		t.Errorf("without secrets every payload is accepted, got %v", err)
	}
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'f' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}
