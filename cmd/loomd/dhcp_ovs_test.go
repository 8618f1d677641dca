package main

import (
	"bufio"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/loom-sdn/loom/internal/testenv"

	"github.com/loom-sdn/loom/internal/ovslab"
)

// dhcpScript is udhcpc's script: it applies a lease the way a VM's DHCP
// client does (address, MTU, classless static routes or else the default
// route via the router) and records what it got in $LEASE.
const dhcpScript = `#!/bin/sh
event=$1
case "$event" in
bound|renew)
	ip -4 addr flush dev "$interface"
	ip addr add "$ip/$mask" dev "$interface"
	[ -n "$mtu" ] && ip link set dev "$interface" mtu "$mtu"
	if [ -n "$staticroutes" ]; then
		set -- $staticroutes
		while [ $# -ge 2 ]; do
			ip route replace "$1" via "$2" dev "$interface"
			shift 2
		done
	elif [ -n "$router" ]; then
		for r in $router; do ip route replace default via "$r" dev "$interface"; break; done
	fi
	echo "event=$event ip=$ip mask=$mask router=$router dns=$dns mtu=$mtu serverid=$serverid lease=$lease staticroutes=$staticroutes" >>"$LEASE"
	;;
esac
exit 0
`

// dhcpVM is a VM whose address comes from DHCP.
type dhcpVM struct {
	t     *testing.T
	vm    *ovslab.VM
	lease string // the script's record
}

// requireUdhcpc skips (or, under LOOM_REQUIRE_OVS=1, fails) without
// busybox's udhcpc.
func requireUdhcpc(t *testing.T) {
	t.Helper()
	testenv.RequireTools(t, "udhcpc")
}

func newDHCPVM(t *testing.T, v *ovslab.VM) *dhcpVM {
	dir := t.TempDir()
	script := filepath.Join(dir, "udhcpc.script")
	if err := os.WriteFile(script, []byte(dhcpScript), 0o755); err != nil {
		t.Fatal(err)
	}
	return &dhcpVM{t: t, vm: v, lease: filepath.Join(dir, "lease")}
}

// udhcpc runs the client once: 3 DISCOVERs a second apart, quit with or
// without a lease. It returns the lease record ("" for none).
func (d *dhcpVM) udhcpc() (string, error) {
	out, err := d.vm.Exec("env", "LEASE="+d.lease, "udhcpc", "-i", "eth0", "-n", "-q", "-f", "-t", "3", "-T", "1",
		"-O", "staticroutes", "-s", filepath.Join(filepath.Dir(d.lease), "udhcpc.script"))
	rec, _ := os.ReadFile(d.lease)
	if err != nil {
		return string(rec), &udhcpcError{out, err}
	}
	return string(rec), nil
}

type udhcpcError struct {
	out string
	err error
}

func (e *udhcpcError) Error() string { return e.err.Error() + "\n" + e.out }

// leaseField returns the value of key in a lease record.
func leaseField(rec, key string) string {
	m := regexp.MustCompile(`(?:^|\s)` + key + `=(\S*)`).FindStringSubmatch(rec)
	if m == nil {
		return ""
	}
	return m[1]
}

// metric reads a sample of loomd's /metrics.
func metric(t *testing.T, api, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == name {
			v, _ := strconv.ParseFloat(f[1], 64)
			return v
		}
	}
	return 0
}

