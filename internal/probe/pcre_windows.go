package probe

import "errors"

// compilePCRE reports that this build cannot run PCRE2 patterns: the
// pure-Go PCRE2 the probe uses elsewhere does not build for Windows. The
// probe then judges with its own reading of the answer, which the tests
// hold to the same verdicts as the generated patterns.
func compilePCRE(string) (matcher, error) {
	return nil, errNoPCRE
}

// errNoPCRE is the error of compilePCRE on this platform.
var errNoPCRE = errors.New("this build of haproxycheck-probe cannot run PCRE2 patterns")
