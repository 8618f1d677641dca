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

// TestOVSFirewallIPv6: security groups hold IPv6 too: a port with groups
// gets no new IPv6 connection in unless an IPv6 rule allows it (an IPv4
// rule does not), what it opens gets its replies, neighbour discovery
// passes, and IPv6 rules match remote groups (their members' IPv6
// addresses), prefixes and ports; without groups IPv6 is open.
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
	// IPv6 rules: icmp from the members of group clients (their IPv6
	// addresses), tcp 7000 from fd00::/120 (a masked match); 7001 listens but is not
	// allowed.
	for _, port := range []string{"7000", "7001"} {
		background(t, v2, vmPython, "-c", echoServer6, port)
	}
	o.create("security-groups", "name=clients", "rules=[]")
	o.patch("/api/v1/ports/v1", `{"security_groups":["clients"]}`)
	o.patch("/api/v1/security-groups/closed", `{"rules":[
		{"direction":"ingress","ethertype":"ipv6","protocol":"icmp","remote_group":"clients"},
		{"direction":"ingress","ethertype":"ipv6","protocol":"tcp","port_min":7000,"remote_cidr":"fd00::/120"}]}`)
	o.converged()
	waitForD(t, 5*time.Second, "ping6 from a member of the remote group", func() bool { return ping6(v1, "fd00::12") == nil })
	var got string
	waitForD(t, 5*time.Second, "tcp 7000 over IPv6 from fd00::/120", func() bool {
		got = py(t, v1, connectClient, "fd00::12", "7000", "1")
		return got == "ok"
	}, func() string { return got })
	if got := py(t, v1, connectClient, "fd00::12", "7001", "1"); !strings.HasPrefix(got, "TimeoutError") {
		t.Errorf("tcp 7001 over IPv6 (listening, not allowed): %s", got)
	}
	if err := v1.Ping("10.1.0.12", 1, 2*time.Second); err == nil {
		t.Error("v1 -> v2 over IPv4 with IPv6 rules only: answered")
	}
	// Out of the remote group: its IPv6 icmp stops.
	o.patch("/api/v1/ports/v1", `{"security_groups":[]}`)
	o.converged()
	if err := ping6(v1, "fd00::12"); err == nil {
		t.Error("ping6 from a port no longer in the remote group: answered")
	}

	o.patch("/api/v1/ports/v2", `{"security_groups":[]}`)
	o.converged()
	waitForD(t, 5*time.Second, "IPv6 open again without groups", func() bool { return ping6(v1, "fd00::12") == nil })
}

// echoServer6 is echoServer on IPv6 (::).
const echoServer6 = `import socket, socketserver, sys
class S(socketserver.ThreadingTCPServer):
    address_family = socket.AF_INET6
    allow_reuse_address = True
class H(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            self.wfile.write(line)
            self.wfile.flush()
S(("::", int(sys.argv[1])), H).serve_forever()
`
