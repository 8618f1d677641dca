package flow

import (
	"strings"
	"testing"
)

func TestCTNATPortString(t *testing.T) {
	for _, c := range []struct {
		s    CTSpec
		want string
	}{
		{CTSpec{Commit: true, Zone: 0x8001, Table: 12, NAT: NATDst, Addr: 0x0a00000c, Port: 8080}, "ct(commit,table=12,zone=32769,nat(dst=10.0.0.12:8080))"},
		{CTSpec{Commit: true, Zone: 3, Table: NoRecirc, NAT: NATSrc, Addr: 0x0a000064, Port: 80}, "ct(commit,zone=3,nat(src=10.0.0.100:80))"},
	} {
		if got := CT(c.s).String(); got != c.want {
			t.Errorf("got %s, want %s", got, c.want)
		}
	}
}

// TestOfctlParsesNATPort hands a FLOW_MOD and a select GROUP_MOD with
// nat(dst=A:P) to ovs-ofctl ofp-parse (when installed): OVS decodes the
// port range as Loom encodes it.
func TestOfctlParsesNATPort(t *testing.T) {
	f := New(4, 100, Match{}.EthType(0x0800)).Act(CT(CTSpec{Commit: true, Zone: 9, Table: 5, NAT: NATDst, Addr: 0x0a00000c, Port: 8080}))
	g := &Group{ID: 7, Type: GroupSelect, Buckets: []Bucket{
		{Weight: 3, WatchPort: PortAny, WatchGroup: 0xffffffff, Actions: []Action{CT(CTSpec{Commit: true, Zone: 9, Table: 5, NAT: NATDst, Addr: 0x0a00000c, Port: 8080})}},
		{Weight: 1, WatchPort: PortAny, WatchGroup: 0xffffffff, Actions: []Action{CT(CTSpec{Commit: true, Zone: 9, Table: 5, NAT: NATSrc, Addr: 0x0a00000d, Port: 53})}},
	}}
	b, err := f.AppendFlowMod(nil, CmdAdd, 1)
	if err != nil {
		t.Fatal(err)
	}
	if b, err = g.AppendMod(b, ModAdd, 2); err != nil {
		t.Fatal(err)
	}
	s := ofpParse(t, b)
	for _, want := range []string{
		"actions=ct(commit,table=5,zone=9,nat(dst=10.0.0.12:8080))",
		"type=select,bucket=weight:3,actions=ct(commit,table=5,zone=9,nat(dst=10.0.0.12:8080))",
		// (ovs-ofctl leaves out the default weight 1)
		"bucket=actions=ct(commit,table=5,zone=9,nat(src=10.0.0.13:53))",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("ovs-ofctl read\n%s\nwant it to contain\n %s", s, want)
		}
	}
}
