package openflow

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/loom-sdn/loom/internal/testenv"

	"github.com/loom-sdn/loom/southbound/openflow/wire"
)

// policyRecorder is a recorder that also counts what the server refused.
type policyRecorder struct {
	recorder
	mu          sync.Mutex
	refused     map[string]int
	echoDropped atomic.Int64
}

func newPolicyRecorder() *policyRecorder {
	return &policyRecorder{recorder: recorder{up: make(chan *Session, 64)}, refused: map[string]int{}}
}

func (p *policyRecorder) Connected(s *Session) {
	select {
	case p.up <- s:
	default:
	}
}
func (p *policyRecorder) SessionRefused(reason string) {
	p.mu.Lock()
	p.refused[reason]++
	p.mu.Unlock()
}
func (p *policyRecorder) EchoReplyDropped() { p.echoDropped.Add(1) }
func (p *policyRecorder) count(reason string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refused[reason]
}

// serve runs a server with cfg on l and stops it when the test ends.
func serve(t *testing.T, l net.Listener, cfg Config, h Handler) *Server {
	ctx, cancel := context.WithCancel(context.Background())
	srv := &Server{Config: cfg, Handler: h, Log: quietLog()}
	go srv.Serve(ctx, l)
	t.Cleanup(func() { cancel(); srv.Wait() })
	return srv
}

