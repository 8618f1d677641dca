package flow

import (
	"encoding/binary"
	"fmt"

	of "github.com/contiv/libOpenflow/openflow13"
	"github.com/contiv/libOpenflow/util"
)

// FlowMod commands.
const (
	CmdAdd          uint8 = 0
	CmdModify       uint8 = 1
	CmdModifyStrict uint8 = 2
	CmdDelete       uint8 = 3
	CmdDeleteStrict uint8 = 4
)

// raw is a util.Message holding pre-encoded bytes: the bridge between
// Loom's model and libOpenflow's message structs.
type raw []byte

func (r raw) MarshalBinary() ([]byte, error) { return r, nil }
func (r raw) UnmarshalBinary([]byte) error   { return fmt.Errorf("flow: raw is encode-only") }
func (r raw) Len() uint16                    { return uint16(len(r)) }

// rawAction is an of.Action holding an encoded action.
type rawAction struct {
	hdr of.ActionHeader
	raw
}

func (a *rawAction) Header() *of.ActionHeader { return &a.hdr }

func newRawAction(b []byte) *rawAction {
	a := &rawAction{raw: raw(b)}
	if len(b) >= 4 {
		a.hdr = of.ActionHeader{Type: binary.BigEndian.Uint16(b), Length: binary.BigEndian.Uint16(b[2:])}
	}
	return a
}

// ofField converts a match field to libOpenflow's representation.
func ofField(f MatchField) *of.MatchField {
	if f.Field == FieldRaw {
		b := []byte(f.Raw)
		mf := &of.MatchField{Class: binary.BigEndian.Uint16(b), Field: b[2] >> 1, HasMask: b[2]&1 == 1, Length: b[3]}
		v := b[4:]
		if mf.HasMask {
			mf.Value, mf.Mask = raw(v[:len(v)/2]), raw(v[len(v)/2:])
		} else {
			mf.Value = raw(v)
		}
		return mf
	}
	fi := &fields[f.Field]
	n := int(fi.size)
	mf := &of.MatchField{Class: fi.class, Field: fi.field, HasMask: f.Masked, Length: uint8(n), Value: raw(appendN(nil, f.Value, n))}
	if f.Masked {
		mf.Length *= 2
		mf.Mask = raw(appendN(nil, f.Mask, n))
	}
	return mf
}

func ofMatch(m Match) of.Match {
	om := *of.NewMatch()
	for _, f := range m {
		om.AddField(*ofField(f))
	}
	return om
}

// ofAction converts an action to libOpenflow's representation.
func ofAction(a Action) of.Action {
	switch a.Kind {
	case ActOutput:
		o := of.NewActionOutput(a.Arg)
		o.MaxLen = a.MaxLen
		return o
	case ActGroup:
		return of.NewActionGroup(a.Arg)
	case ActSetField:
		return of.NewActionSetField(*ofField(MatchField{Field: a.Field, Value: a.Value}))
	case ActPushVLAN:
		return of.NewActionPushVlan(uint16(a.Arg))
	case ActPopVLAN:
		return of.NewActionPopVlan()
	case ActDecTTL:
		return of.NewActionDecNwTtl()
	case ActSetQueue:
		return of.NewActionSetQueue(a.Arg)
	}
	return newRawAction([]byte(a.Raw))
}

func ofActions(instr *of.InstrActions, acts []Action) {
	for _, a := range acts {
		_ = instr.AddAction(ofAction(a), false) // AddAction only fails for prepend on a full list
	}
}

// Offsets inside an encoded FLOW_MOD.
const (
	flowModOutPort  = 36
	flowModOutGroup = 40
)

// AppendFlowMod appends f encoded as a FLOW_MOD with the given command and
// xid. Delete commands carry no instructions (libOpenflow would send them
// while its length field omits them) and out_port/out_group are patched to
// ANY (libOpenflow writes out_port into both slots).
func (f *Flow) AppendFlowMod(dst []byte, cmd uint8, xid uint32) ([]byte, error) {
	fm := of.NewFlowMod()
	fm.Xid = xid
	fm.Command = cmd
	fm.TableId = f.Table
	fm.Priority = f.Priority
	fm.Cookie = f.Cookie
	fm.IdleTimeout = f.IdleTimeout
	fm.HardTimeout = f.HardTimeout
	fm.Flags = f.Flags
	fm.Match = ofMatch(f.Match)
	if cmd == CmdDelete || cmd == CmdDeleteStrict {
		fm.CookieMask = ^uint64(0) // delete only the entry we own
	} else {
		f.appendInstructions(fm)
	}
	b, err := fm.MarshalBinary()
	if err != nil {
		return dst, err
	}
	if len(b) != int(fm.Len()) {
		return dst, fmt.Errorf("flow: FLOW_MOD encoded to %d bytes, header says %d", len(b), fm.Len())
	}
	binary.BigEndian.PutUint32(b[flowModOutPort:], of.P_ANY)
	binary.BigEndian.PutUint32(b[flowModOutGroup:], of.OFPG_ANY)
	return append(dst, b...), nil
}

func (f *Flow) appendInstructions(fm *of.FlowMod) {
	in := &f.Instructions
	if in.Meter != 0 {
		fm.AddInstruction(of.NewInstrMeter(in.Meter))
	}
	if len(in.Apply) > 0 {
		ia := of.NewInstrApplyActions()
		ofActions(ia, in.Apply)
		fm.AddInstruction(ia)
	}
	if in.ClearActions {
		fm.AddInstruction(&of.InstrActions{InstrHeader: of.InstrHeader{Type: of.InstrType_CLEAR_ACTIONS, Length: 8}, Actions: []of.Action{}})
	}
	if len(in.Write) > 0 {
		iw := of.NewInstrWriteActions()
		ofActions(iw, in.Write)
		fm.AddInstruction(iw)
	}
	if in.WriteMetadata {
		fm.AddInstruction(of.NewInstrWriteMetadata(in.Metadata, in.MetadataMask))
	}
	if in.GotoTable >= 0 {
		fm.AddInstruction(of.NewInstrGotoTable(uint8(in.GotoTable)))
	}
}

// AppendPacketOut appends a PACKET_OUT sending data (a whole frame; OVS
// keeps no buffers) with the given actions, as if received on inPort.
func AppendPacketOut(dst []byte, xid uint32, inPort uint32, acts []Action, data []byte) ([]byte, error) {
	po := of.NewPacketOut()
	po.Xid = xid
	po.InPort = inPort
	for _, a := range acts {
		po.AddAction(ofAction(a))
	}
	po.Data = raw(data)
	b, err := po.MarshalBinary()
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}

var _ util.Message = raw(nil)
