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
		return "set_field:" + formatValue(a.Field, a.Value) + "->" + a.Field.String()
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
// the Nicira NXAST_REG_MOVE action, carried as a raw action: OVS reports
// it back with the same bytes, so desired and installed flows compare
// equal.
func Move(src, dst Field) Action {
	if src >= numFields || dst >= numFields || fields[src].size != fields[dst].size {
		panic("flow: Move between fields of different sizes: " + src.String() + ", " + dst.String())
	}
	b := make([]byte, regMoveLen)
	binary.BigEndian.PutUint16(b[0:], 0xffff)
	binary.BigEndian.PutUint16(b[2:], regMoveLen)
	binary.BigEndian.PutUint32(b[4:], nxVendor)
	binary.BigEndian.PutUint16(b[8:], nxastRegMove)
	binary.BigEndian.PutUint16(b[10:], uint16(fields[src].size)*8)
	// src_ofs and dst_ofs (b[12:16]) stay 0: whole fields.
	binary.BigEndian.PutUint32(b[16:], oxmHeader(src))
	binary.BigEndian.PutUint32(b[20:], oxmHeader(dst))
	return Action{Kind: ActRaw, Raw: string(b)}
}

func oxmHeader(f Field) uint32 {
	fi := fields[f]
	return uint32(fi.class)<<16 | uint32(fi.field)<<9 | uint32(fi.size)
}

// nxmNames are the names ovs-ofctl prints in move actions.
var nxmNames = map[Field]string{
	EthSrc: "NXM_OF_ETH_SRC", EthDst: "NXM_OF_ETH_DST", ARPOp: "NXM_OF_ARP_OP",
	ARPSpa: "NXM_OF_ARP_SPA", ARPTpa: "NXM_OF_ARP_TPA", ARPSha: "NXM_NX_ARP_SHA", ARPTha: "NXM_NX_ARP_THA",
	IPv4Src: "NXM_OF_IP_SRC", IPv4Dst: "NXM_OF_IP_DST", TunnelID: "NXM_NX_TUN_ID", Metadata: "OXM_OF_METADATA",
	TunSrc: "NXM_NX_TUN_IPV4_SRC", TunDst: "NXM_NX_TUN_IPV4_DST",
	Reg0: "NXM_NX_REG0", Reg1: "NXM_NX_REG1", Reg2: "NXM_NX_REG2", Reg3: "NXM_NX_REG3",
	Reg4: "NXM_NX_REG4", Reg5: "NXM_NX_REG5", Reg6: "NXM_NX_REG6", Reg7: "NXM_NX_REG7",
}

// moveString renders a raw NXAST_REG_MOVE of whole fields the way
// ovs-ofctl does, or returns "" for any other raw action.
func moveString(raw string) string {
	b := []byte(raw)
	if len(b) != regMoveLen || binary.BigEndian.Uint16(b) != 0xffff || binary.BigEndian.Uint32(b[4:]) != nxVendor ||
		binary.BigEndian.Uint16(b[8:]) != nxastRegMove || binary.BigEndian.Uint32(b[12:]) != 0 {
		return ""
	}
	name := func(h uint32) (string, int) {
		f, ok := byOXM[h>>16<<8|h>>9&0x7f]
		if !ok || h&0xff != uint32(fields[f].size) || nxmNames[f] == "" {
			return "", 0
		}
		return nxmNames[f], int(fields[f].size) * 8
	}
	src, sbits := name(binary.BigEndian.Uint32(b[16:]))
	dst, dbits := name(binary.BigEndian.Uint32(b[20:]))
	if src == "" || dst == "" || sbits != dbits || int(binary.BigEndian.Uint16(b[10:])) != sbits {
		return ""
	}
	return "move:" + src + "[]->" + dst + "[]"
}
