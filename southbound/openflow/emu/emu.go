// Package emu is an emulated OpenFlow 1.3 switch: enough of a switch to
// test and benchmark a controller without Open vSwitch. It answers the
// handshake, echo, barrier, role and the multipart requests a controller
// makes (PORT_DESC, DESC, FLOW, GROUP_DESC, METER_CONFIG, split into parts
// with REPLY_MORE), keeps a flow, group and meter table that FLOW_MOD,
// GROUP_MOD, METER_MOD and ONF bundles change, and sends PACKET_INs and
// PORT_STATUS on demand.
package emu

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/loom-sdn/loom/southbound/openflow/flow"
	"github.com/loom-sdn/loom/southbound/openflow/wire"
)

// Options configure an emulated switch.
type Options struct {
	DatapathID uint64
	Ports      []wire.Port
	// HelloVersion and HelloBitmap override what the switch offers
	// (default: 1.3 with a bitmap of 1.3).
	HelloVersion uint8
	HelloBitmap  uint32
	// EntriesPerPart splits FLOW replies into parts of this many entries
	// (default 50).
	EntriesPerPart int
	// NoEcho makes the switch ignore ECHO_REQUESTs (and send nothing on
	// its own), to test the controller's liveness check.
	NoEcho bool
	// NoBundles makes the switch refuse bundles, as old switches do.
	NoBundles bool
	// OnPacketOut is called for every PACKET_OUT (on the reader goroutine).
	OnPacketOut func(msg []byte)
	// CountOnly makes the switch count FLOW_MOD, GROUP_MOD and METER_MOD
	// messages without applying them, and read every message into one
	// reused buffer: a switch that costs (almost) nothing, for
	// benchmarks. OnPacketOut's message is then valid only during the call.
	CountOnly bool
	// Flows, Groups and Meters the switch has when it connects, as if
	// left by an earlier controller.
	Flows  []*flow.Flow
	Groups []*flow.Group
	Meters []*flow.Meter
	// Datapath, if set, is the tables this connection shares with other
	// connections to it (Flows, Groups and Meters are then ignored): one
	// switch connected to several controllers, with OpenFlow roles.
	Datapath *Datapath
}

// Datapath is a switch's tables: flows, groups, meters and its OpenFlow
// role generation. Connections made with the same Options.Datapath share
// them, as the connections of one Open vSwitch bridge to several
// controllers do.
type Datapath struct {
	mu           sync.Mutex
	changed      chan struct{} // closed (and replaced) by every table change
	flushedZones []uint16      // NXT_CT_FLUSH_ZONE requests, in order
	flows        map[flow.Key]*flow.Flow
	groups       map[uint32]*flow.Group
	meters       map[uint32]*flow.Meter
	bundles      map[uint32][][]byte
	conns        map[*Switch]bool
	// The role generation id: set by the first MASTER or SLAVE request
	// (genSet); a request with an older one is refused as stale, as
	// Open vSwitch does.
	gen    uint64
	genSet bool
	// Counters of role requests refused as stale.
	StaleRoleRequests atomic.Int64
}

// NewDatapath makes a datapath with these tables.
func NewDatapath(flows []*flow.Flow, groups []*flow.Group, meters []*flow.Meter) *Datapath {
	dp := &Datapath{changed: make(chan struct{}), flows: map[flow.Key]*flow.Flow{}, groups: map[uint32]*flow.Group{},
		meters: map[uint32]*flow.Meter{}, bundles: map[uint32][][]byte{}, conns: map[*Switch]bool{}}
	for _, f := range flows {
		dp.flows[f.Key()] = f
	}
	for _, g := range groups {
		dp.groups[g.ID] = g
	}
	for _, m := range meters {
		dp.meters[m.ID] = m
	}
	return dp
}

// Counters of what the controller sent.
type Counters struct {
	FlowMods, GroupMods, MeterMods, PacketOuts, Barriers, BundleCommits atomic.Int64
	// SlaveRefusals counts the state changes refused because this
	// connection was a slave.
	SlaveRefusals atomic.Int64
}

