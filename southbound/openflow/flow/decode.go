package flow

import (
	"encoding/binary"
	"fmt"

	"github.com/loom-sdn/loom/southbound/openflow/wire"
)

// DecodeMatch converts an OXM list reported by a switch into a Match.
// Fields Loom has no name for are kept whole as FieldRaw.
func DecodeMatch(m wire.Match) (Match, error) {
	var out Match
	for len(m) > 0 {
		tlvLen := 4 + int(m[3])
		o, rest, err := m.Next()
		if err != nil {
			return nil, err
		}
		f, known := byOXM[uint32(o.Class)<<8|uint32(o.Field)]
		if known && o.Experimenter == 0 && len(o.Value) == f.Size() {
			mf := MatchField{Field: f, Value: uintN(o.Value)}
			if o.HasMask {
				mf.Masked, mf.Mask = true, uintN(o.Mask)
			}
			out = out.With(mf)
		} else {
			out = out.With(MatchField{Field: FieldRaw, Raw: string(m[:tlvLen])})
		}
		m = rest
	}
	return out, nil
}

func uintN(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

// Instruction types.
const (
	instrGotoTable     = 1
	instrWriteMetadata = 2
	instrWriteActions  = 3
	instrApplyActions  = 4
	instrClearActions  = 5
	instrMeter         = 6
)

// DecodeInstructions decodes an encoded instruction list.
func DecodeInstructions(b []byte) (Instructions, error) {
	in := Instructions{GotoTable: NoGoto}
	for len(b) > 0 {
		if len(b) < 4 {
			return in, fmt.Errorf("flow: instruction truncated (%d bytes)", len(b))
		}
		typ, l := binary.BigEndian.Uint16(b), int(binary.BigEndian.Uint16(b[2:]))
		if l < 4 || l > len(b) {
			return in, fmt.Errorf("flow: instruction length %d (have %d)", l, len(b))
		}
		body := b[4:l]
		var err error
		switch typ {
		case instrGotoTable:
			if len(body) < 1 {
				return in, fmt.Errorf("flow: goto_table truncated")
			}
			in.GotoTable = int16(body[0])
		case instrWriteMetadata:
			if len(body) < 20 {
				return in, fmt.Errorf("flow: write_metadata truncated")
			}
			in.WriteMetadata = true
			in.Metadata, in.MetadataMask = binary.BigEndian.Uint64(body[4:]), binary.BigEndian.Uint64(body[12:])
		case instrApplyActions, instrWriteActions:
			if len(body) < 4 {
				return in, fmt.Errorf("flow: actions instruction truncated")
			}
			var acts []Action
			if acts, err = DecodeActions(body[4:]); err != nil {
				return in, err
			}
			if typ == instrApplyActions {
				in.Apply = acts
			} else {
				in.Write = acts
			}
		case instrClearActions:
			in.ClearActions = true
		case instrMeter:
			if len(body) < 4 {
				return in, fmt.Errorf("flow: meter instruction truncated")
			}
			in.Meter = binary.BigEndian.Uint32(body)
		default:
			return in, fmt.Errorf("flow: unsupported instruction type %d", typ)
		}
		b = b[l:]
	}
	return in, nil
}

// Action types.
const (
	atOutput   = 0
	atPushVLAN = 17
	atPopVLAN  = 18
	atSetQueue = 21
	atGroup    = 22
	atDecTTL   = 24
	atSetField = 25
)

// DecodeActions decodes an encoded action list.
func DecodeActions(b []byte) ([]Action, error) {
	var acts []Action
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, fmt.Errorf("flow: action truncated (%d bytes)", len(b))
		}
		typ, l := binary.BigEndian.Uint16(b), int(binary.BigEndian.Uint16(b[2:]))
		if l < 8 || l%8 != 0 || l > len(b) {
			return nil, fmt.Errorf("flow: action length %d (have %d)", l, len(b))
		}
		a, body := Action{Kind: ActRaw, Raw: string(b[:l])}, b[4:l]
		switch typ {
		case atOutput:
			if l == 16 {
				a = Output(binary.BigEndian.Uint32(body))
				if a.Arg == PortController {
					a.MaxLen = binary.BigEndian.Uint16(body[4:])
				}
			}
		case atGroup:
			a = ToGroup(binary.BigEndian.Uint32(body))
		case atSetQueue:
			a = SetQueue(binary.BigEndian.Uint32(body))
		case atPushVLAN:
			a = Action{Kind: ActPushVLAN, Arg: uint32(binary.BigEndian.Uint16(body))}
		case atPopVLAN:
			a = PopVLAN()
		case atDecTTL:
			a = DecTTL()
		case atSetField:
			if m, err := DecodeMatch(wire.Match(oxmOf(body))); err == nil && len(m) == 1 && m[0].Field != FieldRaw && !m[0].Masked {
				a = SetField(m[0].Field, m[0].Value)
			}
		}
		acts = append(acts, a)
		b = b[l:]
	}
	return acts, nil
}

// oxmOf trims the padding after the single OXM TLV of a set_field action.
func oxmOf(b []byte) []byte {
	if len(b) < 4 || 4+int(b[3]) > len(b) {
		return b
	}
	return b[:4+int(b[3])]
}

// FromStats converts a flow reported in a FLOW multipart reply.
func FromStats(fs *wire.FlowStats) (*Flow, error) {
	m, err := DecodeMatch(fs.Match)
	if err != nil {
		return nil, err
	}
	in, err := DecodeInstructions(fs.Instructions)
	if err != nil {
		return nil, err
	}
	return &Flow{
		Table: fs.TableID, Priority: fs.Priority, Match: m, Cookie: fs.Cookie,
		IdleTimeout: fs.IdleTimeout, HardTimeout: fs.HardTimeout, Flags: fs.Flags,
		Instructions: in,
	}, nil
}
