package main

import (
	"encoding/json"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/loom-sdn/loom/northbound"
)

// udpCollector counts the datagrams on 127.0.0.1:argv[1] for argv[2]
// seconds and prints a JSON object: how many, and the first one's first
// four bytes in hex (the protocol version: sFlow 00000005, IPFIX 000a...,
// NetFlow v5 0005...).
const udpCollector = `import json, socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.settimeout(0.2)
n, first, end = 0, "", time.time() + float(sys.argv[2])
while time.time() < end:
    try:
        d = s.recv(65535)
    except Exception:
        continue
    if n == 0:
        first = d[:4].hex()
    n += 1
print(json.dumps({"n": n, "first": first}))
`

// captureN runs tcpdump in namespace ns on iface until it has seen n
// packets (or 5 s after trigger ran), and returns what it printed.
func captureN(t *testing.T, ns, iface string, n int, args []string, trigger func()) string {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, "tcpdump", "-n", "-l", "-c", strconv.Itoa(n), "-i", iface}, args...)...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	trigger()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		<-done
	}
	return out.String()
}

// TestOVSMirrorAndExport: mirrors and flow exports made through REST are
// applied to the hosts through OVSDB and work on real traffic: a SPAN
// analyzer on a source's host sees its packets both ways, a remote
// collector on the underlay gets them in GRE with the mirror's key, and
// sFlow, IPFIX and NetFlow collectors get datagrams of their protocols.
func TestOVSMirrorAndExport(t *testing.T) {
	requireTools(t, "tcpdump", vmPython)
	o := newOverlayLab(t, "lldp,overlay")
	o.create("networks", "name=blue", "type=vxlan", "vni=5001")
	o.create("subnets", "name=blue-a", "network=blue", "cidr=10.1.0.0/24", "gateway=10.1.0.1")
	a := o.port("a", "blue", "02:00:00:00:01:0a", "10.1.0.11", "hv1")
	o.port("b", "blue", "02:00:00:00:01:0b", "10.1.0.12", "hv2")
	mon := o.port("mon", "blue", "02:00:00:00:01:0c", "10.1.0.99", "hv1")
	o.converged()
	mirrors := func(h string) string { // the names, sorted, comma-separated
		out, _ := o.hosts[h].Vsctl("--bare", "--columns=name", "list", "mirror")
		names := strings.Fields(out)
		slices.Sort(names)
		return strings.Join(names, ",")
	}

	// The live page's data: every host up, the ports where they are
	// bound, one tunnel (hv1-hv2, the only hosts with blue ports).
	t.Run("the fabric view", func(t *testing.T) {
		var f northbound.Fabric
		getJSON(t, o.api, "/api/v1/fabric", &f)
		for _, h := range f.Hosts {
			if !h.OVSDBConnected || !h.BridgeReady || !h.OpenFlowConnected {
				t.Errorf("host %+v, want connected and ready", h)
			}
		}
		where := map[string]string{}
		for _, p := range f.Ports {
			where[p.Name] = p.Host
		}
		if where["a"] != "hv1" || where["mon"] != "hv1" || where["b"] != "hv2" || len(f.Hosts) != 3 {
			t.Errorf("ports placed %v", where)
		}
		if len(f.Tunnels) != 1 || f.Tunnels[0].A != "hv1" || f.Tunnels[0].B != "hv2" {
			t.Errorf("tunnels %+v, want hv1-hv2", f.Tunnels)
		}
		resp, err := http.Get("http://" + o.api + "/ui/")
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("GET /ui/: %v %v", resp, err)
		}
		if resp != nil {
			resp.Body.Close()
		}
	})

	t.Run("SPAN to an analyzer port", func(t *testing.T) {
		start := time.Now()
		o.create("mirrors", "name=span", `sources=["a"]`, "output_port=mon")
		waitForD(t, 5*time.Second, "the mirror on hv1", func() bool { return mirrors("hv1") == "loom-span" })
		t.Logf("POST /mirrors -> Mirror row on hv1: %v", time.Since(start).Round(time.Millisecond))
		if m := mirrors("hv2"); m != "" {
			t.Errorf("hv2 (no source, no analyzer) has mirrors: %q", m)
		}
		out := captureN(t, mon.NS, "eth0", 4, []string{"icmp"}, func() { a.Ping("10.1.0.12", 2, 3*time.Second) })
		t.Logf("mon captured:\n%s", out)
		for _, want := range []string{"10.1.0.11 > 10.1.0.12: ICMP echo request", "10.1.0.12 > 10.1.0.11: ICMP echo reply"} {
			if !strings.Contains(out, want) {
				t.Errorf("the analyzer did not see %q", want)
			}
		}
	})

	// SPAN of a source on another host: hv2 sends b's copies in GRE to
	// hv1's VTEP, where a receiving mirror hands them to mon.
	t.Run("SPAN from another host", func(t *testing.T) {
		loomctl(t, o.api, "delete", "mirrors", "span")
		o.create("mirrors", "name=xspan", `sources=["b"]`, "output_port=mon")
		waitForD(t, 5*time.Second, "the mirrors on hv1 and hv2", func() bool {
			return mirrors("hv1") == "loom-in:xspan" && mirrors("hv2") == "loom-xspan"
		}, func() string { return mirrors("hv1") + " / " + mirrors("hv2") })
		var out string
		waitForD(t, 15*time.Second, "b's packets at the analyzer on hv1", func() bool {
			out = captureN(t, mon.NS, "eth0", 2, []string{"icmp"}, func() { a.Ping("10.1.0.12", 3, 3*time.Second) })
			return strings.Contains(out, "10.1.0.11 > 10.1.0.12: ICMP echo request") && strings.Contains(out, "10.1.0.12 > 10.1.0.11: ICMP echo reply")
		}, func() string { return out })
		t.Logf("mon (hv1) captured b's (hv2) traffic:\n%s", out)
		// Sources on both hosts at once: two mirrors on hv1 with mon as
		// their output (the local one, the receiving one).
		o.patch("/api/v1/mirrors/xspan", `{"sources":["a","b"],"direction":"from-port"}`)
		waitForD(t, 5*time.Second, "both mirrors on hv1", func() bool { return mirrors("hv1") == "loom-in:xspan,loom-xspan" },
			func() string { return mirrors("hv1") })
		// from-port: a's requests come from the local mirror, b's
		// replies through GRE from hv2.
		waitForD(t, 15*time.Second, "a's requests and b's replies at the analyzer", func() bool {
			out = captureN(t, mon.NS, "eth0", 4, []string{"icmp"}, func() { a.Ping("10.1.0.12", 2, 2*time.Second) })
			return strings.Contains(out, "10.1.0.11 > 10.1.0.12: ICMP echo request") && strings.Contains(out, "10.1.0.12 > 10.1.0.11: ICMP echo reply")
		}, func() string { return out })
		loomctl(t, o.api, "delete", "mirrors", "xspan")
	})

	t.Run("remote mirroring in GRE", func(t *testing.T) {
		ul := o.lab.Prefix + "-ul"
		if out, err := exec.Command("ip", "-n", ul, "addr", "add", "10.200.0.250/24", "dev", "ul-br").CombinedOutput(); err != nil {
			t.Fatalf("%v %s", err, out)
		}
		o.create("mirrors", "name=remote", `sources=["b"]`, "direction=from-port", "remote_ip=10.200.0.250", "gre_key=7")
		waitForD(t, 5*time.Second, "the mirror on hv2", func() bool { return mirrors("hv2") == "loom-remote" })
		if m := mirrors("hv3"); m != "" {
			t.Errorf("hv3 (no source) has mirrors: %q", m)
		}
		var out string
		waitForD(t, 15*time.Second, "GRE copies of b's packets at the collector", func() bool {
			out = captureN(t, ul, "ul-br", 2, []string{"ip proto 47 and dst host 10.200.0.250"}, func() { a.Ping("10.1.0.12", 3, 3*time.Second) })
			return strings.Contains(out, "10.1.0.12 > 10.1.0.11: ICMP echo reply")
		}, func() string { return out })
		t.Logf("collector captured:\n%s", out)
		if !strings.Contains(out, "key=0x7") || strings.Contains(out, "echo request") {
			t.Errorf("want only b's own packets (from-port), in GRE with key 7:\n%s", out)
		}
	})

	t.Run("sFlow, IPFIX and NetFlow", func(t *testing.T) {
		o.create("flow-exports", "name=sf", "protocol=sflow", `targets=["127.0.0.1:6343"]`, "sampling=1", "polling_seconds=1")
		o.create("flow-exports", "name=ipfix", "protocol=ipfix", `targets=["127.0.0.1:4739"]`, "sampling=1", "active_timeout_seconds=1", `hosts=["hv1"]`)
		o.create("flow-exports", "name=nf", "protocol=netflow", `targets=["127.0.0.1:2055"]`, "active_timeout_seconds=1", `hosts=["hv1"]`)
		h := o.hosts["hv1"]
		waitForD(t, 5*time.Second, "hv1 exporting", func() bool {
			out, _ := h.Vsctl("get", "bridge", "br-int", "netflow")
			return strings.TrimSpace(out) != "[]"
		})
		if out, _ := o.hosts["hv2"].Vsctl("get", "bridge", "br-int", "ipfix"); strings.TrimSpace(out) != "[]" {
			t.Errorf("hv2 is not among the ipfix export's hosts but has %s", out)
		}
		stop := make(chan struct{})
		go func() {
			for {
				select {
				case <-stop:
					return
				default:
					a.Ping("10.1.0.12", 5, 2*time.Second)
				}
			}
		}()
		defer close(stop)
		results := make(chan [2]string, 3)
		for _, c := range [][2]string{{"sflow", "6343"}, {"ipfix", "4739"}, {"netflow", "2055"}} {
			go func() {
				out, _ := exec.Command("ip", "netns", "exec", h.NS, vmPython, "-c", udpCollector, c[1], "6").CombinedOutput()
				results <- [2]string{c[0], strings.TrimSpace(string(out))}
			}()
		}
		want := map[string]string{"sflow": "00000005", "ipfix": "000a", "netflow": "0005"}
		for range 3 {
			r := <-results
			var got struct {
				N     int    `json:"n"`
				First string `json:"first"`
			}
			if err := json.Unmarshal([]byte(r[1]), &got); err != nil {
				t.Errorf("%s collector: %s", r[0], r[1])
				continue
			}
			t.Logf("%s: %d datagrams in 6 s, the first starting %s", r[0], got.N, got.First)
			if got.N == 0 || !strings.HasPrefix(got.First, want[r[0]]) {
				t.Errorf("%s: %+v, want datagrams starting %s", r[0], got, want[r[0]])
			}
		}
	})

	t.Run("deleting them removes them from the hosts", func(t *testing.T) {
		for _, p := range [][2]string{{"mirrors", "remote"}, {"flow-exports", "sf"}, {"flow-exports", "ipfix"}, {"flow-exports", "nf"}} {
			loomctl(t, o.api, "delete", p[0], p[1])
		}
		waitForD(t, 5*time.Second, "no mirrors or exports left", func() bool {
			for name, h := range o.hosts {
				sf, _ := h.Vsctl("get", "bridge", "br-int", "sflow")
				ports, _ := h.Vsctl("list-ports", "br-int")
				if mirrors(name) != "" || strings.TrimSpace(sf) != "[]" || strings.Contains(ports, "lmir") {
					return false
				}
			}
			return true
		})
	})
}
