package flow

import (
	"os"
	"os/exec"
	"path/filepath"
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
	ofctl, err := exec.LookPath("ovs-ofctl")
	if err != nil {
		if os.Getenv("LOOM_REQUIRE_OVS") == "1" {
			t.Fatal("no ovs-ofctl and LOOM_REQUIRE_OVS=1")
		}
		t.Skip("no ovs-ofctl")
	}
	f := New(4, 100, Match{}.EthType(0x0800)).Act(SetField(EthDst, 0x020000000001), ClearInPort()).Goto(5)
	b, err := f.AppendFlowMod(nil, CmdAdd, 1)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "mods")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(ofctl, "ofp-parse", file).CombinedOutput()
	if err != nil {
		t.Fatalf("ovs-ofctl ofp-parse: %v\n%s", err, out)
	}
	if want := "actions=set_field:02:00:00:00:00:01->eth_dst,load:0->NXM_OF_IN_PORT[],goto_table:5"; !strings.Contains(string(out), want) {
		t.Errorf("ovs-ofctl read\n%s\nwant it to contain\n %s", out, want)
	}
}
