package checkmodel_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/checkmodel"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/testenv"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/wire"
)

// fieldComments returns the comment of every field of the options proto,
// by "Message.field".
func fieldComments(t *testing.T) map[string]string {
	t.Helper()
	text, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "options", "haproxycheck", "v1", "haproxycheck.proto"))
	if err != nil {
		t.Fatal(err)
	}
	message := regexp.MustCompile(`^message (\w+) \{`)
	field := regexp.MustCompile(`^(?:optional |repeated )?[\w.]+ (\w+) = \d+;`)
	comments := map[string]string{}
	var current string
	var comment []string
	for _, line := range strings.Split(string(text), "\n") {
		line = strings.TrimSpace(line)
		switch m, f := message.FindStringSubmatch(line), field.FindStringSubmatch(line); {
		case strings.HasPrefix(line, "//"):
			comment = append(comment, strings.TrimSpace(strings.TrimPrefix(line, "//")))
			continue
		case m != nil:
			current = m[1]
		case f != nil && current != "":
			comments[current+"."+f[1]] = strings.Join(comment, " ")
		}
		comment = nil
	}
	if len(comments) < 20 {
		t.Fatalf("read %d field comments from the options proto; is it still laid out as one field per line?", len(comments))
	}
	return comments
}

// TestOptionsDocumentTheDefaults checks that every "Default:" value the
// options proto states is the code's, and that every default of the code
// is stated there.
func TestOptionsDocumentTheDefaults(t *testing.T) {
	want := map[string]string{
		"Check.authority":   strconv.Quote(checkmodel.DefaultAuthority),
		"Check.not_serving": "NOT_SERVING_DRAIN",
		"Servers.count":     strconv.Itoa(checkmodel.DefaultServerCount),
		"Servers.resolvers": strconv.Quote(checkmodel.DefaultResolvers),
		"Timing.inter_ms":   strconv.Itoa(checkmodel.DefaultInterMS),
		"Timing.rise":       strconv.Itoa(checkmodel.DefaultRise),
		"Timing.fall":       strconv.Itoa(checkmodel.DefaultFall),
	}
	// A default that is a value: a number, a quoted string or an enum
	// value's name, rather than a description.
	value := regexp.MustCompile(`Default: ("[^"]*"|\d+|[A-Z][A-Z_]+)[.,]`)
	for name, comment := range fieldComments(t) {
		m := value.FindStringSubmatch(comment)
		switch w, ok := want[name]; {
		case m == nil && ok:
			t.Errorf("%s: the options proto states no default; the code's is %s", name, w)
		case m == nil:
		case !ok:
			t.Errorf("%s: the options proto states the default %s, which the code has no constant for", name, m[1])
		case m[1] != w:
			t.Errorf("%s: the options proto states the default %s, the code's is %s", name, m[1], w)
		}
	}
}

// TestOptionsDocumentTheLimits checks that every limit the model enforces
// is stated next to its field in the options proto, with the code's value.
func TestOptionsDocumentTheLimits(t *testing.T) {
	comments := fieldComments(t)
	for _, l := range []struct {
		field string
		limit int
	}{
		{"HealthRPC.request", wire.MaxRequestMessage},
		{"HealthRPC.expected_response", checkmodel.MaxExpectedResponse},
		{"Check.backend", checkmodel.MaxName},
		{"Check.authority", checkmodel.MaxAuthority},
		{"Check.metadata", checkmodel.MaxMetadataKey},
		{"Check.metadata", checkmodel.MaxMetadataValue},
		{"Servers.count", checkmodel.MaxServerCount},
		{"Servers.resolvers", checkmodel.MaxName},
	} {
		stated := regexp.MustCompile(`(?i)\bat most ` + strconv.Itoa(l.limit) + `\b`)
		if comment := comments[l.field]; !stated.MatchString(comment) {
			t.Errorf("%s: the options proto does not state the limit %d: %q", l.field, l.limit, comment)
		}
	}
}
