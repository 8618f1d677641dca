package flow

import (
	"bytes"
	"encoding/binary"
)

// Encoder encodes FLOW_MODs with libOpenflow once per flow shape (the
// fields matched, which are masked, the instructions and action kinds)
// and, for every later flow of that shape, copies the encoded template
// and patches its values in place: no allocation and a fraction of the
// work on the hot path, byte for byte what libOpenflow would have sent
// (encode_test.go checks that on random flows).
//
// An Encoder is not safe for concurrent use: each switch goroutine owns
// one, so no lock is shared between switches.
type Encoder struct {
	templates map[shapeKey][]byte
	// The last PACKET_OUT's shape and template: an app sends packet-outs
	// of one shape (output:port) far more often than anything else, and
	// comparing its few bytes costs less than hashing and comparing the
	// whole key in the map.
	lastOut  shapeKey
	lastOutT []byte
	// Encoded and Templated count the messages encoded by libOpenflow
	// and by patching a template.
	Encoded, Templated int
}

// maxShape bounds a shape's description; more complex flows are simply
// encoded by libOpenflow every time.
const maxShape = 126

type shapeKey struct {
	n uint8
	b [maxShape]byte
}

func (k *shapeKey) add(v ...byte) bool {
	if int(k.n)+len(v) > maxShape {
		return false
	}
	copy(k.b[k.n:], v)
	k.n += uint8(len(v))
	return true
}

// equal compares the described bytes, one at a time: they were just
// stored one at a time (add), and loading them as wider words would stall
// on store forwarding.
func (k *shapeKey) equal(o *shapeKey) bool {
	if k.n != o.n {
		return false
	}
	for i := range int(k.n) {
		if k.b[i] != o.b[i] {
			return false
		}
	}
	return true
}

func isDelete(cmd uint8) bool { return cmd == CmdDelete || cmd == CmdDeleteStrict }

// shape describes f's layout on the wire; ok is false when it is too
// complex to describe.
func (f *Flow) shape(cmd uint8) (k shapeKey, ok bool) {
	ok = k.add(b2u(isDelete(cmd)))
	for _, m := range f.Match {
		if m.Field == FieldRaw {
			ok = ok && len(m.Raw) < 256 && k.add(byte(m.Field), byte(len(m.Raw)))
		} else {
			ok = ok && k.add(byte(m.Field), b2u(m.Masked))
		}
	}
	if isDelete(cmd) {
		return k, ok
	}
	in := &f.Instructions
	ok = ok && k.add(0xfe, b2u(in.Meter != 0), b2u(in.ClearActions), b2u(in.WriteMetadata), b2u(in.GotoTable >= 0))
	for _, acts := range [2][]Action{in.Apply, in.Write} {
		ok = ok && k.add(0xfd, b2u(len(acts) > 0)) && k.addActions(acts)
	}
	return k, ok
}

// addActions describes the actions' layout.
func (k *shapeKey) addActions(acts []Action) bool {
	ok := true
	for _, a := range acts {
		switch a.Kind {
		case ActSetField:
			ok = ok && k.add(byte(a.Kind), byte(a.Field))
		case ActRaw:
			ok = ok && len(a.Raw) < 256 && k.add(byte(a.Kind), byte(len(a.Raw)))
		default:
			ok = ok && k.add(byte(a.Kind))
		}
	}
	return ok
}

// zeroActions returns actions of the same layout with every value zero.
func zeroActions(acts []Action) []Action {
	out := make([]Action, len(acts))
	for i, a := range acts {
		out[i] = Action{Kind: a.Kind, Field: a.Field, Raw: string(make([]byte, len(a.Raw)))}
	}
	return out
}

// learn keeps enc (libOpenflow's encoding of a message of shape k) as
// that shape's template if the patcher reproduces it: clear overwrites
// every value the patcher writes with zeros, fill writes them back. A
// shape that fails is remembered as nil and always encoded by
// libOpenflow. It returns the template (nil when there is none).
func (e *Encoder) learn(k shapeKey, enc []byte, clear, fill func(b []byte)) []byte {
	t := bytes.Clone(enc)
	clear(t)
	fill(t)
	if !bytes.Equal(t, enc) {
		t = nil
	}
	if e.templates == nil {
		e.templates = make(map[shapeKey][]byte)
	}
	e.templates[k] = t
	return t
}

