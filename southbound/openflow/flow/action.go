package flow

import (
	"encoding/binary"
	"encoding/hex"
	"strconv"
	"strings"
)

// ActionKind names an OpenFlow action.
type ActionKind uint8

// Actions Loom builds by name. Any other action (Nicira extensions built
// with libOpenflow, or whatever a switch reports) travels as ActRaw with its
// encoded bytes.
const (
	ActOutput ActionKind = iota
	ActGroup
	ActSetField
	ActPushVLAN
	ActPopVLAN
	ActDecTTL
	ActSetQueue
	ActRaw
)

// Action is one action. Only the fields its Kind uses are set, so actions
// compare with ==.
type Action struct {
	Kind   ActionKind
	Arg    uint32 // port, group id, queue id or push ethertype
	MaxLen uint16 // output to the controller
	Field  Field  // set_field
	Value  uint64 // set_field
	Raw    string // ActRaw: the encoded action
}

// Output sends the packet to a port. Output to the controller sends the
// whole packet (no buffering).
func Output(port uint32) Action {
	if port == PortController {
		return Action{Kind: ActOutput, Arg: port, MaxLen: 0xffff}
	}
	return Action{Kind: ActOutput, Arg: port}
}

// ToGroup sends the packet to a group.
func ToGroup(id uint32) Action { return Action{Kind: ActGroup, Arg: id} }

// SetField rewrites a header field.
func SetField(f Field, v uint64) Action {
	return Action{Kind: ActSetField, Field: f, Value: v & f.fullMask()}
}

// PushVLAN pushes an 802.1Q tag (set its VID with SetField(VlanVID, vid|0x1000)).
func PushVLAN() Action { return Action{Kind: ActPushVLAN, Arg: 0x8100} }

// PopVLAN pops the outer VLAN tag.
func PopVLAN() Action { return Action{Kind: ActPopVLAN} }

// DecTTL decrements the IP TTL.
func DecTTL() Action { return Action{Kind: ActDecTTL} }

// SetQueue selects an egress queue.
func SetQueue(q uint32) Action { return Action{Kind: ActSetQueue, Arg: q} }

// RawAction wraps an encoded action (for example a Nicira extension
// marshalled by libOpenflow).
func RawAction(b []byte) Action { return Action{Kind: ActRaw, Raw: string(b)} }

func (a Action) String() string {
	switch a.Kind {
	case ActOutput:
		if a.Arg == PortController {
			return "CONTROLLER:" + strconv.Itoa(int(a.MaxLen))
		}
		if a.Arg >= PortMax {
			return PortName(a.Arg)
		}
		return "output:" + PortName(a.Arg)
	case ActGroup:
		return "group:" + strconv.FormatUint(uint64(a.Arg), 10)
	case ActSetField:
		return "set_field:" + setFieldValue(a.Field, a.Value) + "->" + fields[a.Field].mf
	case ActPushVLAN:
		return "push_vlan:0x" + strconv.FormatUint(uint64(a.Arg), 16)
	case ActPopVLAN:
		return "pop_vlan"
	case ActDecTTL:
		return "dec_ttl"
	case ActSetQueue:
		return "set_queue:" + strconv.FormatUint(uint64(a.Arg), 10)
	}
	if s := moveString(a.Raw); s != "" {
		return s
	}
	if s := ctString(a.Raw); s != "" {
		return s
	}
	if s := resubmitString(a.Raw); s != "" {
		return s
	}
	if s := conjString(a.Raw); s != "" {
		return s
	}
	if s := learnString(a.Raw); s != "" {
		return s
	}
	if s := regLoadString(a.Raw); s != "" {
		return s
	}
	return "raw(" + hex.EncodeToString([]byte(a.Raw)) + ")"
}

func actionsString(acts []Action) string {
	var sb strings.Builder
	for i, a := range acts {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(a.String())
	}
	return sb.String()
}

// Nicira extension action NXAST_REG_MOVE (ovs-ofctl "move:SRC[]->DST[]").
const (
	nxVendor     = 0x00002320
	nxastRegMove = 6
	regMoveLen   = 24
)