// Switch is a connected emulated switch.
type Switch struct {
	opt  Options
	conn net.Conn
	br   *bufio.Reader

	wmu sync.Mutex
	bw  *bufio.Writer

	// The datapath's tables, shared by every connection to it.
	*Datapath
	role    uint32 // this connection's OpenFlow role (dp.mu)
	missLen uint16

	Counters Counters
	// Errors received from the controller (e.g. HELLO_FAILED).
	Errors chan *wire.Error

	gate sync.Mutex // held while paused: the reader stops reading
	rbuf []byte     // CountOnly: the reused read buffer

	done chan struct{}
	err  error
}

// Dial connects to a controller ("tcp" or "unix" network) and runs the
// switch until the connection ends or Close is called.
func Dial(network, addr string, opt Options) (*Switch, error) {
	c, err := net.Dial(network, addr)
	if err != nil {
		return nil, err
	}
	return Run(c, opt), nil
}

// Run runs an emulated switch over an established connection.
func Run(c net.Conn, opt Options) *Switch {
	if opt.HelloVersion == 0 {
		opt.HelloVersion = wire.Version
	}
	if opt.HelloBitmap == 0 && opt.HelloVersion == wire.Version {
		opt.HelloBitmap = 1 << wire.Version
	}
	if opt.EntriesPerPart == 0 {
		opt.EntriesPerPart = 50
	}
	dp := opt.Datapath
	if dp == nil {
		dp = NewDatapath(opt.Flows, opt.Groups, opt.Meters)
	}
	s := &Switch{
		opt: opt, conn: c, br: bufio.NewReaderSize(c, 64<<10), bw: bufio.NewWriterSize(c, 64<<10),
		Datapath: dp, role: wire.RoleEqual, Errors: make(chan *wire.Error, 16), done: make(chan struct{}),
	}
	dp.mu.Lock()
	dp.conns[s] = true
	dp.mu.Unlock()
	hello := make([]byte, 8, 16)
	wire.PutHeader(hello, wire.TypeHello, 8, 1)
	hello[0] = opt.HelloVersion
	if opt.HelloBitmap != 0 {
		hello = append(hello, 0, 1, 0, 8, 0, 0, 0, 0)
		binary.BigEndian.PutUint32(hello[12:], opt.HelloBitmap)
		binary.BigEndian.PutUint16(hello[2:], 16)
	}
	s.write(hello)
	go s.loop()
	return s
}

// Done is closed when the connection ends.
func (s *Switch) Done() <-chan struct{} { return s.done }

// Err is why the connection ended.
func (s *Switch) Err() error { <-s.done; return s.err }

// Close closes the connection.
func (s *Switch) Close() { s.conn.Close(); <-s.done }

func (s *Switch) write(msgs ...[]byte) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	for _, m := range msgs {
		s.bw.Write(m)
	}
	s.bw.Flush()
}

// Pause makes the switch stop reading from the controller, like a switch
// that hangs; Resume undoes it.
func (s *Switch) Pause()  { s.gate.Lock() }
func (s *Switch) Resume() { s.gate.Unlock() }

// Send writes raw bytes to the controller.
func (s *Switch) Send(b []byte) { s.write(b) }

func (s *Switch) loop() {
	defer close(s.done)
	defer func() {
		s.mu.Lock()
		delete(s.conns, s)
		s.mu.Unlock()
	}()
	for {
		s.gate.Lock()
		s.gate.Unlock()
		var h wire.Header
		var msg []byte
		var err error
		if s.opt.CountOnly {
			h, msg, err = s.readReused()
		} else {
			h, msg, err = wire.ReadMessage(s.br)
		}
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				err = nil
			}
			s.err = err
			s.conn.Close()
			return
		}
		if err := s.handle(h, msg); err != nil {
			s.err = err
			s.conn.Close()
			return
		}
	}
}

