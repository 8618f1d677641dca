package flow

import (
	"encoding/binary"
	"net"
	"strconv"
	"strings"
)

// Nicira NXAST_LEARN (OVS include/openflow/nicira-ext.h, lib/learn.c).
const (
	nxastLearn     = 16
	learnHeaderLen = 32 // up to fin_hard_timeout; the flow_mod_specs follow

	// flow_mod_spec header bits.
	learnNBitsMask     = 1<<10 - 1
	learnSrcImm        = 1 << 13 // NX_LEARN_SRC_IMMEDIATE (0: NX_LEARN_SRC_FIELD)
	learnDstMask       = 3 << 11
	learnDstMatch      = 0 << 11 // NX_LEARN_DST_MATCH
	learnDstLoad       = 1 << 11 // NX_LEARN_DST_LOAD
	learnDstOutput     = 2 << 11 // NX_LEARN_DST_OUTPUT
	learnReservedBits  = 1<<14 | 1<<15
	learnOFPDefaultPri = 0x8000 // OFP_DEFAULT_PRIORITY, which ovs-ofctl leaves out
)

// Flags of a learn action (NX_LEARN_F_*).
const (
	// LearnSendFlowRem gives the learned flow OFPFF_SEND_FLOW_REM
	// (ovs-ofctl "send_flow_rem").
	LearnSendFlowRem uint16 = 1
	// LearnDeleteLearned deletes the learned flows when the flow with the
	// learn action is deleted or modified ("delete_learned").
	LearnDeleteLearned uint16 = 2
)

// LearnSpec is a learn() action: it adds (or refreshes) a flow in Table
// whose match and actions come from Specs.
type LearnSpec struct {
	Table uint8
	// Priority is the learned flow's. It is sent as given: OVS's own
	// default, when ovs-ofctl text leaves it out, is 0x8000.
	Priority    uint16
	IdleTimeout uint16 // seconds, 0 = none
	HardTimeout uint16 // seconds, 0 = none
	Cookie      uint64
	Flags       uint16 // LearnSendFlowRem, LearnDeleteLearned
	Specs       []LearnField
}

// LearnField is one flow_mod_spec of a learn action: a match field of the
// learned flow, or a load action it runs. Build it with the Learn*
// functions.
type LearnField struct {
	dstType uint16 // learnDstMatch, learnDstLoad or learnDstOutput
	imm     bool   // the source is value, not src
	src     Field
	srcOfs  int
	dst     Field
	dstOfs  int
	nBits   int
	value   uint64
}

// learnHeader returns f's NXM header, panicking for a field learn cannot use.
func learnHeader(f Field, ofs, nBits int) nxmHeader {
	h := nxmHeaders[f]
	if h.name == "" {
		panic("flow: learn: field without an NXM header: " + f.String())
	}
	if nBits <= 0 || nBits > 64 || ofs < 0 || ofs+nBits > fieldBits(f) {
		panic("flow: learn: bits " + strconv.Itoa(ofs) + "+" + strconv.Itoa(nBits) + " out of range for " + h.name)
	}
	return h
}

func checkImm(v uint64, nBits int) {
	if nBits < 64 && v>>uint(nBits) != 0 {
		panic("flow: learn: value 0x" + strconv.FormatUint(v, 16) + " wider than " + strconv.Itoa(nBits) + " bits")
	}
}

// LearnMatchField makes the learned flow match the whole field f with the
// packet's value (ovs-ofctl "NXM_OF_IP_SRC[]").
func LearnMatchField(f Field) LearnField {
	return LearnMatchBits(f, 0, fieldBits(f))
}

// LearnMatchBits makes the learned flow match nBits bits of f from bit ofs
// with the packet's value of the same bits (ovs-ofctl
// "OXM_OF_METADATA[0..31]").
func LearnMatchBits(f Field, ofs, nBits int) LearnField {
	learnHeader(f, ofs, nBits)
	return LearnField{dstType: learnDstMatch, src: f, srcOfs: ofs, dst: f, dstOfs: ofs, nBits: nBits}
}

// LearnMatchValue makes the learned flow match the whole field f with the
// value v (ovs-ofctl "eth_type=0x800", "nw_proto=6").
func LearnMatchValue(f Field, v uint64) LearnField {
	n := fieldBits(f)
	learnHeader(f, 0, n)
	checkImm(v, n)
	return LearnField{dstType: learnDstMatch, imm: true, dst: f, nBits: n, value: v}
}

