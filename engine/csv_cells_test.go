package engine

import (
	"slices"
	"testing"
)

// The formula defusing of the CSV exports (README: cells starting with = + - @ are
// prefixed with ', except signed plain numbers such as phones).
func TestEscapeCSV(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"plain", "plain"},
		{"49.90 EUR", "49.90 EUR"},
		{"a=b", "a=b"}, // only the first character counts
		{"=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"},
		{"=1+1", "'=1+1"},
		{"@SUM(A1:A9)", "'@SUM(A1:A9)"},
		{"\tx", "'\tx"},
		{"\rx", "'\rx"},
		{"+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"},
		{"-2+3", "'-2+3"},
		// Signed plain numbers stay: phones in E.164, negative amounts.
		{"+491701234567", "+491701234567"},
		{"-12", "-12"},
		{"-12.5", "-12.5"},
		{"+0.5", "+0.5"},
		// Not plain numbers: a sign alone, dots misplaced or doubled, exponents, two signs.
		{"+", "'+"},
		{"-", "'-"},
		{"+.5", "'+.5"},
		{"-5.", "'-5."},
		{"+1.2.3", "'+1.2.3"},
		{"-1e5", "'-1e5"},
		{"+-1", "'+-1"},
		{"+49 170", "'+49 170"},
	} {
		if got := EscapeCSV([]string{tc.in}); got[0] != tc.want {
			t.Errorf("EscapeCSV(%q) = %q, want %q", tc.in, got[0], tc.want)
		}
	}
	row := []string{"=a", "b", "+4917"}
	if got := EscapeCSV(row); !slices.Equal(got, []string{"'=a", "b", "+4917"}) || &got[0] != &row[0] {
		t.Errorf("EscapeCSV(row) = %q: every cell, in place", got)
	}
}
