package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/loom-sdn/loom/internal/testenv"

	"github.com/loom-sdn/loom/internal/ovslab"
	"github.com/loom-sdn/loom/northbound"
)

// overlayLab is loomd running the overlay over three hypervisors, each
// with its own ovsdb-server and ovs-vswitchd in its own namespace, an
// underlay between them, and hv1 and hv2 sharing a physical segment
// through their uplinks. Everything is set up through the REST API.
type overlayLab struct {
	t     *testing.T
	lab   *ovslab.Lab
	api   string
	loomd *loomd
	hosts map[string]*ovslab.Host
	vms   map[string]*ovslab.VM
}

// newOverlayLab starts loomd with apps (default "lldp,overlay").
func newOverlayLab(t *testing.T, apps ...string) *overlayLab {
	if len(apps) == 0 {
		apps = []string{"lldp,overlay"}
	}
	ovslab.Require(t)
	lab := ovslab.New(t)
	o := &overlayLab{t: t, lab: lab, api: freeAddr(t), hosts: map[string]*ovslab.Host{}, vms: map[string]*ovslab.VM{}}
	sock := lab.UnixControllerPath()
	o.loomd = startLoomd(t, sock, filepath.Join(lab.Dir, "data"), "--api-listen", o.api, "--apps", strings.Join(apps, ","))
	waitAPI(t, o.api)
	start := time.Now()
	for i, name := range []string{"hv1", "hv2", "hv3"} {
		h := lab.AddHost(name, ovslab.HostOptions{NoBridge: true, UnderlayIP: fmt.Sprintf("10.200.0.%d", i+1)})
		if err := os.Symlink(sock, filepath.Join(h.Dir, "loom.sock")); err != nil {
			t.Fatal(err)
		}
		args := []string{"create", "hosts", "name=" + name, "ovsdb=unix:" + filepath.Join(h.Dir, "db.sock"),
			"controller=unix:" + filepath.Join(h.Dir, "loom.sock"), "datapath_type=netdev", "vtep_ip=" + h.UnderlayIP}
		if name != "hv3" {
			lab.Uplink(h, "up0")
			args = append(args, "uplink=up0")
		}
		loomctl(t, o.api, args...)
		o.hosts[name] = h
	}
	for name := range o.hosts {
		o.waitHost(name)
	}
	t.Logf("3 hosts registered by REST -> bridges created and switches connected: %v", time.Since(start).Round(time.Millisecond))
	return o
}

// waitHost waits until the host's bridge is up and connected to loomd.
func (o *overlayLab) waitHost(name string) {
	o.t.Helper()
	var st northbound.HostStatus
	for deadline := time.Now().Add(20 * time.Second); !st.OpenFlowConnected || !st.BridgeReady; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			o.t.Fatalf("host %s never came up: %+v", name, st)
		}
		getJSON(o.t, o.api, "/api/v1/hosts/"+name+"/status", &st)
	}
}

func (o *overlayLab) create(kind string, fields ...string) {
	o.t.Helper()
	loomctl(o.t, o.api, append([]string{"create", kind}, fields...)...)
}

// port creates a model port and plugs a VM for it into host.
func (o *overlayLab) port(name, network, mac, ip, host string) *ovslab.VM {
	o.t.Helper()
	o.create("ports", "name="+name, "network="+network, "mac="+mac, `ips=["`+ip+`"]`)
	v := o.hosts[host].AddVM(name, mac, ip+"/24")
	o.vms[name] = v
	o.waitBound(name, host)
	return v
}

// waitBound waits until the port's active binding is on host.
func (o *overlayLab) waitBound(port, host string) time.Duration {
	o.t.Helper()
	start := time.Now()
	var ps northbound.PortStatus
	for deadline := time.Now().Add(10 * time.Second); !ps.Bound || ps.Binding.Host != host; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			o.t.Fatalf("port %s never bound on %s: %+v", port, host, ps)
		}
		getJSON(o.t, o.api, "/api/v1/ports/"+port+"/status", &ps)
	}
	return time.Since(start)
}

