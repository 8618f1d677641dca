package flow

import (
	"strings"
	"testing"
)

// TestOfctlParsesClearInPort: ovs-ofctl reads ClearInPort as OVN's
// "load:0->NXM_OF_IN_PORT[]" (OpenFlow 1.3's set_field on OXM in_port is
// refused with OFPBAC_BAD_SET_ARGUMENT).
func TestOfctlParsesClearInPort(t *testing.T) {
	if got := ClearInPort().String(); got != "load:0->NXM_OF_IN_PORT[]" {
		t.Errorf("String: %s", got)
	}
	f := New(4, 100, Match{}.EthType(0x0800)).Act(SetField(EthDst, 0x020000000001), ClearInPort()).Goto(5)
	b, err := f.AppendFlowMod(nil, CmdAdd, 1)
	if err != nil {
		t.Fatal(err)
	}
	out := ofpParse(t, b)
	if want := "actions=set_field:02:00:00:00:00:01->eth_dst,load:0->NXM_OF_IN_PORT[],goto_table:5"; !strings.Contains(out, want) {
		t.Errorf("ovs-ofctl read\n%s\nwant it to contain\n %s", out, want)
	}
}
