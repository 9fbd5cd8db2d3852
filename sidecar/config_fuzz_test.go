package sidecar

import "testing"

// FuzzParseSize feeds the -max-body size parser arbitrary values: it never panics, what
// it accepts is between 1 byte and 2 GiB, and the size it prints for the -help default
// reads back as the same size.
//
//	go test -run='^$' -fuzz='^FuzzParseSize$' -fuzztime=10m ./sidecar
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"8MiB", "512KiB", "1MB", "1048576", " 2 GiB ", "0", "-1KiB", "3GiB", "1.5MiB", "KiB", "9223372036854775807B", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		n, err := parseSize(v)
		if err != nil {
			return
		}
		if n < 1 || n > 1<<31 {
			t.Fatalf("parseSize(%q) = %d, outside 1 byte to 2 GiB", v, n)
		}
		if back, err := parseSize(formatSize(n)); err != nil || back != n {
			t.Fatalf("parseSize(%q) = %d, printed %q, read back %d, %v", v, n, formatSize(n), back, err)
		}
	})
}
