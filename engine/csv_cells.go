package engine

import "strings"

// EscapeCSV defuses, in place, the cells of an exported row that a spreadsheet would run
// as a formula (CSV injection): a cell starting with = + - @ or a tab/CR gets a leading
// apostrophe. A signed plain number (a phone in E.164, "+491701234567", as Meta's
// audience upload wants it) stays as is: digits alone cannot call a function.
func EscapeCSV(cells []string) []string {
	for i, c := range cells {
		if c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) && !isSignedNumber(c) {
			cells[i] = "'" + c
		}
	}
	return cells
}

// isSignedNumber reports whether s is + or - followed by digits with at most one dot,
// neither first nor last.
func isSignedNumber(s string) bool {
	if len(s) < 2 || (s[0] != '+' && s[0] != '-') {
		return false
	}
	dots := 0
	for _, c := range s[1:] {
		switch {
		case c == '.':
			dots++
		case c < '0' || c > '9':
			return false
		}
	}
	return dots <= 1 && s[1] != '.' && s[len(s)-1] != '.'
}
