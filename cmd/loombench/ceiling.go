package main

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"

	"github.com/loom-sdn/loom/southbound/openflow/wire"
)

// ceilingFlowMod is the one FLOW_MOD the ceiling controller answers every
// PACKET_IN with: table 0, priority 1, in_port=1,dl_src=..,dl_dst=..
// actions=output:2. Its xid and buffer_id are patched per answer.
var ceilingFlowMod = func() []byte {
	match := []byte{
		0, 1, 0, 0, // OXM match, length set below
		0x80, 0, 0, 4, 0, 0, 0, 1, // in_port=1
		0x80, 0, 6, 6, 2, 0, 0, 0, 0, 2, // eth_dst
		0x80, 0, 8, 6, 2, 0, 0, 0, 0, 1, // eth_src
	}
	be.PutUint16(match[2:], uint16(len(match)))
	for len(match)%8 != 0 {
		match = append(match, 0)
	}
	ins := []byte{0, 4, 0, 24, 0, 0, 0, 0, // APPLY_ACTIONS
		0, 0, 0, 16, 0, 0, 0, 2, 0xff, 0xff, 0, 0, 0, 0, 0, 0} // output:2
	b := make([]byte, 48, 48+len(match)+len(ins))
	b = append(append(b, match...), ins...)
	wire.PutHeader(b, wire.TypeFlowMod, uint16(len(b)), 0)
	// cookie, cookie mask 0; table 0, ADD; idle 0, hard 0; priority 1
	be.PutUint16(b[30:], 1)
	be.PutUint32(b[32:], noBuffer)
	be.PutUint32(b[36:], wire.PortAny)
	be.PutUint32(b[40:], wire.GroupAny)
	return b
}()

// ceiling runs the do-nothing controller on l until ctx ends.
func ceiling(ctx context.Context, l net.Listener) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	go func() {
		<-ctx.Done()
		l.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	defer wg.Wait()
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetNoDelay(true)
		}
		mu.Lock()
		conns[c] = true
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			serveCeiling(c)
			mu.Lock()
			delete(conns, c)
			mu.Unlock()
		}()
	}
}

// serveCeiling is one switch's connection: HELLO and FEATURES_REQUEST,
// echo, and one FLOW_MOD per PACKET_IN; everything else is ignored.
func serveCeiling(c net.Conn) error {
	defer c.Close()
	out := wire.AppendHello(make([]byte, 0, 64<<10), 1)
	out = wire.AppendEmpty(out, wire.TypeFeaturesRequest, 2)
	if _, err := c.Write(out); err != nil {
		return err
	}
	buf := make([]byte, readBufSize)
	n := 0
	for {
		m, err := c.Read(buf[n:])
		n += m
		if err != nil {
			if errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrClosed) {
				return nil
			}
			return err
		}
		out = out[:0]
		off := 0
		for n-off >= wire.HeaderLen {
			l := int(be.Uint16(buf[off+2:]))
			if l < wire.HeaderLen {
				return errors.New("bad message length")
			}
			if n-off < l {
				break
			}
			msg := buf[off : off+l]
			switch msg[1] {
			case wire.TypePacketIn:
				k := len(out)
				out = append(out, ceilingFlowMod...)
				wire.SetXid(out[k:], wire.Xid(msg))
				if l >= 12 {
					copy(out[k+32:k+36], msg[8:12])
				}
			case wire.TypeEchoRequest:
				out = wire.AppendEcho(out, wire.TypeEchoReply, wire.Xid(msg), msg[wire.HeaderLen:])
			}
			off += l
		}
		n = copy(buf, buf[off:n])
		if len(out) > 0 {
			if _, err := c.Write(out); err != nil {
				return err
			}
		}
	}
}
