package flow

import (
	"encoding/binary"
	"strings"
	"testing"
)

// TestGroupStringIsOfctlText: Group.String is what ovs-ofctl -O OpenFlow13
// dump-groups prints for the group (the group-desc reply's text).
func TestGroupStringIsOfctlText(t *testing.T) {
	groups := []*Group{
		{ID: 1, Type: GroupAll, Buckets: []Bucket{{WatchPort: PortAny, WatchGroup: 0xffffffff, Actions: []Action{Output(1)}},
			{WatchPort: PortAny, WatchGroup: 0xffffffff, Actions: []Action{SetField(TunDst, 0x0ac80002), Output(1000)}}}},
		{ID: 0x40000003, Type: GroupSelect, Buckets: []Bucket{
			{Weight: 3, WatchPort: PortAny, WatchGroup: 0xffffffff, Actions: []Action{CT(CTSpec{Commit: true, Zone: 1, Table: 6, NAT: NATDst, Addr: 0x0a01000b, Port: 8080})}},
			{Weight: 1, WatchPort: PortAny, WatchGroup: 0xffffffff, Actions: []Action{SetField(Reg4, 0x0a01000c), Resubmit(15)}}}},
		{ID: 7, Type: GroupFF, Buckets: []Bucket{{WatchPort: 2, WatchGroup: 0xffffffff, Actions: []Action{Output(2)}},
			{WatchPort: 3, WatchGroup: 0xffffffff, Actions: []Action{Output(3)}}}},
		{ID: 9, Type: GroupIndirect, Buckets: []Bucket{{WatchPort: PortAny, WatchGroup: 0xffffffff, Actions: []Action{DecTTL(), Output(PortController)}}}},
	}
	// One OFPMP_GROUP_DESC reply: each entry is a GROUP_MOD's body with
	// its length in place of the command.
	b := make([]byte, 16, 512)
	b[0], b[1] = 4, 19                   // OpenFlow 1.3, OFPT_MULTIPART_REPLY
	binary.BigEndian.PutUint16(b[8:], 7) // OFPMP_GROUP_DESC
	for i, g := range groups {
		gm, err := g.AppendMod(nil, ModAdd, uint32(i))
		if err != nil {
			t.Fatal(err)
		}
		e := gm[8:]
		binary.BigEndian.PutUint16(e, uint16(len(e)))
		b = append(b, e...)
	}
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	var lines []string
	for line := range strings.Lines(ofpParse(t, b)) {
		if strings.HasPrefix(line, " group_id=") {
			lines = append(lines, strings.TrimSpace(line))
		}
	}
	if len(lines) != len(groups) {
		t.Fatalf("ovs-ofctl printed %d groups for %d", len(lines), len(groups))
	}
	for i, g := range groups {
		if got := g.String(); got != lines[i] {
			t.Errorf("group %d:\n Loom      %s\n ovs-ofctl %s", i, got, lines[i])
		}
	}
}