// readReused reads one message into a buffer reused for the next one.
func (s *Switch) readReused() (wire.Header, []byte, error) {
	if cap(s.rbuf) < wire.MaxMessageLen {
		s.rbuf = make([]byte, wire.MaxMessageLen)
	}
	b := s.rbuf[:wire.HeaderLen]
	if _, err := io.ReadFull(s.br, b); err != nil {
		return wire.Header{}, nil, err
	}
	h, _ := wire.ParseHeader(b)
	if err := wire.CheckHeader(h); err != nil {
		return h, nil, err
	}
	b = s.rbuf[:h.Length]
	_, err := io.ReadFull(s.br, b[wire.HeaderLen:])
	return h, b, err
}

func reply(typ uint8, xid uint32, body []byte) []byte {
	b := make([]byte, wire.HeaderLen, wire.HeaderLen+len(body))
	wire.PutHeader(b, typ, uint16(wire.HeaderLen+len(body)), xid)
	return append(b, body...)
}

func (s *Switch) handle(h wire.Header, msg []byte) error {
	switch h.Type {
	case wire.TypeHello:
	case wire.TypeError:
		e, err := wire.DecodeError(msg)
		if err != nil {
			return err
		}
		select {
		case s.Errors <- e:
		default:
		}
	case wire.TypeEchoRequest:
		if !s.opt.NoEcho {
			s.write(reply(wire.TypeEchoReply, h.Xid, msg[8:]))
		}
	case wire.TypeFeaturesRequest:
		body := make([]byte, 24)
		binary.BigEndian.PutUint64(body, s.opt.DatapathID)
		body[12] = 254 // tables
		binary.BigEndian.PutUint32(body[16:], 0x4f)
		s.write(reply(wire.TypeFeaturesReply, h.Xid, body))
	case wire.TypeSetConfig:
		s.mu.Lock()
		s.missLen = binary.BigEndian.Uint16(msg[10:])
		s.mu.Unlock()
	case wire.TypeSetAsync:
	case wire.TypeBarrierRequest:
		s.Counters.Barriers.Add(1)
		s.write(reply(wire.TypeBarrierReply, h.Xid, nil))
	case wire.TypeRoleRequest:
		return s.roleRequest(h, msg)
	case wire.TypeMultipartRequest:
		return s.multipart(h, msg)
	case wire.TypePacketOut:
		if s.refuseSlave(h, msg) {
			return nil
		}
		s.Counters.PacketOuts.Add(1)
		if s.opt.OnPacketOut != nil {
			s.opt.OnPacketOut(msg)
		}
	case wire.TypeFlowMod, wire.TypeGroupMod, wire.TypeMeterMod:
		if s.refuseSlave(h, msg) {
			return nil
		}
		if s.opt.CountOnly {
			switch h.Type {
			case wire.TypeFlowMod:
				s.Counters.FlowMods.Add(1)
			case wire.TypeGroupMod:
				s.Counters.GroupMods.Add(1)
			default:
				s.Counters.MeterMods.Add(1)
			}
			return nil
		}
		s.mu.Lock()
		err := s.apply(msg)
		s.mu.Unlock()
		if err != nil {
			typ := map[uint8]uint16{wire.TypeFlowMod: wire.ErrFlowModFailed, wire.TypeGroupMod: wire.ErrGroupModFailed,
				wire.TypeMeterMod: wire.ErrMeterModFailed}[h.Type]
			s.write(wire.AppendError(nil, h.Xid, typ, 0, msg))
		}
	case wire.TypeExperimenter:
		return s.experimenter(h, msg)
	default:
		s.write(wire.AppendError(nil, h.Xid, wire.ErrBadRequest, wire.BadRequestBadType, msg))
	}
	return nil
}

