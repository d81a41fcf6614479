package e2e

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// startByteRelay forwards connections from listen to target, and sends the
// target's answers back one byte per TCP segment, so that a check sees the
// answer split at every byte instead of loopback's usual single segment.
// It stops when the test ends.
func startByteRelay(t *testing.T, listen, target string) {
	t.Helper()
	l, err := net.Listen("tcp", listen)
	if err != nil {
		t.Fatalf("relay: %v", err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	track := func(c net.Conn) {
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
	}
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			client, err := l.Accept()
			if err != nil {
				return
			}
			server, err := net.DialTimeout("tcp", target, 2*time.Second)
			if err != nil {
				client.Close()
				continue
			}
			track(client)
			track(server)
			wg.Add(2)
			go func() {
				defer wg.Done()
				_, _ = io.Copy(server, client)
				server.Close()
			}()
			go func() {
				defer wg.Done()
				defer client.Close()
				client.(*net.TCPConn).SetNoDelay(true)
				buf := make([]byte, 4096)
				for {
					n, err := server.Read(buf)
					for i := 0; i < n; i++ {
						if _, werr := client.Write(buf[i : i+1]); werr != nil {
							return
						}
						time.Sleep(time.Millisecond)
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
}
