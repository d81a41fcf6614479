// Package haproxytest runs a real HAProxy for tests and reads the state of
// its servers from the stats socket.
package haproxytest

import (
	"bufio"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/testenv"
)

// Server is one server of a backend, as HAProxy's "show stat" reports it.
type Server struct {
	Backend, Name string
	// Addr is "ip:port", empty while the server has no address.
	Addr string
	// Status is UP, DOWN, MAINT, "UP 1/2" (going down) and so on.
	Status string
	// CheckStatus is the last completed check's status: L7OK, L7RSP,
	// L7TOUT, L4CON...
	CheckStatus string
	// CheckDuration is how long the last check took.
	CheckDuration time.Duration
}

// HAProxy is a running haproxy process.
type HAProxy struct {
	socket string
	log    testenv.Output
}

// MainConfig returns a minimal main configuration for tests: the stats
// socket, the log on stderr, timeouts, and a resolvers section named
// "default" that asks the DNS server at dnsAddr, re-resolving every 200 ms.
func MainConfig(socket, dnsAddr string) string {
	return fmt.Sprintf(`global
    stats socket %s mode 600 level admin
    log stderr format raw local0 info

defaults
    log global
    mode tcp
    timeout connect 2s
    timeout client 10s
    timeout server 10s

resolvers default
    nameserver test %s
    resolve_retries 3
    timeout resolve 200ms
    timeout retry 200ms
    hold valid 200ms
    hold obsolete 1s
`, socket, dnsAddr)
}

// Run runs haproxy, as Start does, on the test main configuration
// (MainConfig, with its stats socket in a temporary directory and its
// resolvers asking the DNS server at dnsAddr) followed by extra sections,
// and on the files and directories in fragments, with env added to its
// environment.
func Run(t testing.TB, dnsAddr, extra string, fragments, env []string) *HAProxy {
	t.Helper()
	dir := t.TempDir()
	socket := filepath.Join(dir, "stats.sock")
	return Start(t, dir, socket, MainConfig(socket, dnsAddr)+extra, fragments, env)
}

// Start writes main as the main configuration, runs haproxy in the
// foreground on it and on the files and directories in fragments, with env
// added to its environment, and stops it when the test ends. main must
// declare the stats socket at socket.
func Start(t testing.TB, dir, socket, main string, fragments []string, env []string) *HAProxy {
	t.Helper()
	bin := testenv.Tool(t, "haproxy")
	h := &HAProxy{socket: socket}
	cmd := exec.Command(bin, append([]string{"-db"}, configArgs(t, dir, main, fragments)...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = &h.log, &h.log
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("HAPROXYCHECK_TEST_LOG") != "" {
			t.Logf("haproxy log:\n%s", h.Log())
		}
	})
	proc := testenv.StartProcess(t, "haproxy", cmd, os.Interrupt, 5*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := h.command("show info"); err == nil {
			return h
		}
		select {
		case <-proc.Done():
			_, err := proc.Exited()
			t.Fatalf("haproxy exited: %v\n%s", err, h.Log())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy's stats socket did not answer within 10s\n%s", h.Log())
		}
	}
}

// Log returns what haproxy has logged so far.
func (h *HAProxy) Log() string { return h.log.String() }

// command sends one command to the stats socket and returns the answer.
func (h *HAProxy) command(cmd string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", h.socket)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(conn, cmd+"\n"); err != nil {
		return "", err
	}
	out, err := io.ReadAll(bufio.NewReader(conn))
	return string(out), err
}

// Servers returns the servers of backend.
func (h *HAProxy) Servers(backend string) ([]Server, error) {
	out, err := h.command("show stat")
	if err != nil {
		return nil, err
	}
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(out, "# ")))
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil || len(rows) == 0 {
		return nil, fmt.Errorf("reading show stat: %v\n%s", err, out)
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	field := func(row []string, name string) string {
		if i, ok := col[name]; ok && i < len(row) {
			return row[i]
		}
		return ""
	}
	var servers []Server
	for _, row := range rows[1:] {
		name := field(row, "svname")
		if field(row, "pxname") != backend || name == "FRONTEND" || name == "BACKEND" {
			continue
		}
		ms, _ := strconv.Atoi(field(row, "check_duration"))
		servers = append(servers, Server{
			Backend:       backend,
			Name:          name,
			Addr:          field(row, "addr"),
			Status:        field(row, "status"),
			CheckStatus:   strings.TrimPrefix(field(row, "check_status"), "* "), // "* " marks a check in progress
			CheckDuration: time.Duration(ms) * time.Millisecond,
		})
	}
	return servers, nil
}

// ServerAt returns the server of backend whose address is addr.
func (h *HAProxy) ServerAt(backend, addr string) (Server, bool, error) {
	servers, err := h.Servers(backend)
	if err != nil {
		return Server{}, false, err
	}
	for _, s := range servers {
		if s.Addr == addr {
			return s, true, nil
		}
	}
	return Server{}, false, nil
}

// WaitStatus waits, at most timeout, until the server of backend at addr
// has status want, and returns it.
func (h *HAProxy) WaitStatus(t testing.TB, backend, addr, want string, timeout time.Duration) Server {
	t.Helper()
	s, ok, err := h.AwaitServer(backend, addr, timeout, func(s Server) bool { return s.Status == want })
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		t.Fatalf("server %s of backend %s: status %q, want %q after %v (last check %s)", addr, backend, s.Status, want, timeout, s.CheckStatus)
	}
	return s
}

// AwaitServer reads the server of backend at addr every 25 ms until cond
// holds for it, at most timeout, and returns it then, or as it last was
// (the zero Server if it never had addr) with false. It ends with the
// error of a failed read of the stats.
func (h *HAProxy) AwaitServer(backend, addr string, timeout time.Duration, cond func(Server) bool) (Server, bool, error) {
	var last Server
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(25 * time.Millisecond) {
		s, found, err := h.ServerAt(backend, addr)
		if err != nil {
			return last, false, fmt.Errorf("reading servers of %s: %v", backend, err)
		}
		if found {
			last = s
			if cond(s) {
				return s, true, nil
			}
		}
	}
	return last, false, nil
}

// validateMain is the main configuration that Validate loads fragments
// beside: the defaults and the "default" resolvers section that fragments
// expect, and a frontend, without which haproxy -c reports no listener.
const validateMain = `defaults
    mode tcp
    timeout connect 1s
    timeout client 1s
    timeout server 1s

resolvers default
    nameserver local 127.0.0.1:53

frontend validate
    bind 127.0.0.1:18443
    tcp-request connection reject
`

// Validate runs haproxy -c on the files and directories in fragments,
// beside a minimal main configuration, with env added to its environment,
// and fails the test if HAProxy rejects them or warns about anything.
func Validate(t testing.TB, env []string, fragments ...string) {
	t.Helper()
	bin := testenv.Tool(t, "haproxy")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"-c"}, configArgs(t, t.TempDir(), validateMain, fragments)...)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("haproxy -c: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "WARNING") || strings.Contains(line, "ALERT") {
			t.Errorf("haproxy -c: %s", line)
		}
	}
}

// configArgs writes main as dir/main.cfg and returns haproxy's arguments
// that load it and then the files and directories in fragments.
func configArgs(t testing.TB, dir, main string, fragments []string) []string {
	t.Helper()
	mainPath := filepath.Join(dir, "main.cfg")
	if err := os.WriteFile(mainPath, []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-f", mainPath}
	for _, f := range fragments {
		args = append(args, "-f", f)
	}
	return args
}
