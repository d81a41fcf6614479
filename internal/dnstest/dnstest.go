// Package dnstest runs a DNS server on loopback for tests, so that real
// HAProxy resolves a generated fragment's server-template name to test
// servers, as it resolves a service's DNS name in production.
package dnstest

import (
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// Server answers A queries for the names it is given; every other query
// gets an empty answer.
type Server struct {
	// Addr is the server's UDP address, "127.0.0.1:port".
	Addr string

	mu      sync.Mutex
	records map[string][]net.IP
}

// Start starts a DNS server on 127.0.0.1 and stops it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("DNS server: %v", err)
	}
	s := &Server{Addr: pc.LocalAddr().String(), records: map[string][]net.IP{}}
	srv := &dns.Server{PacketConn: pc, Handler: s}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.ActivateAndServe()
	}()
	t.Cleanup(func() {
		_ = srv.Shutdown()
		<-done
	})
	return s
}

// Set makes name resolve to ips (IPv4).
func (s *Server) Set(name string, ips ...net.IP) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records[dns.Fqdn(strings.ToLower(name))] = ips
}

// ServeDNS answers one query.
func (s *Server) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	resp := new(dns.Msg)
	resp.SetReply(req)
	resp.Authoritative = true
	resp.Compress = true // many records fit in a 512-byte answer
	s.mu.Lock()
	for _, q := range req.Question {
		if q.Qtype != dns.TypeA {
			continue
		}
		for _, ip := range s.records[strings.ToLower(q.Name)] {
			resp.Answer = append(resp.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 1},
				A:   ip,
			})
		}
	}
	s.mu.Unlock()
	_ = w.WriteMsg(resp)
}
