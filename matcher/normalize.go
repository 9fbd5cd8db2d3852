package matcher

import (
	"unicode"
	"unicode/utf8"
)

// appendNormalized appends s to dst lower-cased, with every run of white space
// replaced by one space. Invalid UTF-8 becomes U+FFFD, as in strings.ToLower,
// so the result is valid UTF-8. Patterns and texts go through this same
// function, which keeps their bytes, and so the boundary checks, consistent
// even where lower-casing changes a rune's length.
func appendNormalized(dst []byte, s string) []byte {
	space := false
	for i := 0; i < len(s); {
		r, size := rune(s[i]), 1
		if r >= utf8.RuneSelf {
			r, size = utf8.DecodeRuneInString(s[i:])
		}
		i += size
		if unicode.IsSpace(r) {
			if !space {
				dst = append(dst, ' ')
			}
			space = true
			continue
		}
		space = false
		if r < utf8.RuneSelf {
			if 'A' <= r && r <= 'Z' {
				r += 'a' - 'A'
			}
			dst = append(dst, byte(r))
			continue
		}
		dst = utf8.AppendRune(dst, unicode.ToLower(r))
	}
	return dst
}

// isWordRune reports whether r belongs to a word: a letter, a digit, or a
// combining mark, which belongs to the letter before it ("cafe\u0301").
func isWordRune(r rune) bool {
	if r < utf8.RuneSelf {
		return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9'
	}
	return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r)
}