// Move copies the whole of field src into field dst, which must be the
// same size (ovs-ofctl "move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[]"). It is
// the Nicira NXAST_REG_MOVE action, carried as a raw action and encoded
// with the NXM headers OVS itself uses for it, so that OVS reports it back
// byte for byte and desired and installed flows compare equal. Fields
// without an NXM header (Move panics on others) are not movable.
func Move(src, dst Field) Action {
	sh, dh := nxmHeaders[src], nxmHeaders[dst]
	if sh.name == "" || dh.name == "" || fields[src].size != fields[dst].size {
		panic("flow: Move between fields of different sizes or without NXM headers: " + src.String() + ", " + dst.String())
	}
	b := make([]byte, regMoveLen)
	binary.BigEndian.PutUint16(b[0:], 0xffff)
	binary.BigEndian.PutUint16(b[2:], regMoveLen)
	binary.BigEndian.PutUint32(b[4:], nxVendor)
	binary.BigEndian.PutUint16(b[8:], nxastRegMove)
	binary.BigEndian.PutUint16(b[10:], uint16(fields[src].size)*8)
	// src_ofs and dst_ofs (b[12:16]) stay 0: whole fields.
	binary.BigEndian.PutUint32(b[16:], sh.header)
	binary.BigEndian.PutUint32(b[20:], dh.header)
	return Action{Kind: ActRaw, Raw: string(b)}
}

type nxmHeader struct {
	name   string
	header uint32
	field  Field
}

func nxm(name string, class, field, size uint32) nxmHeader {
	return nxmHeader{name: name, header: class<<16 | field<<9 | size}
}

// nxmHeaders are the headers OVS writes in move and learn actions, and the
// names ovs-ofctl prints for them.
var nxmHeaders = map[Field]nxmHeader{
	EthDst: nxm("NXM_OF_ETH_DST", 0, 1, 6), EthSrc: nxm("NXM_OF_ETH_SRC", 0, 2, 6),
	IPv4Src: nxm("NXM_OF_IP_SRC", 0, 7, 4), IPv4Dst: nxm("NXM_OF_IP_DST", 0, 8, 4),
	EthType: nxm("NXM_OF_ETH_TYPE", 0, 3, 2), IPProto: nxm("NXM_OF_IP_PROTO", 0, 6, 1),
	TCPSrc: nxm("NXM_OF_TCP_SRC", 0, 9, 2), TCPDst: nxm("NXM_OF_TCP_DST", 0, 10, 2),
	UDPSrc: nxm("NXM_OF_UDP_SRC", 0, 11, 2), UDPDst: nxm("NXM_OF_UDP_DST", 0, 12, 2),
	ARPOp: nxm("NXM_OF_ARP_OP", 0, 15, 2), ARPSpa: nxm("NXM_OF_ARP_SPA", 0, 16, 4), ARPTpa: nxm("NXM_OF_ARP_TPA", 0, 17, 4),
	Reg0: nxm("NXM_NX_REG0", 1, 0, 4), Reg1: nxm("NXM_NX_REG1", 1, 1, 4), Reg2: nxm("NXM_NX_REG2", 1, 2, 4),
	Reg3: nxm("NXM_NX_REG3", 1, 3, 4), Reg4: nxm("NXM_NX_REG4", 1, 4, 4), Reg5: nxm("NXM_NX_REG5", 1, 5, 4),
	Reg6: nxm("NXM_NX_REG6", 1, 6, 4), Reg7: nxm("NXM_NX_REG7", 1, 7, 4),
	TunnelID: nxm("NXM_NX_TUN_ID", 1, 16, 8), ARPSha: nxm("NXM_NX_ARP_SHA", 1, 17, 6), ARPTha: nxm("NXM_NX_ARP_THA", 1, 18, 6),
	TunSrc: nxm("NXM_NX_TUN_IPV4_SRC", 1, 31, 4), TunDst: nxm("NXM_NX_TUN_IPV4_DST", 1, 32, 4),
	CTZone:   nxm("NXM_NX_CT_ZONE", 1, 106, 2),
	Metadata: nxm("OXM_OF_METADATA", 0x8000, 2, 8),
	VlanPCP:  nxm("OXM_OF_VLAN_PCP", 0x8000, 7, 1),
}

