package flow

import (
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
