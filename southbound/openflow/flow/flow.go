// Package flow is Loom's model of OpenFlow 1.3 flow entries, groups and
// meters: what apps build, what the controller stores as desired state, and
// what it reads back from switches to reconcile against.
//
// A Flow is identified by (table, priority, match) — the identity OpenFlow
// itself uses for strict modify and delete — and compared by its cookie,
// timeouts, flags and instructions. Text forms use ovs-ofctl syntax so tests
// can state expected flows the way operators read them.
//
// Encoding goes through github.com/contiv/libOpenflow (see encode.go, which
// also works around its FlowMod bugs); decoding of what switches report is
// Loom's own (decode.go).
package flow

import (
	"slices"
	"strconv"
	"strings"
)

// Flow flags.
const (
	FlagSendFlowRem  uint16 = 1 << 0
	FlagCheckOverlap uint16 = 1 << 1
	FlagResetCounts  uint16 = 1 << 2
)

// Instructions of a flow, in the order OpenFlow executes them.
type Instructions struct {
	Meter         uint32 // 0: none
	Apply         []Action
	ClearActions  bool
	Write         []Action
	WriteMetadata bool
	Metadata      uint64
	MetadataMask  uint64
	GotoTable     int16 // -1: none
}

// NoGoto is the GotoTable value of a flow that does not continue.
const NoGoto int16 = -1

// Equal compares two instruction sets.
func (in *Instructions) Equal(o *Instructions) bool {
	return in.Meter == o.Meter && in.ClearActions == o.ClearActions &&
		in.WriteMetadata == o.WriteMetadata && in.Metadata == o.Metadata &&
		in.MetadataMask == o.MetadataMask && in.GotoTable == o.GotoTable &&
		slices.Equal(in.Apply, o.Apply) && slices.Equal(in.Write, o.Write)
}

// Flow is one flow entry.
type Flow struct {
	Table       uint8
	Priority    uint16
	Match       Match
	Cookie      uint64
	IdleTimeout uint16
	HardTimeout uint16
	Flags       uint16
	Instructions
}

// New returns a flow in table with the given priority and match, with no
// instructions (a drop flow until actions are added).
func New(table uint8, priority uint16, m Match) *Flow {
	return &Flow{Table: table, Priority: priority, Match: m, Instructions: Instructions{GotoTable: NoGoto}}
}

// Act appends apply-actions and returns f for chaining.
func (f *Flow) Act(acts ...Action) *Flow { f.Apply = append(f.Apply, acts...); return f }

// Goto makes f continue in table t.
func (f *Flow) Goto(t uint8) *Flow { f.GotoTable = int16(t); return f }

// WithMeter sends f's packets through a meter first.
func (f *Flow) WithMeter(id uint32) *Flow { f.Meter = id; return f }

// Key is the identity of a flow within a switch: table, priority and match.
type Key string

// Key computes the flow's identity.
func (f *Flow) Key() Key {
	var buf [128]byte
	return Key(f.AppendKey(buf[:0]))
}

// AppendKey appends the bytes of f's Key to dst: a map of flows by Key
// looked up with m[Key(f.AppendKey(buf[:0]))] allocates nothing.
func (f *Flow) AppendKey(dst []byte) []byte {
	return f.Match.appendKey(append(dst, f.Table, byte(f.Priority>>8), byte(f.Priority)))
}

// SameEntry reports whether f and o would leave the switch in the same
// state: equal cookie, timeouts, flags and instructions. Keys are assumed
// equal.
func (f *Flow) SameEntry(o *Flow) bool {
	return f.Cookie == o.Cookie && f.IdleTimeout == o.IdleTimeout && f.HardTimeout == o.HardTimeout &&
		f.Flags&^FlagResetCounts == o.Flags&^FlagResetCounts && f.Instructions.Equal(&o.Instructions)
}

// Equal reports whether two flows are identical.
func (f *Flow) Equal(o *Flow) bool {
	return f.Table == o.Table && f.Priority == o.Priority && f.Match.Equal(o.Match) && f.SameEntry(o)
}

// Clone returns a deep copy.
func (f *Flow) Clone() *Flow {
	c := *f
	c.Match = slices.Clone(f.Match)
	c.Apply = slices.Clone(f.Apply)
	c.Write = slices.Clone(f.Write)
	return &c
}

// String renders the flow in ovs-ofctl add-flow syntax, for example
// "table=0,priority=100,in_port=1,dl_src=02:00:00:00:00:01 actions=goto_table:1".
func (f *Flow) String() string {
	var sb strings.Builder
	sb.WriteString("table=")
	sb.WriteString(strconv.Itoa(int(f.Table)))
	sb.WriteString(",priority=")
	sb.WriteString(strconv.Itoa(int(f.Priority)))
	if f.Cookie != 0 {
		sb.WriteString(",cookie=0x")
		sb.WriteString(strconv.FormatUint(f.Cookie, 16))
	}
	if f.IdleTimeout != 0 {
		sb.WriteString(",idle_timeout=")
		sb.WriteString(strconv.Itoa(int(f.IdleTimeout)))
	}
	if f.HardTimeout != 0 {
		sb.WriteString(",hard_timeout=")
		sb.WriteString(strconv.Itoa(int(f.HardTimeout)))
	}
	if f.Flags&FlagSendFlowRem != 0 {
		sb.WriteString(",send_flow_rem")
	}
	if len(f.Match) > 0 {
		sb.WriteByte(',')
		sb.WriteString(f.Match.String())
	}
	sb.WriteString(" actions=")
	sb.WriteString(f.Instructions.String())
	return sb.String()
}

func (in *Instructions) String() string {
	var parts []string
	if in.Meter != 0 {
		parts = append(parts, "meter:"+strconv.FormatUint(uint64(in.Meter), 10))
	}
	if len(in.Apply) > 0 {
		parts = append(parts, actionsString(in.Apply))
	}
	if in.ClearActions {
		parts = append(parts, "clear_actions")
	}
	if len(in.Write) > 0 {
		parts = append(parts, "write_actions("+actionsString(in.Write)+")")
	}
	if in.WriteMetadata {
		parts = append(parts, "write_metadata:0x"+strconv.FormatUint(in.Metadata, 16)+"/0x"+strconv.FormatUint(in.MetadataMask, 16))
	}
	if in.GotoTable >= 0 {
		parts = append(parts, "goto_table:"+strconv.Itoa(int(in.GotoTable)))
	}
	if len(parts) == 0 {
		return "drop"
	}
	return strings.Join(parts, ",")
}