// fieldBits is how many bits of a field OVS moves (fewer than its bytes
// hold for VLAN PCP).
func fieldBits(f Field) int {
	if f == VlanPCP {
		return 3
	}
	return int(fields[f].size) * 8
}

// MoveBits copies nBits bits of src, from bit srcOfs, into dst from bit
// dstOfs (ovs-ofctl "move:NXM_NX_REG5[0..2]->OXM_OF_VLAN_PCP[]").
func MoveBits(src Field, srcOfs int, dst Field, dstOfs int, nBits int) Action {
	sh, dh := nxmHeaders[src], nxmHeaders[dst]
	if sh.name == "" || dh.name == "" || nBits <= 0 || srcOfs+nBits > fieldBits(src) || dstOfs+nBits > fieldBits(dst) {
		panic("flow: MoveBits out of range: " + src.String() + ", " + dst.String())
	}
	b := make([]byte, regMoveLen)
	binary.BigEndian.PutUint16(b[0:], 0xffff)
	binary.BigEndian.PutUint16(b[2:], regMoveLen)
	binary.BigEndian.PutUint32(b[4:], nxVendor)
	binary.BigEndian.PutUint16(b[8:], nxastRegMove)
	binary.BigEndian.PutUint16(b[10:], uint16(nBits))
	binary.BigEndian.PutUint16(b[12:], uint16(srcOfs))
	binary.BigEndian.PutUint16(b[14:], uint16(dstOfs))
	binary.BigEndian.PutUint32(b[16:], sh.header)
	binary.BigEndian.PutUint32(b[20:], dh.header)
	return Action{Kind: ActRaw, Raw: string(b)}
}

var nxmByHeader = func() map[uint32]nxmHeader {
	m := make(map[uint32]nxmHeader, len(nxmHeaders))
	for f, h := range nxmHeaders {
		h.field = f
		m[h.header] = h
	}
	return m
}()

// moveString renders a raw NXAST_REG_MOVE of whole fields the way
// ovs-ofctl does, or returns "" for any other raw action.
func moveString(raw string) string {
	b := []byte(raw)
	if len(b) != regMoveLen || binary.BigEndian.Uint16(b) != 0xffff || binary.BigEndian.Uint32(b[4:]) != nxVendor ||
		binary.BigEndian.Uint16(b[8:]) != nxastRegMove {
		return ""
	}
	src, ok1 := nxmByHeader[binary.BigEndian.Uint32(b[16:])]
	dst, ok2 := nxmByHeader[binary.BigEndian.Uint32(b[20:])]
	if !ok1 || !ok2 {
		return ""
	}
	bits := int(binary.BigEndian.Uint16(b[10:]))
	part := func(h nxmHeader, ofs int) string {
		if ofs == 0 && bits == fieldBits(h.field) {
			return h.name + "[]"
		}
		if bits == 1 {
			return h.name + "[" + strconv.Itoa(ofs) + "]"
		}
		return h.name + "[" + strconv.Itoa(ofs) + ".." + strconv.Itoa(ofs+bits-1) + "]"
	}
	return "move:" + part(src, int(binary.BigEndian.Uint16(b[12:]))) + "->" + part(dst, int(binary.BigEndian.Uint16(b[14:])))
}

// Nicira conntrack actions (NXAST_CT, NXAST_NAT).
const (
	nxastCT  = 35
	nxastNAT = 36
	ctLen    = 24
	natLen   = 16

	ctCommit     = 1
	natSrc       = 1
	natDst       = 2
	natRangeIPv4 = 1    // NX_NAT_RANGE_IPV4_MIN
	natRangePort = 0x10 // NX_NAT_RANGE_PROTO_MIN
	// NoRecirc is CT's Table when the packet does not go on in another
	// table (conntrack only commits or looks up).
	NoRecirc = 0xff
)