// LearnLoadField makes the learned flow load the packet's first nBits bits
// of src (from bit 0) into dst from bit dstOfs (ovs-ofctl
// "load:NXM_OF_IP_DST[]->NXM_NX_REG4[]").
func LearnLoadField(src Field, dst Field, dstOfs, nBits int) LearnField {
	learnHeader(src, 0, nBits)
	learnHeader(dst, dstOfs, nBits)
	return LearnField{dstType: learnDstLoad, src: src, dst: dst, dstOfs: dstOfs, nBits: nBits}
}

// LearnLoadValue makes the learned flow load v into nBits bits of dst from
// bit dstOfs (ovs-ofctl "load:0x1f90->NXM_NX_REG3[0..15]").
func LearnLoadValue(v uint64, dst Field, dstOfs, nBits int) LearnField {
	learnHeader(dst, dstOfs, nBits)
	checkImm(v, nBits)
	return LearnField{dstType: learnDstLoad, imm: true, dst: dst, dstOfs: dstOfs, nBits: nBits, value: v}
}

// immLen is the width of an immediate of nBits bits on the wire: whole
// 16-bit units.
func immLen(nBits int) int { return 2 * ((nBits + 15) / 16) }

// Learn builds the learn() action: the Nicira NXAST_LEARN action, carried
// raw and encoded as OVS re-encodes it (NXM headers where the field has
// one, OXM_OF_METADATA and OXM_OF_VLAN_PCP otherwise; immediates in whole
// 16-bit units; zero padding to 8 bytes), so a switch reports it back
// byte for byte. Its String is what ovs-ofctl prints. Learn panics on a
// spec the Learn* constructors would refuse.
//
// OVS checks the learned flow's match in spec order, so a spec on
// a field with prerequisites must follow the specs that satisfy them
// (eth_type=0x800 and nw_proto=6 before NXM_OF_TCP_DST[]), and the flow
// carrying the action must itself match the prerequisites of the fields
// it reads (tcp for NXM_OF_TCP_DST[]); otherwise OVS rejects the flow
// (OFPBAC_MATCH_INCONSISTENT).
//
// Pitfall: OVS accepts a learn action in a group bucket and reports it
// back unchanged, but never runs it: it runs bucket actions as an
// OpenFlow action set, which keeps set_field and resubmit (and output,
// group, ct) but silently drops learn (OVS 3.1, TestLearnOnOVS).
// In a bucket, put the backend in registers (SetField) and Resubmit to a
// table whose flow learns from them (LearnLoadField(Reg4, Reg4, 0, 32)).
func Learn(s LearnSpec) Action {
	if s.Flags&^(LearnSendFlowRem|LearnDeleteLearned) != 0 {
		panic("flow: learn: unsupported flags 0x" + strconv.FormatUint(uint64(s.Flags), 16))
	}
	b := make([]byte, learnHeaderLen, 64)
	binary.BigEndian.PutUint16(b[0:], 0xffff)
	// length at b[2:4] once known
	binary.BigEndian.PutUint32(b[4:], nxVendor)
	binary.BigEndian.PutUint16(b[8:], nxastLearn)
	binary.BigEndian.PutUint16(b[10:], s.IdleTimeout)
	binary.BigEndian.PutUint16(b[12:], s.HardTimeout)
	binary.BigEndian.PutUint16(b[14:], s.Priority)
	binary.BigEndian.PutUint64(b[16:], s.Cookie)
	binary.BigEndian.PutUint16(b[24:], s.Flags)
	b[26] = s.Table
	// pad, fin_idle_timeout, fin_hard_timeout: 0
	for _, sp := range s.Specs {
		if sp.nBits <= 0 {
			panic("flow: learn: empty LearnField (use the Learn* constructors)")
		}
		hdr := uint16(sp.nBits) | sp.dstType
		if sp.imm {
			hdr |= learnSrcImm
		}
		b = binary.BigEndian.AppendUint16(b, hdr)
		if sp.imm {
			for i := immLen(sp.nBits) - 1; i >= 0; i-- { // nBits <= 64: at most 8 bytes
				b = append(b, byte(sp.value>>(8*uint(i))))
			}
		} else {
			b = binary.BigEndian.AppendUint32(b, learnHeader(sp.src, sp.srcOfs, sp.nBits).header)
			b = binary.BigEndian.AppendUint16(b, uint16(sp.srcOfs))
		}
		if sp.dstType != learnDstOutput {
			b = binary.BigEndian.AppendUint32(b, learnHeader(sp.dst, sp.dstOfs, sp.nBits).header)
			b = binary.BigEndian.AppendUint16(b, uint16(sp.dstOfs))
		}
	}
	for len(b)%8 != 0 {
		b = append(b, 0)
	}
	if len(b) > 0xfff8 {
		panic("flow: learn action too long")
	}
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	return Action{Kind: ActRaw, Raw: string(b)}
}

