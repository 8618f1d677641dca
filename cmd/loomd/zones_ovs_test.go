package main

import (
	"encoding/json"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/loom-sdn/loom/internal/ovslab"
)

// heldGet connects to argv[1]:argv[2] from source port argv[3], holds
// the connection argv[4] seconds, then sends GET /name and prints how
// long connecting took (ms) and the answer's body (or "error: ...").
const heldGet = `import socket, sys, time
host, port, src, delay = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", src))
s.settimeout(5)
try:
    start = time.time()
    s.connect((host, port))
    took = int((time.time() - start) * 1000)
    time.sleep(delay)
    s.sendall(b"GET /name HTTP/1.0\r\n\r\n")
    data = b""
    while True:
        d = s.recv(4096)
        if not d:
            break
        data += d
    print("%d %s" % (took, data.split(b"\r\n\r\n", 1)[-1].decode().strip() or "error: empty answer"))
except Exception as e:
    print("-1 error: %s" % e)
`

// heldGetStart runs heldGet in v's namespace and returns a function that
// waits for its answer: the body, and how long connecting took.
func heldGetStart(t *testing.T, v *ovslab.VM, host, port, src, delay string) func() (string, time.Duration) {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", v.NS, vmPython, "-c", heldGet, host, port, src, delay)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return func() (string, time.Duration) {
		cmd.Wait()
		ms, body, _ := strings.Cut(strings.TrimSpace(out.String()), " ")
		n, err := strconv.Atoi(ms)
		if err != nil {
			return out.String(), -1
		}
		return body, time.Duration(n) * time.Millisecond
	}
}

// TestOVSZonesPerTenant: two tenants whose VNIs differ by 16,384 (5001
// and 21385: one conntrack zone, 0x8000|vni&0x3fff, before zones were
// allocated per host), with the same subnet, the same VIP 10.1.0.100:80
// and a client at 10.1.0.21 each on hv1, connect from the same source
// port at the same time: each must reach its own tenant's backend (on
// hv2, serving its name), never the other's connection state.
func TestOVSZonesPerTenant(t *testing.T) {
	requireTools(t, vmPython)
	o := newOverlayLab(t, "lldp,overlay,router,dhcp,portpolicy,firewall,loadbalancer")
	tenants := []struct{ net, vni, backendIP, mac string }{
		{"red", "5001", "10.1.0.11", "02:00:00:00:05:"},
		{"blue", "21385", "10.1.0.12", "02:00:00:00:06:"},
	}
	clients := map[string]*ovslab.VM{}
	for _, tn := range tenants {
		o.create("networks", "name="+tn.net, "type=vxlan", "vni="+tn.vni)
		o.create("subnets", "name="+tn.net+"-a", "network="+tn.net, "cidr=10.1.0.0/24", "gateway=10.1.0.1")
		b := o.port(tn.net+"-b", tn.net, tn.mac+"0b", tn.backendIP, "hv2")
		clients[tn.net] = o.port(tn.net+"-c", tn.net, tn.mac+"15", "10.1.0.21", "hv1")
		httpServe(t, t, b)
		o.create("load-balancers", "name="+tn.net+"-web", "network="+tn.net, "vip=10.1.0.100", "protocol=tcp", "port=80",
			`backends=[{"ip":"`+tn.backendIP+`","port":8080}]`)
	}
	o.converged()
	for _, tn := range tenants {
		c := clients[tn.net]
		waitForD(t, 10*time.Second, c.Name+" answered through its VIP", func() bool {
			return httpRequests(t, c, "10.1.0.100", 80, 1).Counts[tn.net+"-b"] == 1
		})
	}
	// One connection each from source port 40000+round, both open at
	// once: the first opened, the second 0.5 s later; the first asks
	// for its answer after 2 s, the second after 3 s. With a shared
	// zone, the second tenant's SYN takes over the first's conntrack
	// entry (same addresses, ports and zone), and the first tenant's
	// request is then looked up in the second's connection.
	for round, order := range [][2]int{{0, 1}, {1, 0}} {
		first, second := tenants[order[0]], tenants[order[1]]
		src := "4000" + string(rune('0'+round))
		wait1 := heldGetStart(t, clients[first.net], "10.1.0.100", "80", src, "2")
		time.Sleep(500 * time.Millisecond)
		wait2 := heldGetStart(t, clients[second.net], "10.1.0.100", "80", src, "3")
		// Both connected (a SYN that met the other tenant's connection
		// is dropped as invalid, and only its retransmission, a second
		// later, gets through): hv1's conntrack holds two connections
		// from 10.1.0.21:src, one to each tenant's backend.
		time.Sleep(1200 * time.Millisecond)
		ct, _ := o.hosts["hv1"].Appctl("dpctl/dump-conntrack")
		backends := map[string]bool{}
		for _, line := range strings.Split(ct, "\n") {
			if strings.Contains(line, "sport="+src+",dport=80") && strings.Contains(line, "ESTABLISHED") {
				for _, tn := range tenants {
					if strings.Contains(line, "reply=(src="+tn.backendIP+",") {
						backends[tn.net] = true
					}
				}
			}
		}
		got1, took1 := wait1()
		got2, took2 := wait2()
		t.Logf("round %d, source port %s: %s (first) connected in %v -> %q; %s (second) connected in %v -> %q; open connections to the backends of %v",
			round, src, first.net, took1, got1, second.net, took2, got2, backends)
		for _, r := range []struct {
			net, got string
			took     time.Duration
		}{{first.net, got1, took1}, {second.net, got2, took2}} {
			if r.got != r.net+"-b" {
				t.Errorf("%s's client got %q, want %s-b", r.net, r.got, r.net)
			}
			if r.took < 0 || r.took > 900*time.Millisecond {
				t.Errorf("%s's client took %v to connect: its SYN met the other tenant's connection", r.net, r.took)
			}
			if !backends[r.net] {
				t.Errorf("no open connection from %s's client to its backend while both were open:\n%s", r.net, ct)
			}
		}
	}
	// Each host's zones are dense and its own: hv1 serves both client
	// networks (a load-balancer and a hairpin zone each), hv2 both
	// backends' networks.
	for _, h := range []string{"hv1", "hv2"} {
		zones := bridgeZones(t, o.hosts[h])
		seen := map[string]string{}
		for user, z := range zones {
			if other, ok := seen[z]; ok {
				t.Errorf("%s: zone %s held by %s and %s", h, z, other, user)
			}
			seen[z] = user
		}
		t.Logf("%s: zones %v", h, zones)
		if len(zones) != 6 {
			t.Errorf("%s: %d numbers, want 6 (the lb and lbh zones and the lbsel group number of red and blue)", h, len(zones))
		}
	}
}

