package portpolicy

import (
	"slices"
	"strings"
	"testing"

	"github.com/loom-sdn/loom/model"
	"github.com/loom-sdn/loom/view/viewtest"
)

var meta = viewtest.Meta

var testTables = Tables{Security: 2, AfterSecurity: 3, Out: 12, AfterOut: 13}

func compile(l *viewtest.Lab, host string) string {
	var out []string
	st := Compile(l.View.Snapshot(), l.DPID(host), testTables)
	for _, f := range st.Flows {
		out = append(out, f.String())
	}
	for _, m := range st.Meters {
		out = append(out, m.String())
	}
	slices.Sort(out)
	return strings.Join(out, "\n") + "\n"
}

func TestCompile(t *testing.T) {
	l := viewtest.New(t)
	prio, off := 5, false
	l.Create(
		&model.Host{Meta: meta("hv1"), OVSDB: "unix:/a", VTEPIP: "10.200.0.1"},
		&model.Network{Meta: meta("blue"), Type: "vxlan", VNI: 5001},
		&model.Subnet{Meta: meta("blue-a"), Network: "blue", CIDR: "10.1.0.0/24"},
		&model.PortGroup{Meta: meta("gold"), BandwidthKbps: 20000, BurstKB: 2000, Priority: &prio, DHCPIsolation: true},
		&model.PortGroup{Meta: meta("open"), IPMACBinding: &off},
		&model.Port{Meta: meta("a"), Network: "blue", MAC: "02:00:00:00:01:01", IPs: []string{"10.1.0.11"}},
		&model.Port{Meta: meta("g"), Network: "blue", MAC: "02:00:00:00:01:02", IPs: []string{"10.1.0.12"}, PortGroup: "gold"},
		&model.Port{Meta: meta("o"), Network: "blue", MAC: "02:00:00:00:01:03", IPs: []string{"10.1.0.13"}, PortGroup: "open"},
	)
	l.Bind("a", "hv1", "tap-a", 5)
	l.Bind("g", "hv1", "tap-g", 6)
	l.Bind("o", "hv1", "tap-o", 7)
	got := compile(l, "hv1")
	for _, want := range []string{
		// Port a: no group, port security.
		"table=2, priority=100,ip,in_port=5,dl_src=02:00:00:00:01:01,nw_src=10.1.0.11 actions=goto_table:3\n",
		"table=2, priority=100,arp,in_port=5,dl_src=02:00:00:00:01:01,arp_spa=10.1.0.11,arp_sha=02:00:00:00:01:01 actions=goto_table:3\n",
		"table=2, priority=100,udp,in_port=5,dl_src=02:00:00:00:01:01,nw_src=0.0.0.0,nw_dst=255.255.255.255,tp_src=68,tp_dst=67 actions=goto_table:3\n",
		"table=2, priority=100,arp,in_port=5,dl_src=02:00:00:00:01:01,arp_spa=0.0.0.0,arp_sha=02:00:00:00:01:01 actions=goto_table:3\n",
		"table=2, priority=90,in_port=5 actions=drop\n",
		// Port g: gold: marked CS5, metered both ways, DHCP isolated.
		"table=2, priority=100,ip,in_port=6,dl_src=02:00:00:00:01:02,nw_src=10.1.0.12 actions=meter:65542,set_field:40->ip_dscp,set_field:0x5->reg5,goto_table:3\n",
		"table=2, priority=110,udp,in_port=6,tp_src=67 actions=drop\n",
		"table=12, priority=100,reg7=0x6 actions=meter:131078,goto_table:13\n",
		"meter=65542,kbps,burst,stats,band=type=drop,rate=20000,burst_size=16000\n",
		"meter=131078,kbps,burst,stats,band=type=drop,rate=20000,burst_size=16000\n",
		// Port o: port security off.
		"table=2, priority=90,in_port=7 actions=goto_table:3\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("lacks %s", want)
		}
	}
	if strings.Contains(got, "in_port=7,dl_src") {
		t.Error("port o has IP-MAC binding although its group turns it off")
	}
	if t.Failed() {
		t.Logf("hv1:\n%s", got)
	}
}

func TestIPv6Sources(t *testing.T) {
	l := viewtest.New(t)
	l.Create(
		&model.Host{Meta: meta("hv1"), OVSDB: "unix:/a", VTEPIP: "10.200.0.1"},
		&model.Network{Meta: meta("blue"), Type: "vxlan", VNI: 5001},
		&model.Subnet{Meta: meta("blue-6"), Network: "blue", CIDR: "fd00::/64"},
		&model.Port{Meta: meta("a"), Network: "blue", MAC: "02:00:00:00:01:01", IPs: []string{"fd00::11"}},
	)
	l.Bind("a", "hv1", "tap-a", 5)
	got := compile(l, "hv1")
	for _, want := range []string{
		"table=2, priority=100,ipv6,in_port=5,dl_src=02:00:00:00:01:01,ipv6_src=fd00::11 actions=goto_table:3\n",
		"table=2, priority=100,ipv6,in_port=5,dl_src=02:00:00:00:01:01,ipv6_src=fe80::ff:fe00:101 actions=goto_table:3\n",
		"table=2, priority=90,in_port=5 actions=drop\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("lacks %s\n%s", want, got)
		}
	}
}
