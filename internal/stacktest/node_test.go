package stacktest_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/testenv"
)

// TestNodeRuntimeRule checks which Node.js releases runtime.js accepts for
// the grpc-js servers: 20.10.0, 21.1.0, 22 and later, whose closing HTTP/2
// session sends the last frames of its calls before it ends the
// connection.
func TestNodeRuntimeRule(t *testing.T) {
	node := testenv.Tool(t, "node")
	check := filepath.Join(testenv.RepoRoot(t), "e2e", "stacks", "node", "runtime.js")
	for version, fit := range map[string]bool{
		"18.20.4": false, // Debian bookworm's
		"18.20.8": false,
		"20.9.0":  false,
		"20.10.0": true,
		"21.0.0":  false,
		"21.1.0":  true,
		"22.0.0":  true,
		"24.22.3": true, // scripts/nodejs's
		"v26.1.0": true,
	} {
		out, err := testenv.RunErr("", time.Minute, node, check, version)
		if fit && err != nil {
			t.Errorf("runtime.js %s: %v, %s; want it accepted", version, err, out)
		}
		if !fit && (err == nil || !strings.Contains(string(out), "use Node.js 20.10.0, 22 or later")) {
			t.Errorf("runtime.js %s: %v, %q; want it refused, naming the releases to use", version, err, out)
		}
	}
	if out, err := testenv.RunErr("", time.Minute, node, check, "eighteen"); err == nil || !strings.Contains(string(out), `"eighteen" is not a Node.js version`) {
		t.Errorf("runtime.js eighteen: %v, %q; want a usage error", err, out)
	}
}

// TestNodeServerRefusesUnfitRuntime starts the grpc-js server on a Node.js
// that reports itself as bookworm's 18.20.4: it must exit at once, saying
// why, rather than serve and lose calls when it stops.
func TestNodeServerRefusesUnfitRuntime(t *testing.T) {
	node := testenv.Tool(t, "node")
	root := testenv.RepoRoot(t)
	preload := filepath.Join(t.TempDir(), "node18.js")
	if err := os.WriteFile(preload, []byte("Object.defineProperty(process, 'versions', { value: { ...process.versions, node: '18.20.4' } });\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := testenv.RunErr(root, time.Minute, node, "--require", preload, filepath.Join(root, "e2e", "stacks", "node", "server.js"), "--addr", "127.0.0.1:0")
	if err == nil || !strings.Contains(string(out), "Node.js 18.20.4 can end a connection") || strings.Contains(string(out), "listening") {
		t.Errorf("server.js on Node.js 18.20.4: %v, %q; want it to refuse to run", err, out)
	}
}