func (o *overlayLab) ping(from, to string) error {
	return o.vms[from].Ping(o.vms[to].IP, 2, 3*time.Second)
}

// counter returns the n_packets of the host's br-int flow whose dump-flows
// line contains every one of match; -1 if none.
func (o *overlayLab) counter(host string, match ...string) int {
	o.t.Helper()
	out, err := o.hosts[host].Ofctl("--no-names", "dump-flows", "br-int")
	if err != nil {
		o.t.Fatal(err)
	}
lines:
	for line := range strings.Lines(out) {
		for _, m := range match {
			if !strings.Contains(line, m) {
				continue lines
			}
		}
		n, _ := strconv.Atoi(regexp.MustCompile(`n_packets=(\d+)`).FindStringSubmatch(line)[1])
		return n
	}
	return -1
}

// counterAbove waits up to 3 s for counter to exceed min and returns its
// last value: datapath statistics reach the OpenFlow counters when OVS's
// revalidators next run.
func (o *overlayLab) counterAbove(host string, min int, match ...string) int {
	o.t.Helper()
	n := o.counter(host, match...)
	for deadline := time.Now().Add(3 * time.Second); n <= min && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		n = o.counter(host, match...)
	}
	return n
}

// flows returns the host's br-int flows.
func (o *overlayLab) flows(host string) []string {
	o.t.Helper()
	f, err := o.hosts[host].DumpFlows()
	if err != nil {
		o.t.Fatal(err)
	}
	return f
}

type flowView struct{ Flow, State, Installed string }

// flowViews returns the host's flows as loomd compares them with its
// desired state (GET /switches/{dpid}/flows).
func (o *overlayLab) flowViews(host string) []flowView {
	o.t.Helper()
	var st northbound.HostStatus
	getJSON(o.t, o.api, "/api/v1/hosts/"+host+"/status", &st)
	var views []flowView
	getJSON(o.t, o.api, "/api/v1/switches/"+st.DatapathID+"/flows", &views)
	return views
}

// converged waits until every host's flows are exactly loomd's desired
// flows (GET /switches/{dpid}/flows reports every flow "ok").
func (o *overlayLab) converged() {
	o.t.Helper()
	if refused := o.loomd.grep(regexp.MustCompile(`switch rejected`)); len(refused) > 0 {
		o.t.Errorf("switches refused %d messages, the first: %s", len(refused), refused[0])
	}
	for name := range o.hosts {
		var views []flowView
		var bad []string
		waitForD(o.t, 10*time.Second, name+" converged", func() bool {
			views = o.flowViews(name)
			bad = bad[:0]
			for _, v := range views {
				if v.State != "ok" && v.State != "learned" {
					bad = append(bad, v.State+": "+v.Flow+" (installed: "+v.Installed+")")
				}
			}
			return len(views) > 0 && len(bad) == 0
		}, func() string { return strings.Join(bad, "\n") })
	}
}

func waitForD(t *testing.T, d time.Duration, what string, cond func() bool, detail ...func() string) time.Duration {
	t.Helper()
	return testenv.WaitFor(t, d, what, cond, detail...)
}

