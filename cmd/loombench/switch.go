package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loom-sdn/loom/southbound/openflow/wire"
)

var be = binary.BigEndian

// epoch is the origin of the monotonic timestamps the switches keep.
var epoch = time.Now()

func nanotime() int64 { return int64(time.Since(epoch)) }

// Switch parameters.
const (
	numPorts       = 16  // ports per switch (hosts spread over them)
	numBuffers     = 256 // n_buffers in buffered mode
	frameLen       = 64  // the IPv4/UDP frame of every PACKET_IN
	pktInData      = 42  // offset of the frame in a PACKET_IN (match: in_port only)
	frameTagOff    = 42  // offset of the tag in the frame (UDP payload)
	portController = 0xfffffffd
	noBuffer       = 0xffffffff
	sweepEvery     = 250 * time.Millisecond
	readBufSize    = 256 << 10
)

// phases of a switch's traffic.
const (
	phaseIdle    int32 = iota // handshake and the controller's initial burst
	phaseTraffic              // keep the window full
	phaseStop                 // send nothing more
)

// counters are what one switch saw; the switch's goroutine adds, others read.
type counters struct {
	flowMods   atomic.Int64 // responses are FLOW_MODs + PACKET_OUTs
	packetOuts atomic.Int64
	answered   atomic.Int64 // PACKET_INs answered
	sent       atomic.Int64 // PACKET_INs sent
	lost       atomic.Int64 // PACKET_INs unanswered after the answer timeout
	latSum     atomic.Int64 // ns, send to answer, over answered PACKET_INs
	otherMods  atomic.Int64 // GROUP_MOD, METER_MOD, PORT_MOD, TABLE_MOD
	bundled    atomic.Int64 // messages added to bundles
	commits    atomic.Int64 // bundle commits
	barriers   atomic.Int64
	errors     atomic.Int64 // OFPT_ERROR received from the controller
	unknown    atomic.Int64 // messages answered with BAD_TYPE and the like
	_          [64]byte     // keep switches' counters off each other's cache lines
}

type slot struct {
	gen     uint16
	pending bool
	first   bool // a response arrived while it was in flight (latency mode)
	sentAt  int64
}

// fakeSwitch is one emulated switch.
type fakeSwitch struct {
	idx    int
	dpid   uint64
	conn   net.Conn
	macs   int
	window int
	buffered,
	latency bool // latency mode: record the first response of each PACKET_IN
	answerTimeout int64

	phase      atomic.Int32
	loop       atomic.Int32 // recorded with latency samples (0 = warm-up)
	featured   atomic.Bool  // FEATURES_REPLY sent
	lastRx     atomic.Int64 // nanotime of the last read that returned data
	c          counters
	missTable  uint8
	missCookie uint64
	missSeen   bool
	missReport atomic.Int32 // 1 + missTable once seen, for the report

	rbuf []byte
	out  []byte
	tmpl []byte // PACKET_IN template (header .. frame)
	dst  []int32

	slots   []slot
	free    []uint16
	pending int
	next    int

	mpPending map[uint32]uint16 // multipart requests with REQ_MORE, by xid

	latMu sync.Mutex
	lat   [][]int64 // samples (ns) by loop

	err  error
	done chan struct{}
}

// hostMAC is host h of switch s: 02:ss:ss:hh:hh:hh.
func hostMAC(s, h int) [6]byte {
	return [6]byte{0x02, byte(s >> 8), byte(s), byte(h >> 16), byte(h >> 8), byte(h)}
}

func hostPort(h int) uint32 { return uint32(1 + h%numPorts) }

func newSwitch(idx int, conn net.Conn, o *options) *fakeSwitch {
	window := o.window
	if o.mode == "latency" {
		window = 1
	}
	s := &fakeSwitch{
		idx: idx, dpid: uint64(idx + 1), conn: conn, macs: o.macs, window: window,
		buffered: o.buffered, latency: o.mode == "latency", answerTimeout: int64(o.answerTimeout),
		rbuf: make([]byte, readBufSize), out: make([]byte, 0, 64<<10),
		slots: make([]slot, window), free: make([]uint16, 0, window),
		mpPending: map[uint32]uint16{}, done: make(chan struct{}),
	}
	for i := window - 1; i >= 0; i-- {
		s.free = append(s.free, uint16(i))
	}
	// Each host sends to the next host on another port.
	s.dst = make([]int32, s.macs)
	for h := range s.macs {
		d := (h + 1) % s.macs
		for k := 1; k < s.macs && hostPort(d) == hostPort(h); k++ {
			d = (h + 1 + k) % s.macs
		}
		s.dst[h] = int32(d)
	}
	s.tmpl = packetInTemplate()
	return s
}

