package webhook

import (
	"bytes"
	stdjson "encoding/json"
	"testing"

	"github.com/ctwa-sidecar/ctwa-sidecar/internal/fixtures"
)

// benchmarkDecode decodes the fixture name with a warmed-up Decoder. The fixtures are
// indented for reading; webhooks arrive compact, so the body is compacted first.
func benchmarkDecode(b *testing.B, name string) {
	var body bytes.Buffer
	if err := stdjson.Compact(&body, fixtures.Body(b, name)); err != nil {
		b.Fatal(err)
	}
	var d Decoder
	b.ReportAllocs()
	b.SetBytes(int64(body.Len()))
	for b.Loop() {
		if _, _, err := d.Decode(body.Bytes(), testAppID); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeCloudText(b *testing.B)        { benchmarkDecode(b, "cloud/text") }
func BenchmarkDecodeCloudCTWAText(b *testing.B)    { benchmarkDecode(b, "cloud/text_ctwa_referral") }
func BenchmarkDecodeCloudEscapedCTWA(b *testing.B) { benchmarkDecode(b, "cloud/post_referral") }
func BenchmarkDecodeCloudStatus(b *testing.B) {
	benchmarkDecode(b, "cloud/status_sent_with_biz_opaque")
}
func BenchmarkDecodeCloudBatch(b *testing.B)     { benchmarkDecode(b, "cloud/batch") }
func BenchmarkDecodeOnPremCTWAText(b *testing.B) { benchmarkDecode(b, "onprem/text_ctwa") }
func BenchmarkDecodeOnPremStatus(b *testing.B)   { benchmarkDecode(b, "onprem/status") }
func BenchmarkDecodeSinchText(b *testing.B)      { benchmarkDecode(b, "sinch/text") }
func BenchmarkDecodeSinchCTWA(b *testing.B)      { benchmarkDecode(b, "sinch/ctwa_media_card") }
func BenchmarkDecodeYCloudCTWA(b *testing.B)     { benchmarkDecode(b, "ycloud/ctwa_referral") }
func BenchmarkDecodeYCloudStatus(b *testing.B)   { benchmarkDecode(b, "ycloud/status") }

func BenchmarkItemClone(b *testing.B) {
	var d Decoder
	_, items, err := d.Decode(fixtures.Body(b, "cloud/text_ctwa_referral"), testAppID)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = items[0].Clone()
	}
}