func TestOVSOverlay(t *testing.T) {
	o := newOverlayLab(t)
	o.create("networks", "name=blue", "type=vxlan", "vni=5001")
	o.create("networks", "name=red", "type=vxlan", "vni=5002")
	o.create("networks", "name=v100", "type=vlan", "vlan=100")
	// Both tenants use the same addresses.
	o.create("subnets", "name=blue-a", "network=blue", "cidr=10.1.0.0/24", "gateway=10.1.0.1")
	o.create("subnets", "name=red-a", "network=red", "cidr=10.1.0.0/24", "gateway=10.1.0.1")
	o.create("networks", "name=phys", "type=flat")
	o.create("subnets", "name=v100-a", "network=v100", "cidr=10.3.0.0/24", "gateway=10.3.0.1")
	o.create("subnets", "name=phys-a", "network=phys", "cidr=10.4.0.0/24", "gateway=10.4.0.1")
	o.port("b1", "blue", "02:00:00:00:01:01", "10.1.0.11", "hv1")
	o.port("b2", "blue", "02:00:00:00:01:02", "10.1.0.12", "hv2")
	o.port("r1", "red", "02:00:00:00:02:01", "10.1.0.11", "hv1")
	o.port("r3", "red", "02:00:00:00:02:03", "10.1.0.12", "hv3")
	o.port("v1", "v100", "02:00:00:00:03:01", "10.3.0.11", "hv1")
	o.port("v2", "v100", "02:00:00:00:03:02", "10.3.0.12", "hv2")
	o.port("f1", "phys", "02:00:00:00:04:01", "10.4.0.11", "hv1")
	o.port("f2", "phys", "02:00:00:00:04:02", "10.4.0.12", "hv2")
	o.converged()

	t.Run("same VNI across hosts", func(t *testing.T) {
		if err := o.ping("b1", "b2"); err != nil {
			t.Error(err)
		}
		if err := o.ping("b2", "b1"); err != nil {
			t.Error(err)
		}
	})
	t.Run("overlapping tenants are isolated", func(t *testing.T) {
		// r1 asks for 10.1.0.12 and reaches red's r3 on hv3, not blue's b2.
		if err := o.ping("r1", "r3"); err != nil {
			t.Error(err)
		}
		neigh, _ := o.vms["r1"].Exec("ip", "neigh", "show", "10.1.0.12")
		if !strings.Contains(neigh, "02:00:00:00:02:03") {
			t.Errorf("r1 resolved 10.1.0.12 to %q, want red's r3", neigh)
		}
		// Even knowing red's MAC, blue cannot reach it; the control: b1
		// reaches b2 the same way.
		if n := o.sendByMAC("b1", "b2", "10.1.0.98"); n < 2 {
			t.Errorf("control: b2 received %d of 2 packets sent to its MAC", n)
		}
		if n := o.sendByMAC("b1", "r3", "10.1.0.99"); n != 0 {
			t.Errorf("blue's b1 reached red's r3 by its MAC: %d packets", n)
		}
		if n := o.sendByMAC("b1", "r1", "10.1.0.97"); n != 0 {
			t.Errorf("blue's b1 reached red's r1 (same host) by its MAC: %d packets", n)
		}
	})
	t.Run("ARP answered on the local switch", func(t *testing.T) {
		responder := []string{"metadata=0x1389,", "arp_tpa=10.1.0.12", "move:"}
		floodedOnHV2 := []string{"metadata=0x100001389 "}
		before, hv2Before := o.counter("hv1", responder...), o.counter("hv2", floodedOnHV2...)
		o.vms["b1"].Exec("ip", "neigh", "flush", "dev", "eth0")
		if err := o.ping("b1", "b2"); err != nil {
			t.Fatal(err)
		}
		after := o.counterAbove("hv1", before, responder...)
		time.Sleep(1500 * time.Millisecond) // for hv2's counters to catch up too, were anything flooded there
		hv2After := o.counter("hv2", floodedOnHV2...)
		if after <= before {
			t.Errorf("hv1's ARP responder for 10.1.0.12: n_packets %d -> %d", before, after)
		}
		if hv2After != hv2Before {
			t.Errorf("a broadcast reached hv2 (the ARP request was not answered locally): %d -> %d", hv2Before, hv2After)
		}
		t.Logf("ARP for 10.1.0.12 answered on hv1: responder n_packets %d -> %d", before, after)
	})
	t.Run("broadcast reaches the hosts of its VNI only", func(t *testing.T) {
		hv2Before := o.counter("hv2", "metadata=0x100001389 ")
		ulBefore := rxPackets(t, o.hosts["hv3"], "ul0")
		o.vms["b1"].Exec("ping", "-b", "-c", "20", "-i", "0.01", "-W", "1", "10.1.0.255")
		hv2After := o.counterAbove("hv2", hv2Before+19, "metadata=0x100001389 ")
		ulAfter := rxPackets(t, o.hosts["hv3"], "ul0")
		if hv2After-hv2Before < 20 {
			t.Errorf("hv2 got %d of 20 broadcasts", hv2After-hv2Before)
		}
		if ulAfter-ulBefore >= 5 {
			t.Errorf("hv3 (no blue port) received %d packets on its underlay during 20 blue broadcasts", ulAfter-ulBefore)
		}
		for _, f := range o.flows("hv3") {
			if strings.Contains(f, "0x1389") || strings.Contains(f, "vlan") {
				t.Errorf("hv3 has a flow of a network it has no port in: %s", f)
			}
		}
	})
	t.Run("VLAN network over the uplinks", func(t *testing.T) {
		if err := o.ping("v1", "v2"); err != nil {
			t.Fatal(err)
		}
		if n := o.counterAbove("hv1", 0, "dl_dst=02:00:00:00:03:02", "push_vlan"); n <= 0 {
			t.Errorf("hv1's flow to v2 through the tagged uplink: n_packets %d", n)
		}
		if n := o.counterAbove("hv2", 0, "pop_vlan"); n <= 0 {
			t.Errorf("hv2's flow from the uplink, VLAN 100: n_packets %d", n)
		}
	})
	t.Run("flat network over the uplinks", func(t *testing.T) {
		if err := o.ping("f1", "f2"); err != nil {
			t.Fatal(err)
		}
		if n := o.counterAbove("hv1", 0, "dl_dst=02:00:00:00:04:02"); n <= 0 {
			t.Errorf("hv1's flow to f2 out of the uplink: n_packets %d", n)
		}
		// Frames do not leak between the flat network and VLAN 100,
		// which share the uplinks.
		if n := o.sendByMAC("f1", "v2", "10.4.0.99"); n != 0 {
			t.Errorf("flat network's f1 reached VLAN 100's v2: %d packets", n)
		}
		if n := o.sendByMAC("v1", "f2", "10.3.0.99"); n != 0 {
			t.Errorf("VLAN 100's v1 reached the flat network's f2: %d packets", n)
		}
	})
	t.Run("a port group's VLAN: access ports on the uplink", func(t *testing.T) {
		o.create("port-groups", "name=v300", "vlan=300")
		o.create("ports", "name=a1", "network=phys", "mac=02:00:00:00:04:11", `ips=["10.4.0.21"]`, "port_group=v300")
		o.create("ports", "name=a2", "network=phys", "mac=02:00:00:00:04:12", `ips=["10.4.0.22"]`, "port_group=v300")
		o.vms["a1"] = o.hosts["hv1"].AddVM("a1", "02:00:00:00:04:11", "10.4.0.21/24")
		o.vms["a2"] = o.hosts["hv2"].AddVM("a2", "02:00:00:00:04:12", "10.4.0.22/24")
		o.waitBound("a1", "hv1")
		o.waitBound("a2", "hv2")
		if err := o.ping("a1", "a2"); err != nil {
			t.Fatal(err)
		}
		if n := o.counterAbove("hv1", 0, "dl_dst=02:00:00:00:04:12", "push_vlan", "4396->vlan_vid"); n <= 0 {
			t.Errorf("hv1's flow to a2, tagged 300 out of the uplink: n_packets %d", n)
		}
		// The untagged flat network is another segment.
		if n := o.sendByMAC("a1", "f2", "10.4.0.98"); n != 0 {
			t.Errorf("VLAN 300's a1 reached the untagged f2: %d packets", n)
		}
	})
	t.Run("POST /ports to first ping", func(t *testing.T) {
		// The interface is plugged before the port exists.
		late := o.hosts["hv2"].AddVM("late", "02:00:00:00:01:30", "10.1.0.30/24")
		o.vms["late"] = late
		late.Exec("ip", "neigh", "replace", "10.1.0.11", "lladdr", "02:00:00:00:01:01", "dev", "eth0")
		pings := startPing(t, late, "10.1.0.11", "0.005", 600)
		time.Sleep(100 * time.Millisecond)
		posted := time.Now()
		o.create("ports", "name=late", "network=blue", "mac=02:00:00:00:01:30", `ips=["10.1.0.30"]`)
		replies := pings.wait()
		if len(replies) == 0 {
			t.Fatal("no reply")
		}
		t.Logf("POST /ports (interface already plugged) -> first ping reply: %v", replies[0].Sub(posted).Round(time.Millisecond))
	})
	t.Run("migration", func(t *testing.T) {
		o.port("mig", "blue", "02:00:00:00:01:20", "10.1.0.20", "hv1")
		pings := startPing(t, o.vms["b2"], "10.1.0.20", "0.01", 400)
		time.Sleep(time.Second)
		hv2Flood := o.counter("hv2", "metadata=0x100001389 ")
		// The VM's interface appears on hv3 (same port, MAC and IP) ...
		o.vms["mig2"] = o.hosts["hv3"].AddVMPort("mig2", "mig", "02:00:00:00:01:20", "10.1.0.20/24")
		bound := o.waitBound("mig", "hv3")
		// ... the old one goes, and the VM announces itself.
		if err := o.hosts["hv1"].DelVM(o.vms["mig"]); err != nil {
			t.Fatal(err)
		}
		o.vms["mig2"].Exec("sh", "-c", "sysctl -qw net.ipv4.conf.eth0.arp_notify=1 && ip link set eth0 down && ip link set eth0 up")
		replies := pings.wait()
		gap, lost := pingGap(replies, 10*time.Millisecond)
		t.Logf("migration hv1 -> hv3 during a 10 ms ping: binding seen on hv3 after %v, longest gap %v (%d replies missing of %d)",
			bound.Round(time.Millisecond), gap.Round(time.Millisecond), lost, 400)
		if len(replies) < 300 {
			t.Errorf("only %d of 400 pings answered across the migration", len(replies))
		}
		if n := o.counterAbove("hv2", hv2Flood, "metadata=0x100001389 "); n <= hv2Flood {
			t.Errorf("the gratuitous ARP did not reach hv2 (flood n_packets %d -> %d)", hv2Flood, n)
		}
		o.converged()
		for host := range o.hosts {
			for _, f := range o.flows(host) {
				if strings.Contains(f, "dl_dst=02:00:00:00:01:20") && (host == "hv3") == strings.Contains(f, "tun_dst") {
					t.Errorf("%s: stale flow for the migrated VM: %s", host, f)
				}
				if strings.Contains(f, "dl_dst=02:00:00:00:01:20") && strings.Contains(f, "10.200.0.1->tun_dst") {
					t.Errorf("%s: flow still points to hv1: %s", host, f)
				}
			}
		}
		if err := o.ping("b1", "mig2"); err != nil {
			t.Error(err)
		}
	})
	// A figure, not a check (the converged() calls check the flows).
	for _, h := range []string{"hv1", "hv2", "hv3"} {
		t.Logf("%s: %d flows", h, len(o.flows(h)))
	}
	t.Run("OVS restart restores bridge, tunnel and flows", func(t *testing.T) {
		want := o.flows("hv2")
		start := time.Now()
		if err := o.hosts["hv2"].CrashOVS(); err != nil {
			t.Fatal(err)
		}
		o.waitHost("hv2")
		d := waitForD(t, 20*time.Second, "hv2's flows back", func() bool {
			got, err := o.hosts["hv2"].DumpFlows()
			return err == nil && strings.Join(got, "\n") == strings.Join(want, "\n")
		})
		t.Logf("hv2's ovsdb-server and ovs-vswitchd killed and restarted: flows restored %v after the restart (%v in all)",
			d.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
		if out, _ := o.hosts["hv2"].Vsctl("get", "interface", "vxlan0", "ofport"); strings.TrimSpace(out) != "1000" {
			t.Errorf("vxlan0 ofport %q", out)
		}
		if err := o.ping("b1", "b2"); err != nil {
			t.Error(err)
		}
		if err := o.ping("v1", "v2"); err != nil {
			t.Error(err)
		}
	})
}

// sendByMAC sends 2 pings from VM from to an unused address, resolved by a
// static neighbour entry to VM to's MAC, and returns how many IPv4 packets
// reached to's kernel meanwhile (Ip InReceives): to drops them (not its
// address), so only the counter tells whether they arrived.
func (o *overlayLab) sendByMAC(from, to, addr string) int {
	o.t.Helper()
	if out, err := o.vms[from].Exec("ip", "neigh", "replace", addr, "lladdr", o.vms[to].MAC, "dev", "eth0"); err != nil {
		o.t.Fatal(out, err)
	}
	before := ipInReceives(o.t, o.vms[to])
	o.vms[from].Exec("ping", "-n", "-q", "-c", "2", "-i", "0.2", "-W", "1", addr)
	return ipInReceives(o.t, o.vms[to]) - before
}

// ipInReceives reads a VM's Ip InReceives counter.
func ipInReceives(t *testing.T, v *ovslab.VM) int {
	t.Helper()
	out, err := v.Exec("cat", "/proc/net/snmp")
	if err != nil {
		t.Fatal(out, err)
	}
	var names []string
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Ip:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i, n := range names {
			if n == "InReceives" && i < len(f) {
				v, _ := strconv.Atoi(f[i])
				return v
			}
		}
	}
	t.Fatalf("no Ip InReceives in %s's /proc/net/snmp", v.Name)
	return 0
}