func unixListener(t *testing.T) net.Listener {
	l, err := Listen("unix:"+filepath.Join(t.TempDir(), "of.sock"), TLSFiles{})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// handshake plays a minimal switch over c until the controller has what
// it asks for at connect (features, port description, description): a
// client that costs almost nothing, to count what a session costs the
// controller. It reads without a buffer.
func handshake(c net.Conn, dpid uint64) error {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(wire.AppendHello(nil, 1)); err != nil {
		return err
	}
	for need := 3; need > 0; {
		h, msg, err := wire.ReadMessage(c)
		if err != nil {
			return err
		}
		var out []byte
		switch h.Type {
		case wire.TypeFeaturesRequest:
			out = make([]byte, 32)
			wire.PutHeader(out, wire.TypeFeaturesReply, 32, h.Xid)
			binary.BigEndian.PutUint64(out[8:], dpid)
			out[20] = 254
			need--
		case wire.TypeMultipartRequest:
			typ := binary.BigEndian.Uint16(msg[8:])
			body := 0
			if typ == wire.MultipartDesc {
				body = 1056
			}
			out = make([]byte, 16+body)
			wire.PutHeader(out, wire.TypeMultipartReply, uint16(len(out)), h.Xid)
			binary.BigEndian.PutUint16(out[8:], typ)
			need--
		case wire.TypeEchoRequest:
			out = wire.AppendEcho(nil, wire.TypeEchoReply, h.Xid, msg[8:])
		}
		if out != nil {
			if _, err := c.Write(out); err != nil {
				return err
			}
		}
	}
	return nil
}

// Clients that send echo requests and never read: each session holds at
// most one echo reply (it held up to 8 MiB of them, plus what the writer
// was sending), before and after the handshake.
func TestEchoFloodFromNonReadersIsBounded(t *testing.T) {
	rec := newPolicyRecorder()
	l := unixListener(t)
	srv := serve(t, l, Config{}, rec)
	addr := l.Addr().String()
	before, rssBefore := testenv.HeapInuse(), testenv.RSSKB()
	const clients = 40
	echo := wire.AppendEcho(nil, wire.TypeEchoRequest, 7, make([]byte, 60000))
	burst := make([]byte, 0, 16*len(echo))
	for range 16 {
		burst = append(burst, echo...)
	}
	var wg sync.WaitGroup
	var written atomic.Int64
	conns := make([]net.Conn, clients)
	for i := range clients {
		c, err := net.Dial("unix", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c
		t.Cleanup(func() { c.Close() })
		if i%2 == 0 { // half complete the handshake first, half never do
			if err := handshake(c, uint64(100+i)); err != nil {
				t.Fatal(err)
			}
		} else if _, err := c.Write(wire.AppendHello(nil, 1)); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetWriteDeadline(time.Now().Add(3 * time.Second))
			for range 5 { // 4.8 MB of echo requests each, never reading a reply
				n, err := c.Write(burst)
				written.Add(int64(n))
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	time.Sleep(100 * time.Millisecond) // the last requests read and answered
	var maxQueued, total int
	for _, s := range srv.Sessions() {
		q := s.QueuedBytes()
		maxQueued, total = max(maxQueued, q), total+q
	}
	after, rssAfter := testenv.HeapInuse(), testenv.RSSKB()
	t.Logf("%d non-reading clients wrote %d MB of echo requests: %d echo replies dropped; queued for them: %d KB in all, at most %d KB for one session; heap in use %d KB before, %d KB after; RSS %d MB before, %d MB after (the clients' own buffers included)",
		clients, written.Load()>>20, rec.echoDropped.Load(), total>>10, maxQueued>>10, before>>10, after>>10, rssBefore>>10, rssAfter>>10)
	if maxQueued >= 1<<20 {
		t.Errorf("one session queued %d bytes for a client that does not read", maxQueued)
	}
	if written.Load() < clients*4<<20 {
		t.Errorf("only %d MB written: the server stopped reading", written.Load()>>20)
	}
	if grown := int64(after) - int64(before); grown > 32<<20 {
		t.Errorf("heap grew %d MB for %d clients", grown>>20, clients)
	}
	if rec.echoDropped.Load() == 0 {
		t.Error("no echo reply dropped")
	}
}

// greeted reports whether the server sent its HELLO on c (false: it closed
// c without a word).
func greeted(t *testing.T, c net.Conn) bool {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	h, _, err := wire.ReadMessage(c)
	if err == nil {
		return h.Type == wire.TypeHello
	}
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "reset") {
		return false
	}
	t.Fatalf("neither a HELLO nor a close: %v", err)
	return false
}

// Over MaxConnsPerSource (per remote IP) or MaxConns, a connection is
// closed at once, and counted; a slot freed is taken again.
func TestConnectionLimits(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rec := newPolicyRecorder()
	serve(t, l, Config{MaxConns: 3, MaxConnsPerSource: 2}, rec)
	dial := func(from string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		c, err := d.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	a1, a2 := dial("127.0.0.1"), dial("127.0.0.1")
	if !greeted(t, a1) || !greeted(t, a2) {
		t.Fatal("the first two connections must be served")
	}
	if greeted(t, dial("127.0.0.1")) {
		t.Error("a third connection from one source must be refused")
	}
	b1 := dial("127.0.0.2")
	if !greeted(t, b1) {
		t.Fatal("another source must be served")
	}
	if greeted(t, dial("127.0.0.3")) {
		t.Error("a fourth connection must be refused (MaxConns 3)")
	}
	if rec.count(ReasonMaxConnsPerSource) != 1 || rec.count(ReasonMaxConns) != 1 {
		t.Errorf("refusals counted: %v", rec.refused)
	}
	// A closed session frees its slot.
	a1.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if greeted(t, dial("127.0.0.1")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the slot of a closed session was not freed")
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Every unix socket client is one source.
	ul := unixListener(t)
	serve(t, ul, Config{MaxConnsPerSource: 1}, newPolicyRecorder())
	u1, err := net.Dial("unix", ul.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer u1.Close()
	u2, err := net.Dial("unix", ul.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer u2.Close()
	if !greeted(t, u1) || greeted(t, u2) {
		t.Error("a second unix client must be refused with MaxConnsPerSource 1")
	}
}

// The cost of idle sessions: 1,000 clients complete the handshake and
// stay connected, silent. The figures (heap in use, RSS, goroutines) are
// logged for the record, not asserted; the clients hold only their socket
// (no goroutine, no buffer), so the figures are the server's.
func TestIdleSessionsFootprint(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 connections")
	}
	const n = 1000
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < 2*n+100 {
		lim.Cur = min(lim.Max, 2*n+100)
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	l := unixListener(t)
	rec := newPolicyRecorder()
	srv := serve(t, l, Config{MaxConnsPerSource: -1}, rec)
	before, rssBefore, gBefore := testenv.HeapInuse(), testenv.RSSKB(), runtime.NumGoroutine()
	for i := range n {
		c, err := net.Dial("unix", l.Addr().String())
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		t.Cleanup(func() { c.Close() })
		if err := handshake(c, uint64(1000+i)); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(srv.Sessions()) < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // the last Connected calls
	after, rssAfter, gAfter := testenv.HeapInuse(), testenv.RSSKB(), runtime.NumGoroutine()
	if got := len(srv.Sessions()); got != n {
		t.Fatalf("%d sessions, want %d", got, n)
	}
	t.Logf("%d idle sessions past the handshake: heap in use +%d KB (%d B each), RSS +%d MB (%d KB each), goroutines +%d",
		n, (int64(after)-int64(before))>>10, (int64(after)-int64(before))/n, (rssAfter-rssBefore)>>10, (rssAfter-rssBefore)/n, gAfter-gBefore)
}
