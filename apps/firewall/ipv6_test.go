package firewall

import (
	"fmt"
	"strings"
	"testing"

	"github.com/loom-sdn/loom/model"
)

// TestCompileIPv6: IPv6 rules compile like IPv4's, on dl_type 0x86dd,
// with ipv6_src prefixes and the remote group's IPv6 addresses, icmp as
// ICMPv6 (58); an IPv4 and an IPv6 rule with the same protocol are two
// conjunctions; an IPv6 rule open to everything is one flow per port.
func TestCompileIPv6(t *testing.T) {
	l := newLab(t)
	l.Create(
		&model.Host{Meta: meta("hv1"), OVSDB: "unix:/a", VTEPIP: "10.200.0.1"},
		&model.Network{Meta: meta("blue"), Type: "vxlan", VNI: 5001},
		&model.Subnet{Meta: meta("blue-a"), Network: "blue", CIDR: "10.1.0.0/24"},
		&model.Subnet{Meta: meta("blue-6"), Network: "blue", CIDR: "fd00::/64"},
		&model.SecurityGroup{Meta: meta("web"), Rules: []model.Rule{
			{Direction: "ingress", Ethertype: "ipv6", Protocol: "tcp", PortMin: 22, RemoteCIDR: "fd00:9::/32"},
			{Direction: "ingress", Ethertype: "ipv6", Protocol: "icmp", RemoteGroup: "web"},
			{Direction: "ingress", Protocol: "icmp", RemoteGroup: "web"},
		}},
		&model.SecurityGroup{Meta: meta("open6"), Rules: []model.Rule{{Direction: "ingress", Ethertype: "ipv6"}}},
		&model.Port{Meta: meta("w1"), Network: "blue", MAC: "02:00:00:00:01:01", IPs: []string{"10.1.0.11", "fd00::11"}, SecurityGroups: []string{"web"}},
		&model.Port{Meta: meta("w2"), Network: "blue", MAC: "02:00:00:00:01:02", IPs: []string{"10.1.0.12", "fd00::12"}, SecurityGroups: []string{"web"}},
		&model.Port{Meta: meta("o1"), Network: "blue", MAC: "02:00:00:00:01:03", IPs: []string{"fd00::13"}, SecurityGroups: []string{"open6"}},
	)
	l.Bind("w1", "hv1", "tap-w1", 5)
	l.Bind("o1", "hv1", "tap-o1", 7)
	web := l.groupID("web")
	ssh6 := conj(rule{ingress: true, stateful: true, v6: true, proto: 6, portMin: 22, portMax: 22,
		cidr6: [16]byte{0xfd, 0, 0, 9}, cidrBits: 32})
	icmp6 := conj(rule{ingress: true, stateful: true, v6: true, proto: 58, group: web})
	icmp4 := conj(rule{ingress: true, stateful: true, proto: 1, group: web})
	commit := "ct(commit,zone=NXM_NX_CT_ZONE[])"
	got := strings.Join(l.compile("hv1"), "\n")
	for _, want := range []string{
		fmt.Sprintf("table=11, priority=100,ipv6,reg7=0x5 actions=conjunction(%d,1/3),conjunction(%d,1/3)", min(icmp6, ssh6), max(icmp6, ssh6)),
		fmt.Sprintf("table=11, priority=100,ipv6,ipv6_src=fd00:9::/32 actions=conjunction(%d,2/3)", ssh6),
		fmt.Sprintf("table=11, priority=100,tcp6,tp_dst=22 actions=conjunction(%d,3/3)", ssh6),
		fmt.Sprintf("table=11, priority=100,conj_id=%d,ipv6 actions=%s,goto_table:12", ssh6, commit),
		fmt.Sprintf("table=11, priority=100,ipv6,ipv6_src=fd00::11 actions=conjunction(%d,2/3)", icmp6),
		fmt.Sprintf("table=11, priority=100,ipv6,ipv6_src=fd00::12 actions=conjunction(%d,2/3)", icmp6),
		fmt.Sprintf("table=11, priority=100,icmp6 actions=conjunction(%d,3/3)", icmp6),
		fmt.Sprintf("table=11, priority=100,conj_id=%d,ipv6 actions=%s,goto_table:12", icmp6, commit),
		fmt.Sprintf("table=11, priority=100,ip,nw_src=10.1.0.11 actions=conjunction(%d,2/3)", icmp4),
		fmt.Sprintf("table=11, priority=100,icmp actions=conjunction(%d,3/3)", icmp4),
		// o1's group opens IPv6 ingress: one flow, no conjunction; its
		// IPv4 ingress stays closed.
		"table=11, priority=100,ipv6,reg7=0x7 actions=" + commit + ",goto_table:12",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %s", want)
		}
	}
	if strings.Contains(got, "ip,reg7=0x7 actions="+commit) {
		t.Errorf("an IPv6 rule opened o1's IPv4:\n%s", got)
	}
	if t.Failed() {
		t.Logf("hv1:\n%s", got)
	}
}