// LearnOf decodes a learn action built by Learn (or reported by a switch
// in that form), and reports false for any other action or for a learn
// action using fields, fin timeouts or flags Loom has no name for.
// Learn(LearnOf(a)) == a.
func LearnOf(a Action) (LearnSpec, bool) {
	b := []byte(a.Raw)
	if a.Kind != ActRaw || len(b) < learnHeaderLen || len(b)%8 != 0 || binary.BigEndian.Uint16(b) != 0xffff ||
		int(binary.BigEndian.Uint16(b[2:])) != len(b) || binary.BigEndian.Uint32(b[4:]) != nxVendor ||
		binary.BigEndian.Uint16(b[8:]) != nxastLearn {
		return LearnSpec{}, false
	}
	s := LearnSpec{
		IdleTimeout: binary.BigEndian.Uint16(b[10:]), HardTimeout: binary.BigEndian.Uint16(b[12:]),
		Priority: binary.BigEndian.Uint16(b[14:]), Cookie: binary.BigEndian.Uint64(b[16:]),
		Flags: binary.BigEndian.Uint16(b[24:]), Table: b[26],
	}
	if s.Flags&^(LearnSendFlowRem|LearnDeleteLearned) != 0 || b[27] != 0 || binary.BigEndian.Uint32(b[28:]) != 0 {
		return LearnSpec{}, false
	}
	field := func(p []byte) (Field, int, bool) {
		h, ok := nxmByHeader[binary.BigEndian.Uint32(p)]
		return h.field, int(binary.BigEndian.Uint16(p[4:])), ok
	}
	rest := b[learnHeaderLen:]
	for len(rest) >= 2 {
		hdr := binary.BigEndian.Uint16(rest)
		if hdr == 0 {
			break
		}
		rest = rest[2:]
		sp := LearnField{dstType: hdr & learnDstMask, imm: hdr&learnSrcImm != 0, nBits: int(hdr & learnNBitsMask)}
		if hdr&learnReservedBits != 0 || sp.dstType == learnDstMask || sp.nBits == 0 || (sp.imm && sp.dstType == learnDstOutput) {
			return LearnSpec{}, false
		}
		if sp.imm {
			n := immLen(sp.nBits)
			if n > len(rest) || sp.nBits > 64 {
				return LearnSpec{}, false
			}
			sp.value = uintN(rest[:n])
			rest = rest[n:]
			if sp.nBits < 64 && sp.value>>uint(sp.nBits) != 0 {
				return LearnSpec{}, false
			}
		} else {
			var ok bool
			if len(rest) < 6 {
				return LearnSpec{}, false
			}
			if sp.src, sp.srcOfs, ok = field(rest); !ok || sp.srcOfs+sp.nBits > fieldBits(sp.src) {
				return LearnSpec{}, false
			}
			rest = rest[6:]
		}
		if sp.dstType != learnDstOutput {
			var ok bool
			if len(rest) < 6 {
				return LearnSpec{}, false
			}
			if sp.dst, sp.dstOfs, ok = field(rest); !ok || sp.dstOfs+sp.nBits > fieldBits(sp.dst) {
				return LearnSpec{}, false
			}
			rest = rest[6:]
		}
		s.Specs = append(s.Specs, sp)
	}
	for _, c := range rest {
		if c != 0 {
			return LearnSpec{}, false
		}
	}
	return s, true
}

// learnNames are the meta-flow names and formats (ovs-fields(7)) ovs-ofctl
// prints for a learned match on a whole field with an immediate value.
var learnNames = map[Field]struct {
	name string
	fmt  format
}{
	Metadata: {"metadata", fmtHex}, TunnelID: {"tun_id", fmtHex},
	TunSrc: {"tun_src", fmtIPv4}, TunDst: {"tun_dst", fmtIPv4},
	Reg0: {"reg0", fmtHex}, Reg1: {"reg1", fmtHex}, Reg2: {"reg2", fmtHex}, Reg3: {"reg3", fmtHex},
	Reg4: {"reg4", fmtHex}, Reg5: {"reg5", fmtHex}, Reg6: {"reg6", fmtHex}, Reg7: {"reg7", fmtHex},
	CTZone: {"ct_zone", fmtHex},
	EthSrc: {"eth_src", fmtMAC}, EthDst: {"eth_dst", fmtMAC}, EthType: {"eth_type", fmtHex},
	VlanPCP: {"vlan_pcp", fmtDec}, IPProto: {"nw_proto", fmtDec},
	IPv4Src: {"ip_src", fmtIPv4}, IPv4Dst: {"ip_dst", fmtIPv4},
	ARPOp: {"arp_op", fmtDec}, ARPSpa: {"arp_spa", fmtIPv4}, ARPTpa: {"arp_tpa", fmtIPv4},
	ARPSha: {"arp_sha", fmtMAC}, ARPTha: {"arp_tha", fmtMAC},
	TCPSrc: {"tcp_src", fmtDec}, TCPDst: {"tcp_dst", fmtDec}, UDPSrc: {"udp_src", fmtDec}, UDPDst: {"udp_dst", fmtDec},
}