// refuseSlave answers a state change from a slave connection with
// BAD_REQUEST/IS_SLAVE, as Open vSwitch does, and says whether it did.
func (s *Switch) refuseSlave(h wire.Header, msg []byte) bool {
	s.mu.Lock()
	slave := s.role == wire.RoleSlave
	s.mu.Unlock()
	if slave {
		s.Counters.SlaveRefusals.Add(1)
		s.write(wire.AppendError(nil, h.Xid, wire.ErrBadRequest, wire.BadRequestIsSlave, msg[:min(len(msg), 64)]))
	}
	return slave
}

// roleRequest changes the connection's role as Open vSwitch does: MASTER
// and SLAVE carry a generation id, and one older than the datapath's
// (compared as a signed difference) is refused as stale; a new master
// makes the datapath's other master a slave and tells it (ROLE_STATUS).
func (s *Switch) roleRequest(h wire.Header, msg []byte) error {
	if len(msg) < 24 {
		return fmt.Errorf("emu: role request of %d bytes", len(msg))
	}
	role, gen := binary.BigEndian.Uint32(msg[8:]), binary.BigEndian.Uint64(msg[16:])
	var demoted []*Switch
	s.mu.Lock()
	switch role {
	case wire.RoleMaster, wire.RoleSlave:
		if s.genSet && int64(gen-s.gen) < 0 {
			s.mu.Unlock()
			s.StaleRoleRequests.Add(1)
			s.write(wire.AppendError(nil, h.Xid, wire.ErrRoleRequestFailed, wire.RoleRequestFailedStale, msg))
			return nil
		}
		s.gen, s.genSet = gen, true
		if role == wire.RoleMaster {
			for c := range s.conns {
				if c != s && c.role == wire.RoleMaster {
					c.role = wire.RoleSlave
					demoted = append(demoted, c)
				}
			}
		}
		s.role = role
	case wire.RoleEqual:
		s.role = role
	case wire.RoleNoChange:
	default:
		s.mu.Unlock()
		s.write(wire.AppendError(nil, h.Xid, wire.ErrRoleRequestFailed, 2, msg))
		return nil
	}
	cur, g := s.role, s.gen
	s.mu.Unlock()
	for _, c := range demoted {
		c.write(wire.AppendRoleStatus(nil, 0, wire.RoleSlave, wire.RoleStatusMasterRequest, g))
	}
	body := make([]byte, 16)
	binary.BigEndian.PutUint32(body, cur)
	binary.BigEndian.PutUint64(body[8:], g)
	s.write(reply(wire.TypeRoleReply, h.Xid, body))
	return nil
}

// Role returns the connection's OpenFlow role (wire.RoleEqual, RoleMaster
// or RoleSlave).
func (s *Switch) Role() uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.role
}

// Generation returns the datapath's role generation id and whether a
// MASTER or SLAVE request has set it.
func (dp *Datapath) Generation() (uint64, bool) {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	return dp.gen, dp.genSet
}