// NAT kinds of a CT action.
const (
	NATNone    = iota // no nat
	NATRestore        // "nat": apply the connection's existing translation
	NATSrc            // nat(src=Addr)
	NATDst            // nat(dst=Addr)
)

// CTSpec is a ct() action: send the packet through conntrack in Zone,
// committing the connection if Commit, with an optional NAT, then go on in
// Table (NoRecirc: nowhere, the ct action only has side effects).
type CTSpec struct {
	Commit bool
	Zone   uint16
	Table  uint8
	NAT    int
	Addr   uint32 // IPv4 of NATSrc and NATDst
	// Port, when not 0, is the transport port of NATSrc and NATDst
	// ("nat(dst=A:P)", NX_NAT_RANGE_PROTO_MIN).
	Port uint16
	// ZoneFromField takes the zone from the low 16 bits of the field
	// ZoneFrom instead of Zone: CTZone, the zone of the packet's last
	// conntrack lookup, commits a connection in the zone it was looked up
	// in ("ct(commit,zone=NXM_NX_CT_ZONE[])"), or a register. Only fields
	// with an NXM header (as for Move) can be zone sources.
	ZoneFromField bool
	ZoneFrom      Field
}

// CT builds the ct() action, encoded as OVS encodes it so that it reads
// back byte for byte (ovs-ofctl "ct(commit,table=T,zone=Z,nat(src=A))").
func CT(s CTSpec) Action {
	var nat []byte
	if s.NAT != NATNone {
		n := natLen
		if s.NAT == NATSrc || s.NAT == NATDst {
			n += 8 // the IPv4 address (and port), padded to 8 bytes
		}
		nat = make([]byte, n)
		binary.BigEndian.PutUint16(nat[0:], 0xffff)
		binary.BigEndian.PutUint16(nat[2:], uint16(n))
		binary.BigEndian.PutUint32(nat[4:], nxVendor)
		binary.BigEndian.PutUint16(nat[8:], nxastNAT)
		switch s.NAT {
		case NATSrc, NATDst:
			flags := uint16(natSrc)
			if s.NAT == NATDst {
				flags = natDst
			}
			binary.BigEndian.PutUint16(nat[12:], flags)
			present := uint16(natRangeIPv4)
			if s.Port != 0 {
				present |= natRangePort
				binary.BigEndian.PutUint16(nat[20:], s.Port)
			}
			binary.BigEndian.PutUint16(nat[14:], present)
			binary.BigEndian.PutUint32(nat[16:], s.Addr)
		}
	}
	b := make([]byte, ctLen, ctLen+len(nat))
	binary.BigEndian.PutUint16(b[0:], 0xffff)
	binary.BigEndian.PutUint16(b[2:], uint16(ctLen+len(nat)))
	binary.BigEndian.PutUint32(b[4:], nxVendor)
	binary.BigEndian.PutUint16(b[8:], nxastCT)
	if s.Commit {
		binary.BigEndian.PutUint16(b[10:], ctCommit)
	}
	if s.ZoneFromField {
		h := nxmHeaders[s.ZoneFrom]
		if h.name == "" || fieldBits(s.ZoneFrom) < 16 {
			panic("flow: ct zone from a field without an NXM header or narrower than 16 bits: " + s.ZoneFrom.String())
		}
		binary.BigEndian.PutUint32(b[12:], h.header)
		binary.BigEndian.PutUint16(b[16:], 0<<6|15) // zone_ofs_nbits: 16 bits from bit 0
	} else {
		// zone_src (b[12:16]) 0: the zone is immediate.
		binary.BigEndian.PutUint16(b[16:], s.Zone)
	}
	b[18] = s.Table
	// pad, alg 0
	return Action{Kind: ActRaw, Raw: string(append(b, nat...))}
}

