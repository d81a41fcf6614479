package deploy_test

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"
)

// TestCrashExcusesOnlyTheKilledServersCalls checks, on records of mode
// tcp, which failed calls a crash excuses: those of a client whose
// connection went to the killed server (the one it had, or one HAProxy
// sent there as the process died), until the client has a call answered
// by another server after that, and no others.
func TestCrashExcusesOnlyTheKilledServersCalls(t *testing.T) {
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	s := &scenario{mode: backendMode{name: "tcp"}}
	k := &killed{id: "grpc-js/tcp/2.2", addr: "127.0.92.2:39799", signalled: at(0), dead: at(21)}
	conns := map[string]frontendConn{
		"127.0.0.1:1001": {client: "127.0.0.1:1001", server: k.addr},
		"127.0.0.1:1002": {client: "127.0.0.1:1002", server: "127.0.92.1:39799"},
		"127.0.0.1:1003": {client: "127.0.0.1:1003", server: "127.0.92.3:39799"},
		// A connection that HAProxy sent to the dying process as it still
		// accepted.
		"127.0.0.1:1004": {client: "127.0.0.1:1004", server: k.addr, accepted: at(15)},
	}
	eof := func(worker int, local string, start, end int) callRecord {
		return callRecord{worker: worker, local: local, dialed: local, start: at(start), end: at(end), code: codes.Unavailable, message: "error reading from server: EOF"}
	}
	ok := func(worker int, local, server string, start, end int) callRecord {
		return callRecord{worker: worker, local: local, dialed: local, start: at(start), end: at(end), server: server}
	}
	calls := []callRecord{
		// Worker 0's connection went to the killed server, which answered
		// one more call after SIGKILL; its next call, sent as the server
		// died, failed.
		ok(0, "127.0.0.1:1001", k.id, -4, 2),
		eof(0, "127.0.0.1:1001", 21, 36),
		// Worker 1's connection went to the killed server too, but it had
		// a call answered by another server before this one failed.
		ok(1, "127.0.0.1:1001", k.id, -5, -1),
		ok(1, "127.0.0.1:1003", "grpc-js/tcp/3.1", 30, 35),
		eof(1, "127.0.0.1:1003", 40, 45),
		// Worker 2 never had a connection to the killed server.
		ok(2, "127.0.0.1:1002", "grpc-js/tcp/1.1", -3, 3),
		eof(2, "127.0.0.1:1002", 25, 30),
		// Worker 3 had a call answered by another server after SIGKILL,
		// then dialed a connection that HAProxy sent to the dying process;
		// grpc-go failed its calls at once while it reconnected.
		ok(3, "127.0.0.1:1002", "grpc-js/tcp/1.1", 6, 12),
		{worker: 3, dialed: "127.0.0.1:1004", start: at(14), end: at(22), code: codes.Unavailable, message: "error reading server preface: EOF"},
		{worker: 3, dialed: "127.0.0.1:1004", start: at(40), end: at(40), code: codes.Unavailable, message: "error reading server preface: EOF"},
		// Worker 4 dialed that way too, but a call of its own on another
		// server succeeded after HAProxy accepted it.
		{worker: 4, dialed: "127.0.0.1:1004", start: at(14), end: at(22), code: codes.Unavailable},
		ok(4, "127.0.0.1:1003", "grpc-js/tcp/3.1", 25, 28),
		{worker: 4, dialed: "127.0.0.1:1004", start: at(40), end: at(41), code: codes.Unavailable},
	}
	for _, tc := range []struct {
		call int
		want bool
	}{{1, true}, {4, false}, {6, false}, {8, true}, {9, true}, {10, true}, {12, false}} {
		c := calls[tc.call]
		if got := s.inFlightOnKilled(c, k, calls, conns) || s.reconnecting(c, k, calls, conns); got != tc.want {
			t.Errorf("worker %d's call at +%v: excused %t, want %t", c.worker, c.start.Sub(t0), got, tc.want)
		}
	}
}