// apply changes the tables for one modification message (mu held).
func (s *Switch) apply(msg []byte) error {
	defer s.notify()
	switch msg[1] {
	case wire.TypeFlowMod:
		s.Counters.FlowMods.Add(1)
		fm, err := wire.DecodeFlowMod(msg)
		if err != nil {
			return err
		}
		m, err := flow.DecodeMatch(fm.Match)
		if err != nil {
			return err
		}
		f := &flow.Flow{Table: fm.TableID, Priority: fm.Priority, Match: m, Cookie: fm.Cookie,
			IdleTimeout: fm.IdleTimeout, HardTimeout: fm.HardTimeout, Flags: fm.Flags}
		switch fm.Command {
		case flow.CmdAdd, flow.CmdModifyStrict:
			if f.Instructions, err = flow.DecodeInstructions(fm.Instructions); err != nil {
				return err
			}
			if cur, ok := s.flows[f.Key()]; ok && fm.Command == flow.CmdModifyStrict {
				cur.Instructions = f.Instructions
			} else {
				s.flows[f.Key()] = f
			}
		case flow.CmdDeleteStrict:
			if cur, ok := s.flows[f.Key()]; ok && cur.Cookie&fm.CookieMask == fm.Cookie&fm.CookieMask {
				delete(s.flows, f.Key())
			}
		case flow.CmdDelete:
			if len(m) != 0 || fm.TableID != wire.TableAll {
				return fmt.Errorf("emu: only delete-all is supported")
			}
			clear(s.flows)
		default:
			return fmt.Errorf("emu: flow-mod command %d", fm.Command)
		}
	case wire.TypeGroupMod:
		s.Counters.GroupMods.Add(1)
		if len(msg) < 16 {
			return fmt.Errorf("emu: short group mod")
		}
		cmd, id := binary.BigEndian.Uint16(msg[8:]), binary.BigEndian.Uint32(msg[12:])
		if cmd == flow.ModDelete {
			delete(s.groups, id)
			return nil
		}
		g, err := flow.GroupFromDesc(&wire.GroupDesc{Type: msg[10], GroupID: id, Buckets: msg[16:]})
		if err != nil {
			return err
		}
		s.groups[id] = g
	case wire.TypeMeterMod:
		s.Counters.MeterMods.Add(1)
		if len(msg) < 16 {
			return fmt.Errorf("emu: short meter mod")
		}
		cmd, id := binary.BigEndian.Uint16(msg[8:]), binary.BigEndian.Uint32(msg[12:])
		if cmd == flow.ModDelete {
			delete(s.meters, id)
			return nil
		}
		m, err := flow.MeterFromConfig(&wire.MeterConfig{Flags: binary.BigEndian.Uint16(msg[10:]), MeterID: id, Bands: msg[16:]})
		if err != nil {
			return err
		}
		s.meters[id] = m
	}
	return nil
}

func (s *Switch) multipart(h wire.Header, msg []byte) error {
	if len(msg) < 16 {
		return fmt.Errorf("emu: short multipart request")
	}
	typ := binary.BigEndian.Uint16(msg[8:])
	var entries [][]byte
	s.mu.Lock()
	switch typ {
	case wire.MultipartDesc:
		d := make([]byte, 1056)
		copy(d, "Loom emulated switch")
		copy(d[256:], "emu")
		copy(d[512:], "emu 1.0")
		entries = append(entries, d)
	case wire.MultipartPortDesc:
		for _, p := range s.opt.Ports {
			entries = append(entries, EncodePort(p))
		}
	case wire.MultipartFlow:
		for _, f := range s.flows {
			entries = append(entries, flowStatsEntry(f))
		}
	case wire.MultipartGroupDesc:
		for _, g := range s.groups {
			b, _ := g.AppendMod(nil, flow.ModAdd, 0)
			e := make([]byte, 8, len(b))
			binary.BigEndian.PutUint16(e, uint16(len(b)-8))
			e[2] = g.Type
			binary.BigEndian.PutUint32(e[4:], g.ID)
			entries = append(entries, append(e, b[16:]...))
		}
	case wire.MultipartMeterConf:
		for _, m := range s.meters {
			b, _ := m.AppendMod(nil, flow.ModAdd, 0)
			e := make([]byte, 8, len(b))
			binary.BigEndian.PutUint16(e, uint16(len(b)-8))
			binary.BigEndian.PutUint16(e[2:], m.Flags)
			binary.BigEndian.PutUint32(e[4:], m.ID)
			entries = append(entries, append(e, b[16:]...))
		}
	default:
		s.mu.Unlock()
		s.write(wire.AppendError(nil, h.Xid, wire.ErrBadRequest, 2, msg))
		return nil
	}
	s.mu.Unlock()
	per := s.opt.EntriesPerPart
	for i := 0; i == 0 || i < len(entries); i += per {
		part := entries[i:min(i+per, len(entries))]
		body := make([]byte, 8)
		binary.BigEndian.PutUint16(body, typ)
		if i+per < len(entries) {
			binary.BigEndian.PutUint16(body[2:], wire.MultipartMore)
		}
		for _, e := range part {
			body = append(body, e...)
		}
		s.write(reply(wire.TypeMultipartReply, h.Xid, body))
	}
	return nil
}