func b2u(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// AppendFlowMod appends f encoded as a FLOW_MOD, as Flow.AppendFlowMod
// does.
func (e *Encoder) AppendFlowMod(dst []byte, f *Flow, cmd uint8, xid uint32) ([]byte, error) {
	k, ok := f.shape(cmd)
	if !ok {
		e.Encoded++
		return f.AppendFlowMod(dst, cmd, xid)
	}
	if t, found := e.templates[k]; found {
		if t == nil { // the shape could not be templated
			e.Encoded++
			return f.AppendFlowMod(dst, cmd, xid)
		}
		e.Templated++
		n := len(dst)
		dst = append(dst, t...)
		f.patch(dst[n:], cmd, xid)
		return dst, nil
	}
	e.Encoded++
	out, err := f.AppendFlowMod(dst, cmd, xid)
	if err != nil {
		return dst, err
	}
	e.learn(k, out[len(dst):], func(b []byte) { f.zero().patch(b, cmd, 0) }, func(b []byte) { f.patch(b, cmd, xid) })
	return out, nil
}

// zero returns a flow of f's shape with every value zero.
func (f *Flow) zero() *Flow {
	z := &Flow{Match: make(Match, len(f.Match))}
	for i, m := range f.Match {
		z.Match[i] = MatchField{Field: m.Field, Masked: m.Masked}
		if m.Field == FieldRaw {
			z.Match[i].Raw = string(make([]byte, len(m.Raw)))
		}
	}
	z.Meter = min(f.Meter, 1) // presence only: patched as 0
	z.ClearActions, z.WriteMetadata, z.GotoTable = f.ClearActions, f.WriteMetadata, min(f.GotoTable, 0)
	z.Apply, z.Write = zeroActions(f.Apply), zeroActions(f.Write)
	return z
}

// patch writes f's values into an encoded FLOW_MOD of f's shape.
func (f *Flow) patch(b []byte, cmd uint8, xid uint32) {
	be := binary.BigEndian
	be.PutUint32(b[4:], xid)
	be.PutUint64(b[8:], f.Cookie)
	b[24], b[25] = f.Table, cmd
	be.PutUint16(b[26:], f.IdleTimeout)
	be.PutUint16(b[28:], f.HardTimeout)
	be.PutUint16(b[30:], f.Priority)
	be.PutUint16(b[44:], f.Flags)
	off := 48 + 4 // the match's TLVs
	for _, m := range f.Match {
		if m.Field == FieldRaw {
			off += copy(b[off:], m.Raw)
			continue
		}
		size := m.Field.Size()
		putN(b[off+4:], m.Value, size)
		off += 4 + size
		if m.Masked {
			putN(b[off:], m.Mask, size)
			off += size
		}
	}
	off = 48 + (off-48+7)&^7
	if isDelete(cmd) {
		return
	}
	in := &f.Instructions
	if in.Meter != 0 {
		be.PutUint32(b[off+4:], in.Meter)
		off += 8
	}
	if len(in.Apply) > 0 {
		off = patchActions(b, off+8, in.Apply)
	}
	if in.ClearActions {
		off += 8
	}
	if len(in.Write) > 0 {
		off = patchActions(b, off+8, in.Write)
	}
	if in.WriteMetadata {
		be.PutUint64(b[off+8:], in.Metadata)
		be.PutUint64(b[off+16:], in.MetadataMask)
		off += 24
	}
	if in.GotoTable >= 0 {
		b[off+4] = uint8(in.GotoTable)
	}
}

// patchActions writes the actions' values from off and returns the offset
// after them.
func patchActions(b []byte, off int, acts []Action) int {
	be := binary.BigEndian
	for _, a := range acts {
		switch a.Kind {
		case ActOutput:
			be.PutUint32(b[off+4:], a.Arg)
			be.PutUint16(b[off+8:], a.MaxLen)
			off += 16
		case ActGroup, ActSetQueue:
			be.PutUint32(b[off+4:], a.Arg)
			off += 8
		case ActPushVLAN:
			be.PutUint16(b[off+4:], uint16(a.Arg))
			off += 8
		case ActPopVLAN, ActDecTTL:
			off += 8
		case ActSetField:
			size := a.Field.Size()
			putN(b[off+8:], a.Value, size)
			off += (8 + size + 7) &^ 7
		case ActRaw:
			off += copy(b[off:], a.Raw)
		}
	}
	return off
}

func putN(b []byte, v uint64, n int) {
	for i := n - 1; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
}

// AppendPacketOut appends a PACKET_OUT as the package's AppendPacketOut
// does, from a template per action shape.
func (e *Encoder) AppendPacketOut(dst []byte, xid, inPort uint32, acts []Action, data []byte) ([]byte, error) {
	var k shapeKey
	ok := k.add(0xfc) && k.addActions(acts)
	var t []byte
	found := ok && k.n > 0 && k.equal(&e.lastOut)
	if found {
		t = e.lastOutT
	} else if t, found = e.templates[k]; ok && found {
		e.lastOut, e.lastOutT = k, t
	}
	if ok && !found {
		enc, err := AppendPacketOut(nil, xid, inPort, acts, nil)
		if err != nil {
			return dst, err
		}
		t = e.learn(k, enc, func(b []byte) { patchPacketOut(b, 0, 0, zeroActions(acts)) },
			func(b []byte) { patchPacketOut(b, xid, inPort, acts) })
	}
	if !ok || t == nil || len(data) > 0xffff-len(t) {
		e.Encoded++
		return AppendPacketOut(dst, xid, inPort, acts, data)
	}
	e.Templated++
	n := len(dst)
	dst = append(append(dst, t...), data...)
	b := dst[n:]
	patchPacketOut(b, xid, inPort, acts)
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	return dst, nil
}

// patchPacketOut writes xid, in_port and the actions' values into an
// encoded PACKET_OUT (header, buffer_id, in_port, actions_len, pad,
// actions).
func patchPacketOut(b []byte, xid, inPort uint32, acts []Action) {
	binary.BigEndian.PutUint32(b[4:], xid)
	binary.BigEndian.PutUint32(b[12:], inPort)
	patchActions(b, 24, acts)
}
