package openflow

import (
	"bufio"
	"bytes"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/loom-sdn/loom/southbound/openflow/wire"
)

// Senders that write to the socket themselves (when no write is in
// progress) and the writer goroutine (when the socket is full) keep every
// sender's messages in order and lose none, through a peer that stalls
// now and then so that writes are partial. Sender 0 uses SendBuffer,
// filling the buffers it gets back: a buffer still being written or
// queued that it were given would show as a corrupt payload.
func TestWritesStayInOrderThroughPartialWrites(t *testing.T) {
	for _, network := range []string{"unix", "tcp"} {
		t.Run(network, func(t *testing.T) {
			addr := "127.0.0.1:0"
			if network == "unix" {
				addr = filepath.Join(t.TempDir(), "w.sock")
			}
			l, err := net.Listen(network, addr)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			peer, err := net.Dial(network, l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer peer.Close()
			conn, err := l.Accept()
			if err != nil {
				t.Fatal(err)
			}
			s := newSession(conn, Config{MaxQueue: 256 << 10}, slog.Default(), nil)
			if s.raw == nil {
				t.Fatal("no raw writer on a plain socket")
			}
			go s.writer()
			defer s.Close(nil)

			const senders, each = 4, 5000
			const maxPayload = 300 // many messages per socket buffer, partial writes likely
			payload := func(i int) []byte { return bytes.Repeat([]byte{byte(i)}, i%maxPayload) }
			var wg sync.WaitGroup
			for g := range senders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var buf []byte
					for i := range each {
						var err error
						if g == 0 {
							buf = wire.AppendEcho(buf, wire.TypeEchoRequest, uint32(g)<<24|uint32(i), payload(i))
							if i%3 == 2 { // sometimes several messages in one buffer
								buf, err = s.SendBuffer(buf)
							}
						} else {
							err = s.Send(wire.AppendEcho(nil, wire.TypeEchoRequest, uint32(g)<<24|uint32(i), payload(i)))
						}
						if err != nil {
							t.Error(err)
							return
						}
					}
					if len(buf) > 0 {
						if _, err := s.SendBuffer(buf); err != nil {
							t.Error(err)
						}
					}
				}()
			}
			br := bufio.NewReaderSize(peer, 4096)
			next := make([]uint32, senders)
			for got := 0; got < senders*each; got++ {
				if got%2000 == 1000 {
					time.Sleep(20 * time.Millisecond) // the socket fills; senders hand over to the writer
				}
				peer.SetReadDeadline(time.Now().Add(10 * time.Second))
				h, msg, err := wire.ReadMessage(br)
				if err != nil {
					t.Fatalf("after %d messages: %v", got, err)
				}
				g, i := h.Xid>>24, h.Xid&0xffffff
				if g >= senders || i != next[g] || !bytes.Equal(msg[wire.HeaderLen:], payload(int(i))) {
					t.Fatalf("message %d: sender %d seq %d (%d bytes), want seq %d", got, g, i, len(msg), next[g])
				}
				next[g]++
			}
			wg.Wait()
			if q := s.QueuedBytes(); q != 0 {
				t.Errorf("%d bytes still queued", q)
			}
		})
	}
}
