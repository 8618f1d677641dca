package wire

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"testing"
)

// reproducers are inputs that crash or hang libOpenflow's decoders
// (shared/notes/openflow-libs.md §5); each must decode to an error or a
// value here, never a panic or a hang.
var reproducers = []string{
	"",
	"040a000800000001",         // 8-byte PACKET_IN
	"0401000800000001",         // 8-byte ERROR
	"040c000800000001",         // 8-byte PORT_STATUS
	"0406000800000001",         // 8-byte FEATURES_REPLY
	"0400000c0000000100000004", // HELLO element type 0 length 4 (loops forever in libOpenflow)
	"0400000c0000000100010000", // HELLO element of length 0
	"0413002000000001000d00000000000000000000000000000000000000000000", // MP_REPLY PORT_DESC
	"041300180000000100070000000000000008000000000001",                 // MP_REPLY GROUP_DESC
	"0404001400000001000023200000001e00000000",                         // NX experimenter type 30
	"040a005c00000000ffffffff0000000000000000000000000001001280000004000000010001d00200010000000000000000ffffffffffff001122334455080600000000000000000000000000000000000000000000000000000000",
	"040a005400000000ffffffff0000000000000000000000000001000a0000000200010000000000000000ffffffffffff001122334455080600000000000000000000000000000000000000000000000000000000",
	"040a004c00000000ffffffff0000000000000000000000000001000c8000000400000001000000000000ffffffffffff00112233445508004000000000000000000000000000000000000000",
	"040a006800000000ffffffff0000000000000000000000000001000c8000000400000001000000000000ffffffffffff00112233445586dd6000000000000000000000000000000000000000000000000000000000000000000000000000000000ff000000000000",
	"0413001000000001000100000000000000380000000000000000", // FLOW reply with a short entry
	"040400180000000e4f4e4600000008fc0000000100000001",     // bundle control reply
}

func addSeeds(f *testing.F) {
	for _, h := range reproducers {
		b, err := hex.DecodeString(h)
		if err != nil {
			f.Fatalf("bad seed %q: %v", h, err)
		}
		f.Add(b)
	}
}

// decodeAll runs every decoder that applies to msg's type (and the
// generic ones), as the session and the runtime would.
func decodeAll(msg []byte) {
	h, err := ParseHeader(msg)
	if err != nil || CheckHeader(h) != nil || int(h.Length) != len(msg) {
		return
	}
	switch h.Type {
	case TypeHello:
		DecodeHello(msg)
	case TypeError:
		DecodeError(msg)
	case TypeFeaturesReply:
		DecodeFeatures(msg)
	case TypePacketIn:
		var p PacketIn
		if DecodePacketIn(msg, &p) == nil {
			p.Match.InPort()
			p.Match.Lookup(OXMClassOpenFlow, OXMTunnelID)
		}
	case TypePortStatus:
		DecodePortStatus(msg)
	case TypeFlowRemoved:
		DecodeFlowRemoved(msg)
	case TypeFlowMod:
		DecodeFlowMod(msg)
	case TypeRoleReply:
		DecodeRoleReply(msg)
	case TypeExperimenter:
		DecodeExperimenter(msg)
		DecodeBundleControl(msg)
	case TypeMultipartReply:
		mp, err := DecodeMultipartReply(msg)
		if err != nil {
			return
		}
		switch mp.Type {
		case MultipartDesc:
			DecodeDesc(mp.Body)
		case MultipartPortDesc:
			DecodePortDesc(mp.Body)
		case MultipartFlow:
			DecodeFlowStats(mp.Body, func(*FlowStats) error { return nil })
		case MultipartGroupDesc:
			DecodeGroupDesc(mp.Body, func(*GroupDesc) error { return nil })
		case MultipartMeterConf:
			DecodeMeterConfig(mp.Body, func(*MeterConfig) error { return nil })
		}
	}
}

// FuzzDecode feeds framed messages (header length = input length, as the
// framing layer guarantees) to the decoders.
func FuzzDecode(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < HeaderLen || len(b) > MaxMessageLen {
			return
		}
		msg := bytes.Clone(b)
		be.PutUint16(msg[2:4], uint16(len(msg)))
		decodeAll(msg)
	})
}

// FuzzReadMessage feeds an arbitrary byte stream to the framing layer and
// decodes whatever it frames.
func FuzzReadMessage(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		for i := 0; i < 64; i++ {
			h, msg, err := ReadMessage(r)
			if err != nil {
				return
			}
			if int(h.Length) != len(msg) {
				t.Fatalf("framed %d bytes for length %d", len(msg), h.Length)
			}
			decodeAll(msg)
		}
	})
}

// FuzzMatch decodes arbitrary OXM lists.
func FuzzMatch(f *testing.F) {
	f.Add([]byte{0x80, 0x00, 0x00, 0x04, 0, 0, 0, 1})
	f.Add([]byte{0x00, 0x01, 0xd0, 0x02, 0x00, 0x01})
	f.Add([]byte{0xff, 0xff, 0x01, 0x02, 0xaa})
	f.Fuzz(func(t *testing.T, b []byte) {
		m := Match(b)
		port, err := m.validateInPort() // the packet-in path's one pass
		if want := m.Validate(); fmt.Sprint(err) != fmt.Sprint(want) {
			t.Fatalf("validateInPort: %v, Validate: %v", err, want)
		}
		if err != nil {
			return
		}
		if want, _ := m.InPort(); port != want {
			t.Fatalf("validateInPort: in_port %d, InPort: %d", port, want)
		}
		for len(m) > 0 {
			o, rest, err := m.Next()
			if err != nil {
				t.Fatalf("validated match failed to iterate: %v", err)
			}
			if o.HasMask && len(o.Value) != len(o.Mask) {
				t.Fatalf("value %d and mask %d differ", len(o.Value), len(o.Mask))
			}
			m = rest
		}
	})
}