// bridgeZones reads the conntrack zones loomd keeps in a host's
// integration bridge: external_ids:loom-ct-zone-USER=N, by user.
func bridgeZones(t *testing.T, h *ovslab.Host) map[string]string {
	t.Helper()
	out, err := h.Vsctl("--format=json", "--columns=external_ids", "list", "Bridge", "br-int")
	if err != nil {
		t.Fatalf("%s: %v\n%s", h.Name, err, out)
	}
	var res struct {
		Data [][]json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.Data) != 1 || len(res.Data[0]) != 1 {
		t.Fatalf("%s: %v: %s", h.Name, err, out)
	}
	var m []any // ["map", [[k, v], ...]]
	if err := json.Unmarshal(res.Data[0][0], &m); err != nil || len(m) != 2 {
		t.Fatalf("%s: external_ids %s: %v", h.Name, res.Data[0][0], err)
	}
	zones := map[string]string{}
	for _, kv := range m[1].([]any) {
		pair := kv.([]any)
		if k := pair[0].(string); strings.HasPrefix(k, "loom-ct-zone-") {
			zones[strings.TrimPrefix(k, "loom-ct-zone-")] = pair[1].(string)
		}
	}
	return zones
}

// TestOVSFreedZoneIsFlushed: a conntrack zone that changes hands is
// flushed on the host before its new user gets it. Port a (hv1, with a
// security group) pings s, which leaves an ICMP entry in a's zone 1 for
// 30 s; a then loses its groups (zone 1 freed) and port b, plugged on
// hv1 with a group, gets zone 1: it must hold none of a's entries.
func TestOVSFreedZoneIsFlushed(t *testing.T) {
	o := newOverlayLab(t, "lldp,overlay,firewall")
	o.create("networks", "name=red", "type=vxlan", "vni=5001")
	o.create("subnets", "name=red-a", "network=red", "cidr=10.1.0.0/24", "gateway=10.1.0.1")
	o.create("security-groups", "name=open", `rules=[{"direction":"ingress","protocol":"icmp"}]`)
	s := o.port("s", "red", "02:00:00:00:07:01", "10.1.0.5", "hv2")
	a := o.port("a", "red", "02:00:00:00:07:02", "10.1.0.6", "hv1")
	o.patch("/api/v1/ports/a", `{"security_groups":["open"]}`)
	o.converged()
	hv1 := o.hosts["hv1"]
	zoneOf := func(z string) map[string]string {
		users := map[string]string{}
		for u, n := range bridgeZones(t, hv1) {
			if n == z {
				users[u] = n
			}
		}
		return users
	}
	waitForD(t, 10*time.Second, "a holds zone 1 on hv1", func() bool { return len(zoneOf("1")) == 1 })
	aUser := ""
	for u := range zoneOf("1") {
		aUser = u
	}
	waitForD(t, 10*time.Second, "a pings s", func() bool { return a.Ping(s.IP, 1, time.Second) == nil })
	entries := func() string {
		out, _ := hv1.Appctl("dpctl/dump-conntrack", "zone=1")
		return out
	}
	if ct := entries(); !strings.Contains(ct, "src="+a.IP) {
		t.Fatalf("no entry of a's ping in zone 1:\n%s", ct)
	}

	o.patch("/api/v1/ports/a", `{"security_groups":[]}`)
	waitForD(t, 10*time.Second, "a's zone freed", func() bool { return len(zoneOf("1")) == 0 })
	o.port("b", "red", "02:00:00:00:07:03", "10.1.0.7", "hv1")
	o.patch("/api/v1/ports/b", `{"security_groups":["open"]}`)
	waitForD(t, 10*time.Second, "b holds zone 1 on hv1", func() bool {
		users := zoneOf("1")
		_, stale := users[aUser]
		return len(users) == 1 && !stale
	})
	if ct := entries(); strings.Contains(ct, "src="+a.IP) {
		t.Errorf("zone 1 went to b with a's connections still in it:\n%s", ct)
	}
	o.converged()
	wantPing(t, s, o.vms["b"], true)
}