// TestOVSDHCP: VMs plugged in without addresses get the model's from
// Loom's DHCP server on their own host, with the subnet's options, and
// then talk; a VM with a MAC that is not its port's, and a port of a
// subnet with DHCP off, get no lease.
func TestOVSDHCP(t *testing.T) {
	requireUdhcpc(t)
	o := newOverlayLab(t, "lldp,overlay,router,dhcp")
	o.create("networks", "name=blue", "type=vxlan", "vni=5001")
	o.create("networks", "name=green", "type=vxlan", "vni=5003")
	o.create("networks", "name=plain", "type=vlan", "vlan=200")
	o.create("networks", "name=static", "type=vxlan", "vni=5006")
	o.create("subnets", "name=blue-a", "network=blue", "cidr=10.1.0.0/24", "gateway=10.1.0.1",
		`dns_servers=["10.1.0.53"]`, "lease_seconds=600",
		`host_routes=[{"destination":"192.168.50.0/24","nexthop":"10.1.0.254"}]`)
	o.create("subnets", "name=green-a", "network=green", "cidr=10.2.0.0/24", "gateway=10.2.0.1")
	o.create("subnets", "name=plain-a", "network=plain", "cidr=10.5.0.0/24", "gateway=10.5.0.1")
	o.create("subnets", "name=static-a", "network=static", "cidr=10.6.0.0/24", "dhcp=false")
	o.create("routers", "name=r1", `subnets=["blue-a","green-a"]`)
	ports := []struct{ name, network, mac, ip, host string }{
		{"b1", "blue", "02:00:00:00:01:01", "10.1.0.11", "hv1"},
		{"b2", "blue", "02:00:00:00:01:02", "10.1.0.12", "hv2"},
		{"b3", "blue", "02:00:00:00:01:03", "10.1.0.13", "hv2"},
		{"g1", "green", "02:00:00:00:03:01", "10.2.0.11", "hv3"},
		{"p1", "plain", "02:00:00:00:05:01", "10.5.0.11", "hv1"},
		{"p2", "plain", "02:00:00:00:05:02", "10.5.0.12", "hv2"},
		{"s1", "static", "02:00:00:00:06:01", "10.6.0.11", "hv3"},
	}
	vms := map[string]*dhcpVM{}
	for _, p := range ports {
		o.create("ports", "name="+p.name, "network="+p.network, "mac="+p.mac, `ips=["`+p.ip+`"]`)
		var v *ovslab.VM
		if p.name == "b3" {
			// b3's interface, but the VM has another MAC than the port's.
			v = o.hosts[p.host].AddVMPort("imposter", "b3", "02:00:00:00:09:09", "")
		} else {
			v = o.hosts[p.host].AddVMNoIP(p.name, p.mac)
		}
		o.vms[p.name] = v
		vms[p.name] = newDHCPVM(t, v)
		o.waitBound(p.name, p.host)
	}
	o.converged()

	lease := func(t *testing.T, name, want string) string {
		t.Helper()
		start := time.Now()
		rec, err := vms[name].udhcpc()
		if err != nil {
			t.Fatalf("%s: no lease: %v", name, err)
		}
		t.Logf("%s: lease in %v: %s", name, time.Since(start).Round(time.Millisecond), strings.TrimSpace(rec))
		addr, _ := o.vms[name].Exec("ip", "-4", "-o", "addr", "show", "dev", "eth0")
		if !strings.Contains(addr, " "+want+" ") {
			t.Errorf("%s: eth0 has %q, want %s", name, strings.TrimSpace(addr), want)
		}
		o.vms[name].IP = strings.Split(want, "/")[0]
		return rec
	}
	routes := func(name string) string {
		out, _ := o.vms[name].Exec("ip", "-4", "route", "show")
		return out
	}

	t.Run("routed subnet: address, options, routes", func(t *testing.T) {
		rec := lease(t, "b1", "10.1.0.11/24")
		for k, want := range map[string]string{"serverid": "10.1.0.1", "router": "10.1.0.1", "dns": "10.1.0.53",
			"lease": "600", "mtu": "1450", "mask": "24"} {
			if got := leaseField(rec, k); got != want {
				t.Errorf("%s = %q, want %q", k, got, want)
			}
		}
		r := routes("b1")
		if !strings.Contains(r, "default via 10.1.0.1 dev eth0") || !strings.Contains(r, "192.168.50.0/24 via 10.1.0.254 dev eth0") {
			t.Errorf("b1's routes (option 121 with the default via the gateway):\n%s", r)
		}
		if mtu, _ := o.vms["b1"].Exec("cat", "/sys/class/net/eth0/mtu"); strings.TrimSpace(mtu) != "1450" {
			t.Errorf("b1's MTU %q, want 1450", mtu)
		}
	})
	t.Run("across hosts: the leased VMs ping", func(t *testing.T) {
		lease(t, "b2", "10.1.0.12/24")
		if err := o.ping("b1", "b2"); err != nil {
			t.Error(err)
		}
		if err := o.ping("b2", "b1"); err != nil {
			t.Error(err)
		}
	})
	t.Run("routed subnet without host routes: option 3", func(t *testing.T) {
		rec := lease(t, "g1", "10.2.0.11/24")
		if leaseField(rec, "staticroutes") != "" || !strings.Contains(routes("g1"), "default via 10.2.0.1 dev eth0") {
			t.Errorf("g1: %s\n%s", rec, routes("g1"))
		}
	})
	t.Run("VLAN subnet without a router yet: the gateway as router, routed once attached without renewing", func(t *testing.T) {
		rec := lease(t, "p1", "10.5.0.11/24")
		if leaseField(rec, "router") != "10.5.0.1" || leaseField(rec, "mtu") != "1500" || !strings.Contains(routes("p1"), "default via 10.5.0.1 dev eth0") {
			t.Errorf("p1 (the gateway is the router before any router has the subnet): %s\n%s", rec, routes("p1"))
		}
		lease(t, "p2", "10.5.0.12/24")
		if err := o.ping("p2", "p1"); err != nil {
			t.Error(err)
		}
		if o.vms["p1"].Ping("10.1.0.11", 1, time.Second) == nil {
			t.Fatal("p1 reaches blue before its subnet is on a router")
		}
		// The subnet joins r1: p1 routes with the lease it has.
		o.patch("/api/v1/routers/r1", `{"subnets":["blue-a","green-a","plain-a"]}`)
		took := waitForD(t, 10*time.Second, "p1 routed to b1 without renewing its lease", func() bool {
			return o.vms["p1"].Ping("10.1.0.11", 1, 500*time.Millisecond) == nil
		})
		t.Logf("p1 routed to b1 %v after its subnet joined r1, with the lease it took before", took.Round(time.Millisecond))
	})
	t.Run("a MAC that is not the port's gets nothing", func(t *testing.T) {
		before := metric(t, o.api, `loom_dhcp_requests_total{result="unknown_mac"}`)
		if rec, err := vms["b3"].udhcpc(); err == nil || rec != "" {
			t.Errorf("the imposter got a lease: %s", rec)
		}
		if after := metric(t, o.api, `loom_dhcp_requests_total{result="unknown_mac"}`); after-before < 3 {
			t.Errorf("unknown_mac %v -> %v: the imposter's 3 DISCOVERs did not reach the server", before, after)
		}
		if addr, _ := o.vms["b3"].Exec("ip", "-4", "-o", "addr", "show", "dev", "eth0"); strings.Contains(addr, "inet") {
			t.Errorf("imposter has an address: %s", addr)
		}
	})
	t.Run("a subnet with DHCP off gets nothing", func(t *testing.T) {
		if rec, err := vms["s1"].udhcpc(); err == nil || rec != "" {
			t.Errorf("s1 got a lease: %s", rec)
		}
		if n := o.counter("hv3", "tp_dst=67", "metadata=0x138e"); n != -1 {
			t.Errorf("hv3 has a DHCP flow for static (n_packets %d)", n)
		}
	})
	t.Run("renewal by unicast to the gateway", func(t *testing.T) {
		// A running client renews on SIGUSR1: a REQUEST unicast to the
		// server id (10.1.0.1, the gateway, whose MAC the router's ARP
		// responder gives), answered by an ACK to ciaddr.
		d := vms["b1"]
		os.Remove(d.lease)
		cmd := exec.Command("ip", "netns", "exec", o.vms["b1"].NS, "env", "LEASE="+d.lease, "udhcpc", "-i", "eth0", "-f",
			"-t", "3", "-T", "1", "-O", "staticroutes", "-s", filepath.Join(filepath.Dir(d.lease), "udhcpc.script"))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
		waitForD(t, 10*time.Second, "b1 bound", func() bool {
			rec, _ := os.ReadFile(d.lease)
			return strings.Contains(string(rec), "event=bound")
		})
		acks := metric(t, o.api, `loom_dhcp_requests_total{result="ack"}`)
		o.vms["b1"].Exec("ip", "neigh", "flush", "dev", "eth0")
		gwARP := o.counter("hv1", "arp_tpa=10.1.0.1,", "arp_op=1")
		cmd.Process.Signal(syscall.SIGUSR1)
		waitForD(t, 10*time.Second, "b1 renewed", func() bool {
			rec, _ := os.ReadFile(d.lease)
			return strings.Contains(string(rec), "event=renew ip=10.1.0.11")
		}, func() string { rec, _ := os.ReadFile(d.lease); return string(rec) })
		if after := metric(t, o.api, `loom_dhcp_requests_total{result="ack"}`); after <= acks {
			t.Errorf("acks %v -> %v", acks, after)
		}
		// The client resolved the gateway's address: the renewal went
		// unicast to it, through the DHCP table before the router's.
		if n := o.counterAbove("hv1", gwARP, "arp_tpa=10.1.0.1,", "arp_op=1"); n <= gwARP {
			t.Errorf("no ARP for the gateway before the renewal (n_packets %d -> %d)", gwARP, n)
		}
	})
	t.Run("one flow per served network on each host", func(t *testing.T) {
		// blue 0x1389, green 0x138b, plain (VLAN 200) 0x10000c8; not
		// static (DHCP off).
		want := map[string][]string{"hv1": {"0x1389", "0x10000c8"}, "hv2": {"0x1389", "0x10000c8"}, "hv3": {"0x138b"}}
		for h, keys := range want {
			var got []string
			for _, f := range o.flows(h) {
				if strings.Contains(f, "tp_dst=67") {
					got = append(got, f)
					if !strings.Contains(f, "tp_src=68") || !strings.Contains(f, "meter:") || !strings.Contains(f, "CONTROLLER") {
						t.Errorf("%s: %s", h, f)
					}
				}
			}
			for _, k := range keys {
				if !slices.ContainsFunc(got, func(f string) bool { return strings.Contains(f, "metadata="+k+",") }) {
					t.Errorf("%s: no DHCP flow for metadata=%s in %q", h, k, got)
				}
			}
			if len(got) != len(keys) {
				t.Errorf("%s: DHCP flows %q, want metadata %v", h, got, keys)
			}
			t.Logf("%s: %q", h, got)
		}
	})
}
