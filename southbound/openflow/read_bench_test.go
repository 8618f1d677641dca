package openflow

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/loom-sdn/loom/southbound/openflow/emu"
	"github.com/loom-sdn/loom/southbound/openflow/wire"
)

// counter counts the messages it is given and the reader's idle moments.
type counter struct {
	recorder
	msgs, idles atomic.Int64
	mu          sync.Mutex
	cond        *sync.Cond
}

func (c *counter) Message(*Session, wire.Header, []byte) { c.msgs.Add(1) }

// ReadIdle wakes the benchmark once per burst.
func (c *counter) ReadIdle(*Session) {
	c.idles.Add(1)
	c.mu.Lock()
	c.cond.Broadcast()
	c.mu.Unlock()
}

// BenchmarkReader is the session reader's own cost per message: an
// emulated switch sends bursts of 64 PACKET_INs (one write each, up to 8
// bursts in flight) to a handler that only counts them, so what is measured is reading, framing,
// dispatch and the bracketing of every Handler call (enter, leave: the
// watchdog). One op is one message.
func BenchmarkReader(b *testing.B) {
	l, err := net.Listen("unix", b.TempDir()+"/of.sock")
	if err != nil {
		b.Fatal(err)
	}
	h := &counter{recorder: recorder{up: make(chan *Session, 1)}}
	h.cond = sync.NewCond(&h.mu)
	ctx, cancel := context.WithCancel(context.Background())
	srv := &Server{Handler: h, Log: quietLog()}
	go srv.Serve(ctx, l)
	defer func() { cancel(); srv.Wait() }()
	sw, err := emu.Dial("unix", l.Addr().String(), emu.Options{DatapathID: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer sw.Close()
	<-h.up
	const burst, window = 64, 8 * 64 // messages per write, most in flight
	var msgs []byte
	for i := 0; i < burst; i++ {
		msgs = emu.AppendPacketIn(msgs, uint32(i), 1, 0, 0, 0, make([]byte, 64))
	}
	b.ReportAllocs()
	b.ResetTimer()
	sent := 0
	for sent < b.N {
		n := min(burst, b.N-sent)
		sw.Send(msgs[:n*len(msgs)/burst])
		sent += n
		h.mu.Lock()
		for h.msgs.Load() < int64(sent-window) {
			h.cond.Wait()
		}
		h.mu.Unlock()
	}
	h.mu.Lock()
	for h.msgs.Load() < int64(sent) {
		h.cond.Wait()
	}
	h.mu.Unlock()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/float64(max(h.idles.Load(), 1)), "msgs/idle")
}