// rxPackets reads an interface's received-packet counter in a host.
func rxPackets(t *testing.T, h *ovslab.Host, dev string) int {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", h.NS, "cat", "/sys/class/net/"+dev+"/statistics/rx_packets").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	return n
}

type pinger struct {
	t    *testing.T
	done chan []time.Time
}

// startPing pings dst from v every interval (seconds, as ping's -i) count
// times in the background; wait returns the times replies arrived.
func startPing(t *testing.T, v *ovslab.VM, dst, interval string, count int) *pinger {
	p := &pinger{t: t, done: make(chan []time.Time, 1)}
	go func() {
		out, _ := v.Exec("ping", "-n", "-D", "-i", interval, "-W", "1", "-c", strconv.Itoa(count), dst)
		var times []time.Time
		for _, m := range regexp.MustCompile(`\[(\d+)\.(\d+)\] \d+ bytes from`).FindAllStringSubmatch(out, -1) {
			s, _ := strconv.ParseInt(m[1], 10, 64)
			us, _ := strconv.ParseInt((m[2] + "000000")[:6], 10, 64)
			times = append(times, time.Unix(s, us*1000))
		}
		p.done <- times
	}()
	return p
}

func (p *pinger) wait() []time.Time { return <-p.done }

// pingGap returns the longest time between two consecutive replies and
// how many replies that gap is missing at the given interval.
func pingGap(replies []time.Time, interval time.Duration) (time.Duration, int) {
	sort.Slice(replies, func(i, j int) bool { return replies[i].Before(replies[j]) })
	var gap time.Duration
	for i := 1; i < len(replies); i++ {
		gap = max(gap, replies[i].Sub(replies[i-1]))
	}
	return gap, max(0, int(gap/interval)-1)
}
