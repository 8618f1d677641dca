// Package flow is Loom's model of OpenFlow 1.3 flow entries, groups and
// meters: what apps build, what the controller stores as desired state, and
// what it reads back from switches to reconcile against.
//
// A Flow is identified by (table, priority, match) — the identity OpenFlow
// itself uses for strict modify and delete — and compared by its cookie,
// timeouts, flags and instructions. Flow.String prints a flow exactly as
// `ovs-ofctl -O OpenFlow13 --no-stats dump-flows` prints it, so expected
// flows in tests are what operators read, and can be pasted from a switch.
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

// String renders the flow exactly as `ovs-ofctl -O OpenFlow13 --no-names
// --no-stats dump-flows` prints the same entry (Open vSwitch 3.1, less the
// leading space), for example
// "cookie=0x2a, table=1, idle_timeout=60, priority=100,tcp,in_port=1,tp_dst=80 actions=goto_table:2":
// the cookie, table, timeouts and flags where they are not 0, each ending
// in ", " (a flag in " "), then the priority unless it is 32768 and the
// match in ovs-ofctl's order and spelling (see Match.String), a space,
// and the actions. TestStringIsOfctlText checks it against ovs-ofctl.
func (f *Flow) String() string { return string(f.appendText(make([]byte, 0, 128))) }

// String renders the instructions as ovs-ofctl prints them after
// "actions=": meter, apply-actions, clear_actions, write_actions(...),
// write_metadata and goto_table, or "drop" for none.
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
		s := "write_metadata:" + string(appendCHex(nil, in.Metadata))
		if in.MetadataMask != ^uint64(0) {
			s += "/" + string(appendCHex(nil, in.MetadataMask))
		}
		parts = append(parts, s)
	}
	if in.GotoTable >= 0 {
		parts = append(parts, "goto_table:"+strconv.Itoa(int(in.GotoTable)))
	}
	if len(parts) == 0 {
		return "drop"
	}
	return strings.Join(parts, ",")
}
