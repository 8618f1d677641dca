package kit

import (
	"testing"

	"github.com/loom-sdn/loom/southbound/openflow/flow"
)

// TestRegistryDisjoint: no two register ranges share a bit, nor two
// metadata ranges, nor two meter, group or zone ranges an id.
func TestRegistryDisjoint(t *testing.T) {
	regs := append(append([]RegRange{}, Registers...), Metadata...)
	for i, a := range regs {
		if a.Bits <= 0 || a.Ofs < 0 {
			t.Errorf("%s: empty range", a.Name)
		}
		for _, b := range regs[i+1:] {
			if a.Field == b.Field && a.Ofs < b.Ofs+b.Bits && b.Ofs < a.Ofs+a.Bits {
				t.Errorf("%s (%v[%d..%d]) overlaps %s (%v[%d..%d])", a.Name, a.Field, a.Ofs, a.Ofs+a.Bits-1,
					b.Name, b.Field, b.Ofs, b.Ofs+b.Bits-1)
			}
		}
	}
	for kind, rs := range map[string][]Range{"meter": Meters, "group": Groups, "zone": Zones} {
		for i, a := range rs {
			if a.Lo > a.Hi {
				t.Errorf("%s %s: empty", kind, a.Name)
			}
			for _, b := range rs[i+1:] {
				if a.Lo <= b.Hi && b.Lo <= a.Hi {
					t.Errorf("%s ranges %s [%#x, %#x] and %s [%#x, %#x] overlap", kind, a.Name, a.Lo, a.Hi, b.Name, b.Lo, b.Hi)
				}
			}
		}
	}
}

// TestRegistryListsEveryRegister: each named register constant has its
// range in Registers, and OpenFlow's reserved ids are clear.
func TestRegistryListsEveryRegister(t *testing.T) {
	for _, f := range []flow.Field{RegLBAffinityPort, RegLBFlags, RegLBAffinityIP, RegPriority, RegRouter, RegOutPort} {
		n := 0
		for _, r := range Registers {
			if r.Field == f {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%v has %d ranges in Registers, want 1", f, n)
		}
	}
	// OFPM_MAX (0xffff0000) and up are reserved meter ids; OFPG_MAX
	// (0xffffff00) and up reserved group ids.
	for _, m := range Meters {
		if m.Hi >= 0xffff0000 || m.Lo == 0 {
			t.Errorf("meter range %s reaches reserved ids", m.Name)
		}
	}
	for _, g := range Groups {
		if g.Hi >= 0xffffff00 {
			t.Errorf("group range %s reaches reserved ids", g.Name)
		}
	}
	for _, key := range []uint32{0, 1, 1<<24 - 1, 3<<24 - 1} {
		for _, local := range []bool{false, true} {
			if g := FloodGroup(key, local); g < GroupFloodLo || g > GroupFloodHi {
				t.Errorf("FloodGroup(%#x, %v) = %#x, outside its range", key, local, g)
			}
		}
	}
	for _, n := range []uint16{ZoneMin, ZoneMax} {
		if g := LBGroup(n); g < GroupLBLo || g > GroupLBHi {
			t.Errorf("LBGroup(%d) = %#x, outside its range", n, g)
		}
	}
}