// packetInTemplate builds a PACKET_IN of a 64-byte IPv4/UDP frame; MACs,
// in_port, xid, buffer_id and tag are patched per packet.
func packetInTemplate() []byte {
	b := make([]byte, pktInData+frameLen)
	wire.PutHeader(b, wire.TypePacketIn, uint16(len(b)), 0)
	be.PutUint32(b[8:], noBuffer)
	be.PutUint16(b[12:], frameLen) // total_len
	b[14] = wire.PacketInNoMatch
	copy(b[24:], []byte{0, 1, 0, 12, 0x80, 0, 0, 4}) // OXM match: in_port
	f := b[pktInData:]
	be.PutUint16(f[12:], 0x0800)
	ip := f[14:34]
	ip[0], ip[8], ip[9] = 0x45, 64, 17
	be.PutUint16(ip[2:], frameLen-14)
	copy(ip[12:], []byte{10, 0, 0, 1, 10, 0, 0, 2})
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(be.Uint16(ip[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	be.PutUint16(ip[10:], ^uint16(sum))
	udp := f[34:42]
	be.PutUint16(udp, 5000)
	be.PutUint16(udp[2:], 5001)
	be.PutUint16(udp[4:], frameLen-34)
	copy(f[frameTagOff+4:], "loombench")
	return b
}

// start sets the traffic phase and wakes the switch's goroutine.
func (s *fakeSwitch) setPhase(p int32) {
	s.phase.Store(p)
	s.conn.SetReadDeadline(time.Now())
}

// run is the switch's goroutine: it ends when the connection does.
func (s *fakeSwitch) run() {
	defer close(s.done)
	s.out = wire.AppendHello(s.out[:0], 1)
	if err := s.flush(); err != nil {
		s.err = err
		return
	}
	n := 0
	lastSweep := nanotime()
	s.conn.SetReadDeadline(time.Now().Add(sweepEvery))
	for {
		m, err := s.conn.Read(s.rbuf[n:])
		now := nanotime()
		if m > 0 {
			s.lastRx.Store(now)
		}
		n += m
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			if s.phase.Load() != phaseStop {
				s.err = err
			}
			return
		}
		off := 0
		for n-off >= wire.HeaderLen {
			l := int(be.Uint16(s.rbuf[off+2:]))
			if l < wire.HeaderLen {
				s.err = fmt.Errorf("bad message length %d", l)
				s.conn.Close()
				return
			}
			if n-off < l {
				break
			}
			s.handle(s.rbuf[off:off+l], now)
			off += l
		}
		if off > 0 {
			n = copy(s.rbuf, s.rbuf[off:n])
		}
		ph := s.phase.Load()
		if err != nil || now-lastSweep >= int64(sweepEvery) {
			if ph == phaseTraffic {
				s.sweep(now)
			}
			lastSweep = now
			s.conn.SetReadDeadline(time.Now().Add(sweepEvery))
		}
		if ph == phaseTraffic {
			s.fill(now)
		}
		if err := s.flush(); err != nil {
			if s.phase.Load() != phaseStop {
				s.err = err
			}
			return
		}
	}
}

func (s *fakeSwitch) flush() error {
	if len(s.out) == 0 {
		return nil
	}
	_, err := s.conn.Write(s.out)
	s.out = s.out[:0]
	return err
}

// fill sends PACKET_INs until the window is full.
func (s *fakeSwitch) fill(now int64) {
	for s.pending < s.window && len(s.free) > 0 {
		i := s.free[len(s.free)-1]
		s.free = s.free[:len(s.free)-1]
		sl := &s.slots[i]
		sl.gen++
		sl.pending, sl.first, sl.sentAt = true, false, now
		tag := uint32(i+1)<<16 | uint32(sl.gen)
		h := s.next
		if s.next++; s.next == s.macs {
			s.next = 0
		}
		n := len(s.out)
		s.out = append(s.out, s.tmpl...)
		b := s.out[n:]
		wire.SetXid(b, tag)
		if s.buffered {
			be.PutUint32(b[8:], tag)
		}
		b[15] = s.missTable
		be.PutUint64(b[16:], s.missCookie)
		be.PutUint32(b[32:], hostPort(h))
		f := b[pktInData:]
		dm, sm := hostMAC(s.idx, int(s.dst[h])), hostMAC(s.idx, h)
		copy(f[0:6], dm[:])
		copy(f[6:12], sm[:])
		be.PutUint32(f[frameTagOff:], tag)
		s.pending++
		s.c.sent.Add(1)
	}
}

// answer completes the PACKET_IN tagged tag, if it is in flight.
func (s *fakeSwitch) answer(tag uint32, now int64) {
	i := int(tag>>16) - 1
	if i < 0 || i >= len(s.slots) {
		return
	}
	sl := &s.slots[i]
	if !sl.pending || sl.gen != uint16(tag) {
		return
	}
	sl.pending = false
	s.free = append(s.free, uint16(i))
	s.pending--
	s.c.answered.Add(1)
	s.c.latSum.Add(now - sl.sentAt)
}

// response notes a FLOW_MOD or PACKET_OUT: in latency mode, the first one
// while a PACKET_IN is in flight gives its latency.
func (s *fakeSwitch) response(now int64) {
	if !s.latency || s.pending == 0 {
		return
	}
	for i := range s.slots {
		if sl := &s.slots[i]; sl.pending && !sl.first {
			sl.first = true
			s.recordLatency(now - sl.sentAt)
		}
	}
}

func (s *fakeSwitch) recordLatency(ns int64) {
	l := int(s.loop.Load())
	s.latMu.Lock()
	for len(s.lat) <= l {
		s.lat = append(s.lat, nil)
	}
	s.lat[l] = append(s.lat[l], ns)
	s.latMu.Unlock()
}

// latencies returns the samples of loop l.
func (s *fakeSwitch) latencies(l int) []int64 {
	s.latMu.Lock()
	defer s.latMu.Unlock()
	if l < len(s.lat) {
		return s.lat[l]
	}
	return nil
}

// sweep gives up on PACKET_INs unanswered for longer than the answer
// timeout: they count as lost and their places in the window are reused.
func (s *fakeSwitch) sweep(now int64) {
	if s.pending == 0 {
		return
	}
	for i := range s.slots {
		sl := &s.slots[i]
		if sl.pending && now-sl.sentAt > s.answerTimeout {
			sl.pending = false
			s.free = append(s.free, uint16(i))
			s.pending--
			s.c.lost.Add(1)
		}
	}
}

func (s *fakeSwitch) reply(typ uint8, xid uint32, body ...[]byte) {
	l := wire.HeaderLen
	for _, b := range body {
		l += len(b)
	}
	n := len(s.out)
	s.out = append(s.out, make([]byte, wire.HeaderLen)...)
	wire.PutHeader(s.out[n:], typ, uint16(l), xid)
	for _, b := range body {
		s.out = append(s.out, b...)
	}
}

// handle processes one message from the controller.
func (s *fakeSwitch) handle(msg []byte, now int64) {
	typ, xid := msg[1], wire.Xid(msg)
	switch typ {
	case wire.TypeHello, wire.TypeEchoReply, wire.TypeSetAsync:
	case wire.TypeError:
		s.c.errors.Add(1)
	case wire.TypeEchoRequest:
		s.out = wire.AppendEcho(s.out, wire.TypeEchoReply, xid, msg[wire.HeaderLen:])
	case wire.TypeFeaturesRequest:
		var body [24]byte
		be.PutUint64(body[0:], s.dpid)
		if s.buffered {
			be.PutUint32(body[8:], numBuffers)
		}
		body[12] = 254                                // n_tables
		be.PutUint32(body[16:], 0x1|0x2|0x4|0x8|0x40) // flow, table, port, group stats; port blocked
		s.reply(wire.TypeFeaturesReply, xid, body[:])
		s.featured.Store(true)
	case wire.TypeGetConfigRequest:
		s.reply(wire.TypeGetConfigReply, xid, []byte{0, 0, 0xff, 0xff})
	case wire.TypeSetConfig:
	case wire.TypeGetAsyncRequest:
		var body [24]byte
		be.PutUint32(body[0:], 0x7)  // packet-in: all reasons (master)
		be.PutUint32(body[8:], 0x7)  // port status: all (master)
		be.PutUint32(body[12:], 0x7) // port status: all (slave)
		be.PutUint32(body[16:], 0xf) // flow removed: all (master)
		s.reply(wire.TypeGetAsyncReply, xid, body[:])
	case wire.TypeBarrierRequest:
		s.c.barriers.Add(1)
		s.reply(wire.TypeBarrierReply, xid)
	case wire.TypeRoleRequest:
		if len(msg) < 24 {
			s.errorReply(msg, wire.ErrBadRequest, 6) // BAD_LEN
			return
		}
		body := msg[8:24]
		if be.Uint32(body) == wire.RoleNoChange {
			var b [16]byte
			be.PutUint32(b[:], wire.RoleEqual)
			body = b[:]
		}
		s.reply(wire.TypeRoleReply, xid, body)
	case wire.TypeQueueGetConfigRequest:
		if len(msg) < 16 {
			s.errorReply(msg, wire.ErrBadRequest, 6)
			return
		}
		s.reply(wire.TypeQueueGetConfigReply, xid, msg[8:16]) // port, pad: no queues
	case wire.TypeMultipartRequest:
		s.multipart(msg)
	case wire.TypePacketOut:
		s.c.packetOuts.Add(1)
		s.response(now)
		s.packetOut(msg, now)
	case wire.TypeFlowMod:
		s.c.flowMods.Add(1)
		s.response(now)
		s.flowMod(msg, now, false)
	case wire.TypeGroupMod, wire.TypeMeterMod, wire.TypePortMod, wire.TypeTableMod:
		s.c.otherMods.Add(1)
	case wire.TypeExperimenter:
		s.experimenter(msg, now)
	default:
		s.c.unknown.Add(1)
		s.errorReply(msg, wire.ErrBadRequest, wire.BadRequestBadType)
	}
}

func (s *fakeSwitch) errorReply(msg []byte, typ, code uint16) {
	s.out = wire.AppendError(s.out, wire.Xid(msg), typ, code, msg)
}

// packetOut answers the PACKET_IN a PACKET_OUT names by buffer, by frame
// or by xid.
func (s *fakeSwitch) packetOut(msg []byte, now int64) {
	if len(msg) < 24 {
		return
	}
	if buf := be.Uint32(msg[8:]); buf != noBuffer {
		s.answer(buf, now)
		return
	}
	data := 24 + int(be.Uint16(msg[16:]))
	if data+frameTagOff+4 <= len(msg) {
		s.answer(be.Uint32(msg[data+frameTagOff:]), now)
		return
	}
	s.answer(wire.Xid(msg), now)
}

// flowMod answers the PACKET_IN a FLOW_MOD names by buffer or (the ceiling
// controller) by xid, and looks for the table-miss flow while the
// controller sets the switch up. bundled flow-mods answer nothing.
func (s *fakeSwitch) flowMod(msg []byte, now int64, bundled bool) {
	if len(msg) < 56 {
		return
	}
	if !bundled {
		if buf := be.Uint32(msg[32:]); buf != noBuffer {
			s.answer(buf, now)
		} else {
			s.answer(wire.Xid(msg), now)
		}
	}
	if be.Uint16(msg[30:]) != 0 || msg[25] != 0 || be.Uint16(msg[50:]) != 4 || s.phase.Load() != phaseIdle {
		return // not an add of a priority-0 match-all flow during set-up
	}
	table := msg[24]
	if s.missSeen && table >= s.missTable {
		return
	}
	if toController(msg[56:]) {
		s.missSeen, s.missTable, s.missCookie = true, table, be.Uint64(msg[8:])
		s.missReport.Store(int32(table) + 1)
	}
}

// toController reports whether instructions hold an APPLY_ACTIONS that
// outputs to CONTROLLER.
func toController(ins []byte) bool {
	for len(ins) >= 8 {
		t, l := be.Uint16(ins), int(be.Uint16(ins[2:]))
		if l < 8 || l > len(ins) {
			return false
		}
		if t == 4 { // APPLY_ACTIONS
			for acts := ins[8:l]; len(acts) >= 8; {
				at, al := be.Uint16(acts), int(be.Uint16(acts[2:]))
				if al < 8 || al > len(acts) {
					return false
				}
				if at == 0 && al >= 16 && be.Uint32(acts[4:]) == portController {
					return true
				}
				acts = acts[al:]
			}
		}
		ins = ins[l:]
	}
	return false
}

// experimenter accepts ONF bundles and refuses the rest.
func (s *fakeSwitch) experimenter(msg []byte, now int64) {
	if len(msg) < 24 || be.Uint32(msg[8:]) != wire.ExperimenterONF {
		s.errorReply(msg, wire.ErrBadRequest, 3) // BAD_EXPERIMENTER
		return
	}
	id := be.Uint32(msg[16:])
	switch be.Uint32(msg[12:]) {
	case wire.BundleControlType:
		typ, flags := be.Uint16(msg[20:]), be.Uint16(msg[22:])
		if typ == wire.BundleCommitRequest {
			s.c.commits.Add(1)
		}
		if typ > wire.BundleDiscardRequest || typ%2 != 0 {
			s.errorReply(msg, wire.ErrBadRequest, 4) // BAD_EXP_TYPE
			return
		}
		s.out = wire.AppendBundleControl(s.out, wire.Xid(msg), id, typ+1, flags)
	case wire.BundleAddType:
		s.c.bundled.Add(1)
		inner := msg[24:]
		if len(inner) >= wire.HeaderLen && inner[1] == wire.TypeFlowMod {
			s.flowMod(inner, now, true)
		}
	default:
		s.errorReply(msg, wire.ErrBadRequest, 4) // BAD_EXP_TYPE
	}
}

// multipart answers a multipart request: DESC and PORT_DESC with content,
// the other tables empty. A request with REQ_MORE is answered after its
// last part.
func (s *fakeSwitch) multipart(msg []byte) {
	if len(msg) < 16 {
		s.errorReply(msg, wire.ErrBadRequest, 6)
		return
	}
	typ, flags, xid := be.Uint16(msg[8:]), be.Uint16(msg[10:]), wire.Xid(msg)
	if flags&wire.MultipartMore != 0 {
		s.mpPending[xid] = typ
		return
	}
	delete(s.mpPending, xid)
	switch typ {
	case wire.MultipartDesc:
		var d [1056]byte
		copy(d[0:], "Loom")
		copy(d[256:], "loombench emulated switch")
		copy(d[512:], "loombench")
		copy(d[768:], fmt.Sprintf("%d", s.idx))
		copy(d[800:], fmt.Sprintf("bench switch %d", s.idx))
		s.multipartReply(typ, xid, d[:], len(d))
	case wire.MultipartPortDesc:
		ports := make([]byte, 0, numPorts*64)
		for p := 1; p <= numPorts; p++ {
			var b [64]byte
			be.PutUint32(b[0:], uint32(p))
			copy(b[8:14], []byte{0x02, 0xff, byte(s.idx >> 8), byte(s.idx), 0, byte(p)})
			copy(b[16:32], fmt.Sprintf("s%d-eth%d", s.idx+1, p))
			be.PutUint32(b[36:], 0x4)        // state: live
			be.PutUint32(b[40:], 0x20|0x800) // curr: 10GB_FD, copper
			be.PutUint32(b[56:], 10_000_000) // curr_speed (kbps)
			be.PutUint32(b[60:], 10_000_000) // max_speed
			ports = append(ports, b[:]...)
		}
		s.multipartReply(typ, xid, ports, 64)
	case wire.MultipartAggregate:
		s.multipartReply(typ, xid, make([]byte, 24), 24)
	case wire.MultipartExperiment:
		s.errorReply(msg, wire.ErrBadRequest, 2) // BAD_MULTIPART
	default: // FLOW, GROUP_DESC, METER_CONFIG, statistics, features: empty
		s.multipartReply(typ, xid, nil, 1)
	}
}

// multipartReply sends entries (each entrySize bytes) in as many parts as
// needed, every part but the last flagged REPLY_MORE.
func (s *fakeSwitch) multipartReply(typ uint16, xid uint32, entries []byte, entrySize int) {
	per := (wire.MaxMessageLen - wire.HeaderLen - 8) / entrySize * entrySize
	for first := true; first || len(entries) > 0; first = false {
		part := entries[:min(per, len(entries))]
		entries = entries[len(part):]
		var hdr [8]byte
		be.PutUint16(hdr[0:], typ)
		if len(entries) > 0 {
			be.PutUint16(hdr[2:], wire.MultipartMore)
		}
		s.reply(wire.TypeMultipartReply, xid, hdr[:], part)
	}
}
