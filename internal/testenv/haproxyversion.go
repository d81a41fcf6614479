package testenv

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Version is an HAProxy version, as haproxy -v reports it.
type Version struct {
	// Major, Minor and Patch are the version's numbers: 3, 2, 26 for
	// 3.2.26; Patch is 0 for a development version such as 3.3-dev5.
	Major, Minor, Patch int
	// Full is the version as haproxy -v prints it, with a distribution's
	// suffix: "2.6.12-1+deb12u4", "3.2.26-1".
	Full string
}

// String returns the full version.
func (v Version) String() string { return v.Full }

// AtLeast reports whether v is major.minor or newer.
func (v Version) AtLeast(major, minor int) bool {
	return v.Major > major || v.Major == major && v.Minor >= minor
}

// versionLine matches haproxy -v's first line: "HAProxy version
// 3.2.26-1 2026/10/14 - https://haproxy.org/" (before 2.1, "HA-Proxy
// version 2.0.33 ...").
var versionLine = regexp.MustCompile(`(?m)^HA-?Proxy version ((\d+)\.(\d+)(?:\.(\d+))?\S*)`)

// ParseHAProxyVersion reads the version from the output of haproxy -v.
func ParseHAProxyVersion(out string) (Version, error) {
	m := versionLine.FindStringSubmatch(out)
	if m == nil {
		return Version{}, fmt.Errorf("no HAProxy version in %q", firstLine(out))
	}
	v := Version{Full: m[1]}
	v.Major, _ = strconv.Atoi(m[2])
	v.Minor, _ = strconv.Atoi(m[3])
	if m[4] != "" {
		v.Patch, _ = strconv.Atoi(m[4])
	}
	return v, nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// versions caches the version of each haproxy binary by path.
var versions sync.Map // path → Version

// HAProxyVersion returns the version of the haproxy that Tool(t, "haproxy")
// gives, skipping or failing the test as Tool does when there is none.
func HAProxyVersion(t testing.TB) Version {
	t.Helper()
	bin := Tool(t, "haproxy")
	if v, ok := versions.Load(bin); ok {
		return v.(Version)
	}
	out, err := RunErr("", 30*time.Second, bin, "-v")
	if err != nil {
		t.Fatalf("%s -v: %v\n%s", bin, err, out)
	}
	v, err := ParseHAProxyVersion(string(out))
	if err != nil {
		t.Fatalf("%s -v: %v", bin, err)
	}
	versions.Store(bin, v)
	return v
}
