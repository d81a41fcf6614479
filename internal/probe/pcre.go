//go:build !windows

package probe

import "go.elara.ws/pcre"

// compilePCRE compiles pattern as HAProxy compiles an expect rule's
// regular expression: with PCRE2, case-sensitive, and not in UTF mode, so
// that it matches bytes. PCRE2's JIT, which HAProxy uses, matches exactly
// as this interpreter does.
func compilePCRE(pattern string) (matcher, error) {
	return pcre.Compile(pattern)
}
