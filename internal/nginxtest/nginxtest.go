// Package nginxtest runs a real nginx for tests, in the foreground and as
// a single process, with everything it writes inside one directory, so
// that it runs alike as root and as a normal user.
package nginxtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/testenv"
)

// Nginx is a running nginx process.
type Nginx struct {
	dir   string
	addrs []string
	log   testenv.Output
}

// startTimeout bounds how long Start waits for nginx to accept
// connections, and stopTimeout how long the cleanup waits for it to exit
// before killing it.
const (
	startTimeout = 10 * time.Second
	stopTimeout  = 5 * time.Second
)

// GRPCProxyConfig returns a configuration in which nginx accepts gRPC
// calls in plaintext HTTP/2 (h2c) on listen, "ip:port", and passes them
// to the gRPC server at upstream, also in h2c.
func GRPCProxyConfig(listen, upstream string) string {
	return GRPCProxiesConfig(GRPCProxy{Listen: listen, Upstream: upstream})
}

// GRPCProxy is one server of nginx's configuration that accepts gRPC calls
// in plaintext HTTP/2 (h2c) on Listen, "ip:port", and passes them to the
// gRPC server at Upstream, also in h2c.
type GRPCProxy struct {
	Listen, Upstream string
}

// GRPCProxiesConfig returns a configuration in which one nginx runs every
// proxy, each a server of its own http block.
func GRPCProxiesConfig(proxies ...GRPCProxy) string {
	var b strings.Builder
	b.WriteString("http {\n")
	for _, p := range proxies {
		fmt.Fprintf(&b, `    server {
        listen %s http2;
        location / {
            grpc_pass grpc://%s;
        }
    }
`, p.Listen, p.Upstream)
	}
	b.WriteString("}\n")
	return b.String()
}

// mainConfig is what Start puts before config: nginx in the foreground as
// one process (no workers, so no user to switch to, which only root could),
// its pid file in dir and its error log on stderr.
const mainConfig = `# Written by nginxtest.Start.
daemon off;
master_process off;
worker_processes 1;
pid %s;
error_log stderr info;

events {
    worker_connections 256;
}

`

// httpPaths are the directives Start puts at the head of config's http
// block: every file nginx may write goes to dir, rather than to the
// compiled-in /var/lib/nginx and /var/log/nginx, which only root may
// write.
const httpPaths = `
    # Written by nginxtest.Start.
    access_log %[1]s;
    client_body_temp_path %[2]s/client_body;
    proxy_temp_path %[2]s/proxy;
    fastcgi_temp_path %[2]s/fastcgi;
    uwsgi_temp_path %[2]s/uwsgi;
    scgi_temp_path %[2]s/scgi;
`

var (
	httpBlock = regexp.MustCompile(`(?:^|[\s;{}])http\s*\{`)
	listenArg = regexp.MustCompile(`(?:^|[\s;{}])listen\s+([^\s;]+)`)
)

// Start writes dir/nginx.conf, the main context (see mainConfig) followed
// by config, whose http block, if any, Start begins with the access log
// (dir/access.log) and the temporary paths (under dir/temp), so config
// must not set them. It runs nginx -p dir -c dir/nginx.conf, waits until
// every address config listens on accepts connections, and stops nginx
// when the test ends. Listen addresses must be "ip:port" or "unix:path".
func Start(t testing.TB, dir, config string) *Nginx {
	t.Helper()
	bin := testenv.Tool(t, "nginx")
	dir, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := &Nginx{dir: dir}
	for _, m := range listenArg.FindAllStringSubmatch(config, -1) {
		n.addrs = append(n.addrs, m[1])
	}
	if len(n.addrs) == 0 {
		t.Fatal("nginxtest: the configuration has no listen directive, so nothing tells when nginx is ready")
	}
	temp := filepath.Join(dir, "temp")
	if err := os.MkdirAll(temp, 0o755); err != nil {
		t.Fatal(err)
	}
	if loc := httpBlock.FindStringIndex(config); loc != nil {
		config = config[:loc[1]] + fmt.Sprintf(httpPaths, filepath.Join(dir, "access.log"), temp) + config[loc[1]:]
	}
	confPath := filepath.Join(dir, "nginx.conf")
	full := fmt.Sprintf(mainConfig, filepath.Join(dir, "nginx.pid")) + config
	if err := os.WriteFile(confPath, []byte(full), 0o644); err != nil {
		t.Fatal(err)
	}

	// -e stderr: the error log nginx opens before it has read the
	// configuration, compiled in as /var/log/nginx/error.log.
	cmd := exec.Command(bin, "-p", dir+"/", "-c", confPath, "-e", "stderr")
	cmd.Stdout, cmd.Stderr = &n.log, &n.log
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("HAPROXYCHECK_TEST_LOG") != "" {
			t.Logf("nginx log:\n%s\naccess log:\n%s", n.Log(), n.AccessLog())
		}
	})
	// SIGTERM is nginx's fast shutdown: it does not wait for clients' idle
	// connections, as SIGQUIT does.
	proc := testenv.StartProcess(t, "nginx", cmd, syscall.SIGTERM, stopTimeout)

	deadline := time.Now().Add(startTimeout)
	for _, addr := range n.addrs {
		for {
			err := dial(addr, deadline)
			if err == nil {
				break
			}
			select {
			case <-proc.Done():
				_, err := proc.Exited()
				t.Fatalf("nginx exited: %v\n%s", err, n.Log())
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("nginx did not accept connections on %s within %v: %v\n%s", addr, startTimeout, err, n.Log())
			}
		}
	}
	return n
}

// dial connects to a listen address of nginx's configuration and closes
// the connection.
func dial(addr string, deadline time.Time) error {
	network := "tcp"
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		network, addr = "unix", path
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return err
	}
	return conn.Close()
}

// Addrs returns the addresses nginx listens on, as the configuration
// gives them.
func (n *Nginx) Addrs() []string { return n.addrs }

// Dir returns the directory nginx runs in.
func (n *Nginx) Dir() string { return n.dir }

// Log returns what nginx has written to its error log (its stderr) so far.
func (n *Nginx) Log() string { return n.log.String() }

// AccessLog returns nginx's access log so far: one line per request, in
// the combined format, with the HTTP status.
func (n *Nginx) AccessLog() string {
	b, err := os.ReadFile(filepath.Join(n.dir, "access.log"))
	if err != nil {
		return ""
	}
	return string(b)
}
