package engine

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/ctwa-sidecar/ctwa-sidecar/internal/fixtures"
	"github.com/ctwa-sidecar/ctwa-sidecar/webhook"
)

const (
	fuzzMetaSecret   = "meta-secret"
	fuzzYCloudSecret = "ycloud-secret"
	fuzzSinchSecret  = "sinch-secret"
)

func fuzzMAC(secret string, parts ...string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	for _, p := range parts {
		m.Write([]byte(p))
	}
	return m.Sum(nil)
}

// FuzzVerifySignature feeds the signature checks arbitrary bodies and header values,
// seeded with every webhook fixture under testdata/ and its genuine signatures. For each
// format the verdict must match a plain reference: Meta verifies when the header, less an
// optional "sha256=", is the hex HMAC of the body (either case); YCloud when the last s=
// of "t=…,s=…" is the hex HMAC of "<t>.<body>"; Sinch when the header is the base64 HMAC
// of "<body>.<nonce>.<timestamp>". The genuine signatures of any body always verify, a
// missing one is errUnsigned, and nothing panics.
//
//	go test -run='^$' -fuzz='^FuzzVerifySignature$' -fuzztime=10m ./engine
func FuzzVerifySignature(f *testing.F) {
	for _, fx := range fixtures.Webhooks(f) {
		b := string(fx.Body)
		meta := "sha256=" + hex.EncodeToString(fuzzMAC(fuzzMetaSecret, b))
		yc := "t=1654084800,s=" + hex.EncodeToString(fuzzMAC(fuzzYCloudSecret, "1654084800", ".", b))
		sinch := base64.StdEncoding.EncodeToString(fuzzMAC(fuzzSinchSecret, b, ".", "nonce-1", ".", "1700000000"))
		f.Add(sigInput(fx.Body, meta, yc, sinch, "nonce-1", "1700000000"))
		f.Add(sigInput(fx.Body, strings.ToUpper(meta[7:]), " s="+yc[15:]+" , t=1654084800", " "+sinch+" ", "nonce-1", "1700000000"))
		f.Add(sigInput(fx.Body, meta[:len(meta)-1], "t=,s=", "", "", ""))
	}
	f.Add(sigInput(nil, "sha256=", "t=1,s=1,s=2", "====", "\x00", "\xff"))
	ss := newSigners(Secrets{Meta: fuzzMetaSecret, YCloud: fuzzYCloudSecret, Sinch: fuzzSinchSecret})
	none := newSigners(Secrets{})
	f.Fuzz(func(t *testing.T, input []byte) {
		body, hub, ycloud, sinch, nonce, ts := splitSigInput(input)
		sig := &Signature{HubSignature256: []byte(hub), YCloud: []byte(ycloud), Sinch: []byte(sinch),
			SinchNonce: []byte(nonce), SinchTimestamp: []byte(ts)}
		b := string(body)

		metaOK := false
		if h, err := hex.DecodeString(strings.TrimPrefix(hub, "sha256=")); err == nil {
			metaOK = hmac.Equal(h, fuzzMAC(fuzzMetaSecret, b))
		}
		for _, format := range []webhook.Format{webhook.FormatCloud, webhook.FormatOnPrem} {
			checkVerdict(t, "meta", ss.verify(format, body, sig), metaOK, hub == "" || hub == "sha256=")
		}

		var yt, ys string
		for _, part := range strings.Split(ycloud, ",") {
			part = string(bytes.TrimSpace([]byte(part)))
			if v, ok := strings.CutPrefix(part, "t="); ok {
				yt = v
			} else if v, ok := strings.CutPrefix(part, "s="); ok {
				ys = v
			}
		}
		ycOK := false
		if h, err := hex.DecodeString(ys); err == nil && yt != "" {
			ycOK = hmac.Equal(h, fuzzMAC(fuzzYCloudSecret, yt, ".", b))
		}
		checkVerdict(t, "ycloud", ss.verify(webhook.FormatYCloud, body, sig), ycOK, yt == "" || ys == "")

		sinchOK := false
		if nonce != "" && ts != "" {
			sinchOK = string(bytes.TrimSpace([]byte(sinch))) == base64.StdEncoding.EncodeToString(fuzzMAC(fuzzSinchSecret, b, ".", nonce, ".", ts))
		}
		checkVerdict(t, "sinch", ss.verify(webhook.FormatSinch, body, sig), sinchOK, sinch == "" || nonce == "" || ts == "")

		// The genuine signatures of this body verify; without secrets nothing is checked.
		genuine := &Signature{
			HubSignature256: []byte("sha256=" + hex.EncodeToString(fuzzMAC(fuzzMetaSecret, b))),
			YCloud:          []byte("t=" + ts + "9,s=" + hex.EncodeToString(fuzzMAC(fuzzYCloudSecret, ts+"9", ".", b))),
			Sinch:           []byte(base64.StdEncoding.EncodeToString(fuzzMAC(fuzzSinchSecret, b, ".", nonce+"n", ".", ts+"9"))),
			SinchNonce:      []byte(nonce + "n"), SinchTimestamp: []byte(ts + "9"),
		}
		for _, format := range []webhook.Format{webhook.FormatCloud, webhook.FormatOnPrem, webhook.FormatYCloud, webhook.FormatSinch, webhook.FormatUnknown} {
			if err := ss.verify(format, body, genuine); err != nil && !strings.ContainsAny(ts, ",") {
				t.Fatalf("%s: the genuine signature does not verify: %v", format, err)
			}
			if err := none.verify(format, body, sig); err != nil {
				t.Fatalf("%s without a secret: %v", format, err)
			}
			if err := ss.verify(format, body, nil); (err == nil) != (format == webhook.FormatUnknown) {
				t.Fatalf("%s without signature headers: %v", format, err)
			}
		}
	})
}

// sigInput is one fuzz input: the five signature header values, one a line, then an
// empty line and the body, as on the wire.
func sigInput(body []byte, hub, ycloud, sinch, nonce, ts string) []byte {
	return append([]byte(strings.Join([]string{hub, ycloud, sinch, nonce, ts, "", ""}, "\n")), body...)
}

func splitSigInput(in []byte) (body []byte, hub, ycloud, sinch, nonce, ts string) {
	head, body, _ := bytes.Cut(in, []byte("\n\n"))
	h := strings.SplitN(string(head), "\n", 5)
	h = append(h, make([]string, 5-len(h))...)
	return body, h[0], h[1], h[2], h[3], h[4]
}

// checkVerdict fails t when err disagrees with the reference verdict ok, or a missing
// signature is not reported as errUnsigned.
func checkVerdict(t *testing.T, name string, err error, ok, missing bool) {
	t.Helper()
	switch {
	case ok && err != nil:
		t.Fatalf("%s: a valid signature is refused: %v", name, err)
	case !ok && err == nil:
		t.Fatalf("%s: an invalid signature verifies", name)
	case missing && err != nil && !errors.Is(err, errUnsigned):
		t.Fatalf("%s: a missing signature gives %v, want errUnsigned", name, err)
	}
}