func (s *Switch) experimenter(h wire.Header, msg []byte) error {
	x, err := wire.DecodeExperimenter(msg)
	if err != nil {
		return err
	}
	if x.Experimenter == wire.ExperimenterNicira && x.ExpType == wire.NXTCTFlushZone && len(x.Data) >= 8 {
		s.mu.Lock()
		s.flushedZones = append(s.flushedZones, binary.BigEndian.Uint16(x.Data[6:]))
		s.mu.Unlock()
		return nil
	}
	if x.Experimenter == wire.ExperimenterONF && (x.ExpType == wire.BundleAddType || x.ExpType == wire.BundleControlType) &&
		s.refuseSlave(h, msg) {
		return nil
	}
	if x.Experimenter != wire.ExperimenterONF || s.opt.NoBundles || len(x.Data) < 8 {
		s.write(wire.AppendError(nil, h.Xid, wire.ErrBadRequest, 3, msg))
		return nil
	}
	id := binary.BigEndian.Uint32(x.Data)
	switch x.ExpType {
	case wire.BundleAddType:
		s.mu.Lock()
		s.bundles[id] = append(s.bundles[id], x.Data[8:])
		s.mu.Unlock()
	case wire.BundleControlType:
		typ, flags := binary.BigEndian.Uint16(x.Data[4:]), binary.BigEndian.Uint16(x.Data[6:])
		s.mu.Lock()
		switch typ {
		case wire.BundleOpenRequest:
			s.bundles[id] = nil
		case wire.BundleCommitRequest:
			s.Counters.BundleCommits.Add(1)
			for _, m := range s.bundles[id] {
				if err := s.apply(m); err != nil {
					s.mu.Unlock()
					s.write(wire.AppendError(nil, h.Xid, wire.ErrBadRequest, 0, msg))
					return nil
				}
			}
			delete(s.bundles, id)
		case wire.BundleDiscardRequest:
			delete(s.bundles, id)
		}
		s.mu.Unlock()
		s.write(wire.AppendBundleControl(nil, h.Xid, id, typ+1, flags))
	}
	return nil
}

// flowStatsEntry encodes a flow as a FLOW multipart reply entry.
func flowStatsEntry(f *flow.Flow) []byte {
	fm, _ := f.AppendFlowMod(nil, flow.CmdAdd, 0)
	body := fm[8:]
	rest := body[40:] // match + instructions
	e := make([]byte, 48, 48+len(rest))
	binary.BigEndian.PutUint16(e, uint16(48+len(rest)))
	e[2] = f.Table
	binary.BigEndian.PutUint16(e[12:], f.Priority)
	binary.BigEndian.PutUint16(e[14:], f.IdleTimeout)
	binary.BigEndian.PutUint16(e[16:], f.HardTimeout)
	binary.BigEndian.PutUint16(e[18:], f.Flags)
	binary.BigEndian.PutUint64(e[24:], f.Cookie)
	return append(e, rest...)
}

// EncodePort encodes an ofp_port.
func EncodePort(p wire.Port) []byte {
	b := make([]byte, 64)
	binary.BigEndian.PutUint32(b, p.PortNo)
	copy(b[8:14], p.HWAddr[:])
	copy(b[16:32], p.Name)
	binary.BigEndian.PutUint32(b[32:], p.Config)
	binary.BigEndian.PutUint32(b[36:], p.State)
	binary.BigEndian.PutUint32(b[56:], p.CurrSpeed)
	return b
}

// notify wakes whoever waits on Changed (mu held).
func (s *Datapath) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Changed returns a channel closed by the next change to the switch's
// tables (a flow, group or meter mod applied, on its own or in a
// bundle): a test waits on it instead of polling the tables. Take it
// before checking the tables, then wait.
func (s *Datapath) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// FlushedZones returns the conntrack zones the controller asked to
// flush (NXT_CT_FLUSH_ZONE), in order.
func (s *Datapath) FlushedZones() []uint16 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.flushedZones)
}

