package checkmodel

import (
	"strconv"
	"strings"
	"unicode"
)

// CommentLines returns the message's text as lines fit for a comment in
// any generated file: no line breaks, trailing space trimmed, and
// characters that are not printable escaped as in a Go string, so that
// annotation text can neither end a comment nor hide in one. The empty
// message gives no lines.
func (m Message) CommentLines() []string {
	if m.Text == "" {
		return nil
	}
	var lines []string
	for _, l := range strings.Split(m.Text, "\n") {
		lines = append(lines, CommentSafe(strings.TrimRight(l, " \t\r")))
	}
	return lines
}

// CommentSafe escapes the characters of s that are not printable.
func CommentSafe(s string) string {
	var b strings.Builder
	for _, r := range s {
		if unicode.IsPrint(r) {
			b.WriteRune(r)
			continue
		}
		q := strconv.QuoteRune(r)
		b.WriteString(q[1 : len(q)-1])
	}
	return b.String()
}
