package proxy

import "testing"

func TestAppendHeaderName(t *testing.T) {
	for in, want := range map[string]string{
		"Custom_Header_1":     "custom-header-1", // the seed's example
		"X-Hub-Signature-256": "x-hub-signature-256",
		"Content-Type":        "Content-Type", // standard names keep their spelling
		"content-type":        "content-type",
		"USER-AGENT":          "USER-AGENT",
		"X-Forwarded-For":     "X-Forwarded-For",
		"already-normal":      "already-normal",
		"ÄB_c":                "\xc3\x84b-c", // only ASCII letters change
	} {
		if got := string(AppendHeaderName([]byte("prefix:"), []byte(in))); got != "prefix:"+want {
			t.Errorf("AppendHeaderName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestIsHopByHop(t *testing.T) {
	for name, want := range map[string]bool{
		"Connection": true, "keep-alive": true, "Proxy-Authorization": true, "proxy-connection": true,
		"TE": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
		"Content-Type": false, "Proxy": false, "X-Proxy-Id": false, "Teapot": false,
	} {
		if got := isHopByHop([]byte(name)); got != want {
			t.Errorf("isHopByHop(%q) = %v", name, got)
		}
	}
}

func TestParseHeader(t *testing.T) {
	h, err := ParseHeader("X_Api_Key:  abc: def ")
	if err != nil || h.Name != "x-api-key" || h.Value != "abc: def" || h.Given != "X_Api_Key" {
		t.Fatalf("ParseHeader = %+v, %v", h, err)
	}
	for _, bad := range []string{"", "novalue", ": x", "Bad Name: x", "Host: evil", "Content-Length: 1", "Transfer-Encoding: chunked", "X: a\nb"} {
		if _, err := ParseHeader(bad); err == nil {
			t.Errorf("ParseHeader(%q) accepted", bad)
		}
	}
}