// ofHex is OVS's ds_put_hex: "0x" and the value without leading zeros,
// or "0".
func ofHex(v uint64) string {
	if v == 0 {
		return "0"
	}
	return "0x" + strconv.FormatUint(v, 16)
}

// subfield is OVS's mf_format_subfield: NAME[], NAME[BIT] or NAME[LO..HI].
func subfield(f Field, ofs, nBits int) string {
	name := nxmHeaders[f].name
	switch {
	case ofs == 0 && nBits == fieldBits(f):
		return name + "[]"
	case nBits == 1:
		return name + "[" + strconv.Itoa(ofs) + "]"
	}
	return name + "[" + strconv.Itoa(ofs) + ".." + strconv.Itoa(ofs+nBits-1) + "]"
}

// String renders the spec as ovs-ofctl prints it inside learn().
func (sp LearnField) String() string {
	switch {
	case sp.dstType == learnDstMatch && sp.imm:
		if n, ok := learnNames[sp.dst]; ok && sp.dstOfs == 0 && sp.nBits == fieldBits(sp.dst) {
			var v string
			switch n.fmt {
			case fmtHex:
				v = ofHex(sp.value)
			case fmtMAC:
				v = MAC(sp.value).String()
			case fmtIPv4:
				v = net.IPv4(byte(sp.value>>24), byte(sp.value>>16), byte(sp.value>>8), byte(sp.value)).String()
			default:
				v = strconv.FormatUint(sp.value, 10)
			}
			return n.name + "=" + v
		}
		return subfield(sp.dst, sp.dstOfs, sp.nBits) + "=" + ofHex(sp.value)
	case sp.dstType == learnDstMatch:
		s := subfield(sp.dst, sp.dstOfs, sp.nBits)
		if sp.src != sp.dst || sp.srcOfs != sp.dstOfs {
			s += "=" + subfield(sp.src, sp.srcOfs, sp.nBits)
		}
		return s
	case sp.dstType == learnDstLoad && sp.imm:
		return "load:" + ofHex(sp.value) + "->" + subfield(sp.dst, sp.dstOfs, sp.nBits)
	case sp.dstType == learnDstLoad:
		return "load:" + subfield(sp.src, sp.srcOfs, sp.nBits) + "->" + subfield(sp.dst, sp.dstOfs, sp.nBits)
	}
	return "output:" + subfield(sp.src, sp.srcOfs, sp.nBits)
}

// String renders the action as ovs-ofctl prints it (OVS's learn_format).
func (s LearnSpec) String() string {
	var sb strings.Builder
	sb.WriteString("learn(table=" + strconv.Itoa(int(s.Table)))
	if s.IdleTimeout != 0 {
		sb.WriteString(",idle_timeout=" + strconv.Itoa(int(s.IdleTimeout)))
	}
	if s.HardTimeout != 0 {
		sb.WriteString(",hard_timeout=" + strconv.Itoa(int(s.HardTimeout)))
	}
	if s.Priority != learnOFPDefaultPri {
		sb.WriteString(",priority=" + strconv.Itoa(int(s.Priority)))
	}
	if s.Flags&LearnSendFlowRem != 0 {
		sb.WriteString(",send_flow_rem")
	}
	if s.Flags&LearnDeleteLearned != 0 {
		sb.WriteString(",delete_learned")
	}
	if s.Cookie != 0 {
		sb.WriteString(",cookie=0x" + strconv.FormatUint(s.Cookie, 16))
	}
	for _, sp := range s.Specs {
		sb.WriteString("," + sp.String())
	}
	sb.WriteString(")")
	return sb.String()
}

// learnString renders a raw learn action, or returns "" for any other.
func learnString(raw string) string {
	s, ok := LearnOf(Action{Kind: ActRaw, Raw: raw})
	if !ok {
		return ""
	}
	return s.String()
}
