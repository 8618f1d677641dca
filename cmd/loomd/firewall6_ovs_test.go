package main

import (
	"strings"
	"testing"
	"time"

	"github.com/loom-sdn/loom/internal/ovslab"
)

// enableIPv6 turns IPv6 on in a VM (ovslab turns it off) and gives eth0
// addr (no duplicate address detection).
func enableIPv6(t *testing.T, v *ovslab.VM, addr string) {
	t.Helper()
	for _, argv := range [][]string{
		{"sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=0"},
		{"sysctl", "-qw", "net.ipv6.conf.eth0.disable_ipv6=0"},
		{"ip", "-6", "addr", "add", addr, "dev", "eth0", "nodad"},
	} {
		if out, err := v.Exec(argv...); err != nil {
			t.Fatalf("%s: %v %v %s", v.Name, argv, err, out)
		}
	}
}

func ping6(v *ovslab.VM, dst string) error {
	_, err := v.Exec("ping", "-6", "-n", "-c", "2", "-i", "0.2", "-W", "1", dst)
	return err
}

// TestOVSFirewallIPv6: security groups hold IPv6 too. Their rules are
// IPv4's, so a port with groups gets no new IPv6 connection in (default
// deny), while what it opens gets its replies and neighbour discovery
// passes; without groups IPv6 is open.
func TestOVSFirewallIPv6(t *testing.T) {
	o := newOverlayLab(t, "lldp,overlay,portpolicy,firewall")
	o.create("networks", "name=blue", "type=vxlan", "vni=5001")
	o.create("subnets", "name=blue-a", "network=blue", "cidr=10.1.0.0/24", "gateway=10.1.0.1")
	o.create("subnets", "name=blue-6", "network=blue", "cidr=fd00::/64")
	o.create("ports", "name=v1", "network=blue", "mac=02:00:00:00:06:01", `ips=["10.1.0.11","fd00::11"]`)
	o.create("ports", "name=v2", "network=blue", "mac=02:00:00:00:06:02", `ips=["10.1.0.12","fd00::12"]`)
	v1 := o.hosts["hv1"].AddVM("v1", "02:00:00:00:06:01", "10.1.0.11/24")
	v2 := o.hosts["hv2"].AddVM("v2", "02:00:00:00:06:02", "10.1.0.12/24")
	o.waitBound("v1", "hv1")
	o.waitBound("v2", "hv2")
	enableIPv6(t, v1, "fd00::11/64")
	enableIPv6(t, v2, "fd00::12/64")
	o.converged()
	waitForD(t, 10*time.Second, "IPv6 between v1 and v2 without groups", func() bool { return ping6(v1, "fd00::12") == nil })

	o.create("security-groups", "name=closed", "rules=[]")
	o.patch("/api/v1/ports/v2", `{"security_groups":["closed"]}`)
	o.converged()
	if err := ping6(v1, "fd00::12"); err == nil {
		t.Error("v1 -> v2 over IPv6 with v2's ingress closed: answered")
	}
	if err := ping6(v2, "fd00::11"); err != nil {
		t.Errorf("v2 -> v1 over IPv6 (egress open, replies allowed): %v", err)
	}
	if out, _ := v2.Exec("ip", "-6", "neigh", "show", "fd00::11"); !strings.Contains(out, "lladdr") {
		t.Errorf("v2 did not resolve v1 by neighbour discovery: %q", out)
	}
	// An IPv4 rule does not open IPv6.
	o.patch("/api/v1/security-groups/closed", `{"rules":[{"direction":"ingress","protocol":"icmp"}]}`)
	o.converged()
	if err := v1.Ping("10.1.0.12", 1, 2*time.Second); err != nil {
		t.Errorf("v1 -> v2 over IPv4 with icmp allowed: %v", err)
	}
	if err := ping6(v1, "fd00::12"); err == nil {
		t.Error("v1 -> v2 over IPv6 with only an IPv4 icmp rule: answered")
	}
	o.patch("/api/v1/ports/v2", `{"security_groups":[]}`)
	o.converged()
	waitForD(t, 5*time.Second, "IPv6 open again without groups", func() bool { return ping6(v1, "fd00::12") == nil })
}