// ctString renders a raw ct() action built by CT, or returns "".
func ctString(raw string) string {
	b := []byte(raw)
	if len(b) < ctLen || binary.BigEndian.Uint16(b) != 0xffff || binary.BigEndian.Uint32(b[4:]) != nxVendor ||
		binary.BigEndian.Uint16(b[8:]) != nxastCT || int(binary.BigEndian.Uint16(b[2:])) != len(b) {
		return ""
	}
	// ovs-ofctl leaves out an immediate zone 0.
	zone := "zone=" + strconv.Itoa(int(binary.BigEndian.Uint16(b[16:])))
	if zone == "zone=0" {
		zone = ""
	}
	if src := binary.BigEndian.Uint32(b[12:]); src != 0 {
		h, ok := nxmByHeader[src]
		if !ok || binary.BigEndian.Uint16(b[16:]) != 15 {
			return ""
		}
		if zone = "zone=" + h.name + "[0..15]"; fieldBits(h.field) == 16 {
			zone = "zone=" + h.name + "[]"
		}
	}
	var parts []string
	if binary.BigEndian.Uint16(b[10:])&ctCommit != 0 {
		parts = append(parts, "commit")
	}
	if b[18] != NoRecirc {
		parts = append(parts, "table="+strconv.Itoa(int(b[18])))
	}
	if zone != "" {
		parts = append(parts, zone)
	}
	if nat := b[ctLen:]; len(nat) > 0 {
		if len(nat) < natLen || binary.BigEndian.Uint16(nat[8:]) != nxastNAT {
			return ""
		}
		s := "nat"
		flags, present := binary.BigEndian.Uint16(nat[12:]), binary.BigEndian.Uint16(nat[14:])
		if present&natRangeIPv4 != 0 && len(nat) >= natLen+4 {
			dir := "src"
			if flags&natDst != 0 {
				dir = "dst"
			}
			s += "(" + dir + "=" + formatValue(IPv4Dst, uint64(binary.BigEndian.Uint32(nat[16:])))
			if present&natRangePort != 0 && len(nat) >= natLen+6 {
				s += ":" + strconv.Itoa(int(binary.BigEndian.Uint16(nat[20:])))
			}
			s += ")"
		}
		parts = append(parts, s)
	}
	return "ct(" + strings.Join(parts, ",") + ")"
}

// ARPResponder returns the actions that turn an ARP request for ip into
// the reply from mac and send it back where it came from: the switch
// answers for an address without the controller. Match ARP requests for
// ip (arp,arp_op=1,arp_tpa=IP) with them.
func ARPResponder(mac MAC, ip uint64) []Action {
	return []Action{
		Move(EthSrc, EthDst), SetField(EthSrc, uint64(mac)),
		SetField(ARPOp, 2),
		Move(ARPSha, ARPTha), SetField(ARPSha, uint64(mac)),
		Move(ARPSpa, ARPTpa), SetField(ARPSpa, ip),
		Output(PortInPort),
	}
}

// Nicira NXAST_RESUBMIT_TABLE.
const (
	nxastResubmitTable = 14
	resubmitLen        = 16
	nxInPort           = 0xfff8 // OFPP_IN_PORT in the 16-bit numbering NX actions use
)

// Resubmit runs the packet through table t and comes back (ovs-ofctl
// "resubmit(,T)"): what a group bucket uses to hand each copy to a table.
func Resubmit(t uint8) Action {
	b := make([]byte, resubmitLen)
	binary.BigEndian.PutUint16(b[0:], 0xffff)
	binary.BigEndian.PutUint16(b[2:], resubmitLen)
	binary.BigEndian.PutUint32(b[4:], nxVendor)
	binary.BigEndian.PutUint16(b[8:], nxastResubmitTable)
	binary.BigEndian.PutUint16(b[10:], nxInPort)
	b[12] = t
	return Action{Kind: ActRaw, Raw: string(b)}
}

func resubmitString(raw string) string {
	b := []byte(raw)
	if len(b) != resubmitLen || binary.BigEndian.Uint16(b) != 0xffff || binary.BigEndian.Uint32(b[4:]) != nxVendor ||
		binary.BigEndian.Uint16(b[8:]) != nxastResubmitTable || binary.BigEndian.Uint16(b[10:]) != nxInPort {
		return ""
	}
	return "resubmit(," + strconv.Itoa(int(b[12])) + ")"
}
