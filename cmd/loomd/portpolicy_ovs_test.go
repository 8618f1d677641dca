package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loom-sdn/loom/internal/testenv"

	"github.com/loom-sdn/loom/internal/ovslab"
)

// requireTools skips (or, under LOOM_REQUIRE_OVS=1, fails) without the
// attack and measurement tools.
func requireTools(t *testing.T, tools ...string) {
	t.Helper()
	testenv.RequireTools(t, tools...)
}

// scapy runs a Python/scapy script in a VM with Debian's python3 (the one
// with python3-scapy; another python3 may come first in PATH).
func scapy(t *testing.T, v *ovslab.VM, script string) {
	t.Helper()
	if out, err := v.Exec("/usr/bin/python3", "-c", "from scapy.all import *\nconf.verb = 0\n"+script); err != nil {
		t.Fatalf("scapy in %s: %v\n%s", v.Name, err, out)
	}
}

// TestOVSPortPolicy attacks from a VM as a hostile tenant would, and
// measures a port group's policies, on real OVS.
func TestOVSPortPolicy(t *testing.T) {
	requireTools(t, "iperf3", "tcpdump", "udhcpd", "udhcpc", "/usr/bin/python3")
	o := newOverlayLab(t, "lldp,overlay,dhcp,portpolicy")
	o.create("networks", "name=blue", "type=vxlan", "vni=5001")
	o.create("subnets", "name=blue-a", "network=blue", "cidr=10.1.0.0/24", "gateway=10.1.0.1")
	o.create("port-groups", "name=gold", "bandwidth_kbps=20000", "burst_kb=2000", "priority=5", "dhcp_isolation=true")
	o.create("port-groups", "name=open", "ip_mac_binding=false")
	atk := o.port("atk", "blue", "02:00:00:00:01:0a", "10.1.0.10", "hv1")
	vic := o.port("vic", "blue", "02:00:00:00:01:0b", "10.1.0.11", "hv2")
	o.port("other", "blue", "02:00:00:00:01:0c", "10.1.0.12", "hv2")
	o.converged()
	if err := atk.Ping(vic.IP, 1, 2*time.Second); err != nil {
		t.Fatalf("the attacker cannot even reach the victim legitimately: %v", err)
	}

	t.Run("spoofed source IP", func(t *testing.T) {
		atk.Exec("ip", "addr", "add", "10.1.0.99/24", "dev", "eth0")
		defer atk.Exec("ip", "addr", "del", "10.1.0.99/24", "dev", "eth0")
		before := ipInReceives(t, vic)
		atk.Exec("ping", "-n", "-c", "3", "-i", "0.2", "-W", "1", "-I", "10.1.0.99", vic.IP)
		if n := ipInReceives(t, vic) - before; n != 0 {
			t.Errorf("%d packets from a spoofed source address reached the victim", n)
		}
	})
	t.Run("spoofed source MAC", func(t *testing.T) {
		before := ipInReceives(t, vic)
		scapy(t, atk, fmt.Sprintf(`sendp(Ether(src="02:00:00:00:01:77", dst="%s")/IP(src="10.1.0.10", dst="%s")/ICMP(), iface="eth0", count=3)`,
			vic.MAC, vic.IP))
		time.Sleep(300 * time.Millisecond)
		if n := ipInReceives(t, vic) - before; n != 0 {
			t.Errorf("%d packets from a spoofed source MAC reached the victim", n)
		}
	})
	t.Run("IPv6 only from the port's addresses", func(t *testing.T) {
		o.create("subnets", "name=blue-6", "network=blue", "cidr=fd00::/64", "gateway=fd00::1", "dhcp=false")
		o.patch("/api/v1/ports/atk", `{"ips":["10.1.0.10","fd00::10"]}`)
		time.Sleep(300 * time.Millisecond)
		own := []string{"ipv6_src=fd00::10 "}
		drop := []string{"priority=90,in_port=" + fmt.Sprint(atk.OFPort) + " "}
		ownBefore, dropBefore := o.counter("hv1", own...), o.counter("hv1", drop...)
		send := `sendp(Ether(src="%s", dst="%s")/IPv6(src="%s", dst="fd00::11")/ICMPv6EchoRequest(), iface="eth0", count=3)`
		scapy(t, atk, fmt.Sprintf(send, atk.MAC, vic.MAC, "fd00::10"))
		if n := o.counterAbove("hv1", ownBefore+2, own...); n < ownBefore+3 {
			t.Errorf("IPv6 from the port's own address: allow flow n_packets %d -> %d", ownBefore, n)
		}
		dropBefore = o.counter("hv1", drop...)
		scapy(t, atk, fmt.Sprintf(send, atk.MAC, vic.MAC, "fd00::99"))
		if n := o.counterAbove("hv1", dropBefore+2, drop...); n < dropBefore+3 {
			t.Errorf("spoofed IPv6 source: drop flow n_packets %d -> %d", dropBefore, n)
		}
	})
	t.Run("forged gratuitous ARP", func(t *testing.T) {
		if err := vic.Ping("10.1.0.12", 1, 2*time.Second); err != nil { // the victim knows "other"
			t.Fatal(err)
		}
		garp := fmt.Sprintf(`sendp(Ether(src="%s", dst="ff:ff:ff:ff:ff:ff")/ARP(op=2, hwsrc="%s", psrc="10.1.0.12", hwdst="ff:ff:ff:ff:ff:ff", pdst="10.1.0.12"), iface="eth0", count=3)`,
			atk.MAC, atk.MAC)
		scapy(t, atk, garp)
		time.Sleep(300 * time.Millisecond)
		if neigh, _ := vic.Exec("ip", "neigh", "show", "10.1.0.12"); strings.Contains(neigh, atk.MAC) {
			t.Errorf("the victim believes the forged ARP: %s", neigh)
		}
		// The control: without port security the same ARP gets through,
		// so the check above can fail.
		o.patch("/api/v1/ports/atk", `{"port_group":"open"}`)
		defer o.patch("/api/v1/ports/atk", `{"port_group":null}`)
		time.Sleep(300 * time.Millisecond)
		scapy(t, atk, garp)
		time.Sleep(300 * time.Millisecond)
		if neigh, _ := vic.Exec("ip", "neigh", "show", "10.1.0.12"); !strings.Contains(neigh, atk.MAC) {
			t.Errorf("control: without port security the forged ARP did not reach the victim: %s", neigh)
		}
		vic.Exec("ip", "neigh", "flush", "dev", "eth0")
	})
	t.Run("rogue DHCP server in an isolated group", func(t *testing.T) {
		requireUdhcpc(t)
		// Loom serves blue; red has DHCP off, so its DHCP broadcasts are
		// flooded, and a rogue server there could answer them.
		o.create("networks", "name=red", "type=vxlan", "vni=5002")
		o.create("subnets", "name=red-a", "network=red", "cidr=10.2.0.0/24", "gateway=10.2.0.1", "dhcp=false")
		rogue := o.port("rogue", "red", "02:00:00:00:02:0d", "10.2.0.13", "hv1")
		o.patch("/api/v1/ports/rogue", `{"port_group":"gold"}`)
		dir := t.TempDir()
		conf := filepath.Join(dir, "udhcpd.conf")
		os.WriteFile(conf, []byte("interface eth0\nstart 10.2.0.200\nend 10.2.0.210\nlease_file "+conf+".leases\n"), 0o644)
		os.WriteFile(conf+".leases", nil, 0o644)
		cmd := exec.Command("ip", "netns", "exec", rogue.NS, "udhcpd", "-f", conf)
		var rogueOut strings.Builder
		cmd.Stdout, cmd.Stderr = &rogueOut, &rogueOut
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() {
			cmd.Process.Kill()
			cmd.Wait()
			if t.Failed() {
				t.Logf("udhcpd:\n%s", rogueOut.String())
			}
		}()
		o.create("ports", "name=victim2", "network=red", "mac=02:00:00:00:02:0e")
		v2 := newDHCPVM(t, o.hosts["hv2"].AddVMNoIP("victim2", "02:00:00:00:02:0e"))
		o.waitBound("victim2", "hv2")
		time.Sleep(300 * time.Millisecond)
		if rec, err := v2.udhcpc(); err == nil || leaseField(rec, "ip") != "" {
			t.Errorf("the rogue server gave a lease through isolation: %s", rec)
		}
		if n := o.counterAbove("hv1", 0, "src=67 actions=drop", "in_port="+fmt.Sprint(rogue.OFPort)+","); n <= 0 {
			t.Errorf("the rogue server's offers were not dropped (isolation flow n_packets %d)", n)
		}
		// The control: without isolation the rogue's lease arrives.
		o.patch("/api/v1/ports/rogue", `{"port_group":null}`)
		time.Sleep(300 * time.Millisecond)
		if rec, err := v2.udhcpc(); err != nil || !strings.HasPrefix(leaseField(rec, "ip"), "10.2.0.2") {
			t.Errorf("control: no lease from the rogue server without isolation: %v %s", err, rec)
		}
		// Loom's own DHCP still serves blue.
		o.create("ports", "name=client", "network=blue", "mac=02:00:00:00:01:0e", `ips=["10.1.0.14"]`)
		c := newDHCPVM(t, o.hosts["hv1"].AddVMNoIP("client", "02:00:00:00:01:0e"))
		o.waitBound("client", "hv1")
		time.Sleep(200 * time.Millisecond)
		if rec, err := c.udhcpc(); err != nil || leaseField(rec, "ip") != "10.1.0.14" {
			t.Errorf("Loom's DHCP lease: %v %s", err, rec)
		}
	})
	t.Run("DSCP mark from the group's priority", func(t *testing.T) {
		o.patch("/api/v1/ports/atk", `{"port_group":"gold"}`)
		defer o.patch("/api/v1/ports/atk", `{"port_group":null}`)
		time.Sleep(300 * time.Millisecond)
		out := capture(t, vic.NS, "eth0", []string{"-v", "icmp[icmptype] == icmp-echo"}, func() {
			atk.Exec("ping", "-n", "-c", "3", "-i", "0.2", "-W", "1", vic.IP)
		})
		if !strings.Contains(out, "tos 0xa0") {
			t.Errorf("no DSCP CS5 (tos 0xa0) on the victim's side:\n%s", out)
		}
	})
	t.Run("802.1p priority on a VLAN uplink", func(t *testing.T) {
		o.create("networks", "name=v100", "type=vlan", "vlan=100")
		o.create("subnets", "name=v100-a", "network=v100", "cidr=10.3.0.0/24", "gateway=10.3.0.1")
		vg := o.port("vg", "v100", "02:00:00:00:03:0a", "10.3.0.10", "hv1")
		o.port("vr", "v100", "02:00:00:00:03:0b", "10.3.0.11", "hv2")
		o.patch("/api/v1/ports/vg", `{"port_group":"gold"}`)
		time.Sleep(300 * time.Millisecond)
		// Watch the physical segment where hv1's uplink meets it.
		out := capture(t, o.lab.Prefix+"-phys", "hv1", []string{"-e", "vlan 100 and icmp"}, func() {
			vg.Exec("ping", "-n", "-c", "3", "-i", "0.2", "-W", "1", "10.3.0.11")
		})
		if !strings.Contains(out, "vlan 100, p 5") {
			t.Errorf("no PCP 5 on the uplink:\n%s", out)
		}
	})
	t.Run("bandwidth limit in both directions", func(t *testing.T) {
		free := iperf(t, atk, vic, false)
		o.patch("/api/v1/ports/atk", `{"port_group":"gold"}`)
		defer o.patch("/api/v1/ports/atk", `{"port_group":null}`)
		time.Sleep(300 * time.Millisecond)
		up, down := iperf(t, atk, vic, false), iperf(t, atk, vic, true)
		t.Logf("iperf3 TCP through a 20 Mbit/s group: from the VM %.1f Mbit/s, to it %.1f Mbit/s; without the group %.1f Mbit/s", up, down, free)
		for _, r := range []float64{up, down} {
			if r < 14 || r > 22 {
				t.Errorf("%.1f Mbit/s, want 70-110%% of 20", r)
			}
		}
		if free < 60 {
			t.Errorf("without the group only %.1f Mbit/s", free)
		}
	})
	o.converged()
}

// capture runs tcpdump in namespace ns on iface for the first packet
// matching args (options, then the filter) while trigger sends traffic,
// and returns what it printed.
func capture(t *testing.T, ns, iface string, args []string, trigger func()) string {
	t.Helper()
	return captureN(t, ns, iface, 1, args, trigger)
}

// iperf measures TCP from client to server (or back, reverse) in Mbit/s,
// leaving out the first two seconds (the meters' burst).
func iperf(t *testing.T, client, server *ovslab.VM, reverse bool) float64 {
	t.Helper()
	srv := exec.Command("ip", "netns", "exec", server.NS, "iperf3", "-s", "-1")
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	time.Sleep(300 * time.Millisecond)
	args := []string{"iperf3", "-c", server.IP, "-t", "6", "-O", "2", "-J"}
	if reverse {
		args = append(args, "-R")
	}
	out, err := client.Exec(args...)
	if err != nil {
		t.Fatalf("iperf3: %v\n%s", err, out)
	}
	var res struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &res); err != nil {
		t.Fatalf("iperf3 output: %v\n%s", err, out)
	}
	return res.End.SumReceived.BitsPerSecond / 1e6
}