// Flows returns the flow table as ovs-ofctl-style strings.
func (s *Datapath) Flows() map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]bool, len(s.flows))
	for _, f := range s.flows {
		out[f.String()] = true
	}
	return out
}

// FlowsWith returns the flows keep selects.
func (s *Datapath) FlowsWith(keep func(*flow.Flow) bool) []*flow.Flow {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*flow.Flow
	for _, f := range s.flows {
		if keep(f) {
			out = append(out, f)
		}
	}
	return out
}

// NumFlows, NumGroups and NumMeters size the tables.
func (s *Datapath) NumFlows() int  { s.mu.Lock(); defer s.mu.Unlock(); return len(s.flows) }
func (s *Datapath) NumGroups() int { s.mu.Lock(); defer s.mu.Unlock(); return len(s.groups) }
func (s *Datapath) NumMeters() int { s.mu.Lock(); defer s.mu.Unlock(); return len(s.meters) }

// Lookup returns the flow with f's key.
func (s *Datapath) Lookup(f *flow.Flow) (*flow.Flow, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.flows[f.Key()]
	return g, ok
}

// PacketIn sends a PACKET_IN of a whole frame (no buffer) received on
// inPort, from the given table and flow cookie.
func (s *Switch) PacketIn(inPort uint32, table uint8, cookie uint64, reason uint8, frame []byte) {
	s.write(AppendPacketIn(nil, 0, inPort, table, cookie, reason, frame))
}

// AppendPacketIn appends an encoded PACKET_IN.
func AppendPacketIn(dst []byte, xid, inPort uint32, table uint8, cookie uint64, reason uint8, frame []byte) []byte {
	n := len(dst)
	l := wire.HeaderLen + 16 + 16 + 2 + len(frame)
	dst = append(dst, make([]byte, l-len(frame))...)
	b := dst[n:]
	wire.PutHeader(b, wire.TypePacketIn, uint16(l), xid)
	binary.BigEndian.PutUint32(b[8:], wire.PortAny) // buffer_id: none
	binary.BigEndian.PutUint16(b[12:], uint16(len(frame)))
	b[14], b[15] = reason, table
	binary.BigEndian.PutUint64(b[16:], cookie)
	copy(b[24:], []byte{0, 1, 0, 12, 0x80, 0, 0, 4})
	binary.BigEndian.PutUint32(b[32:], inPort)
	return append(dst, frame...)
}

// PortStatus sends a PORT_STATUS.
func (s *Switch) PortStatus(reason uint8, p wire.Port) {
	body := append([]byte{reason, 0, 0, 0, 0, 0, 0, 0}, EncodePort(p)...)
	s.write(reply(wire.TypePortStatus, 0, body))
}

// FlowRemoved removes a flow from the table and reports it.
func (s *Switch) FlowRemoved(f *flow.Flow, reason uint8) {
	s.mu.Lock()
	delete(s.flows, f.Key())
	s.mu.Unlock()
	fm, _ := f.AppendFlowMod(nil, flow.CmdDeleteStrict, 0)
	match := fm[48:]
	body := make([]byte, 40, 40+len(match))
	binary.BigEndian.PutUint64(body, f.Cookie)
	binary.BigEndian.PutUint16(body[8:], f.Priority)
	body[10], body[11] = reason, f.Table
	binary.BigEndian.PutUint16(body[20:], f.IdleTimeout)
	s.write(reply(wire.TypeFlowRemoved, 0, append(body, match...)))
}

// Each calls fn for every flow in the table (under the table lock).
func (s *Datapath) Each(fn func(*flow.Flow)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.flows {
		fn(f)
	}
}

// DeleteFlow removes a flow without telling the controller (drift).
func (s *Datapath) DeleteFlow(f *flow.Flow) {
	s.mu.Lock()
	delete(s.flows, f.Key())
	s.mu.Unlock()
}
