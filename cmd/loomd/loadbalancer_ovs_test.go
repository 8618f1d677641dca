package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loom-sdn/loom/internal/ovslab"
	"github.com/loom-sdn/loom/northbound"
)

const (
	// httpClient makes argv[3] HTTP requests to argv[1]:argv[2], each on a new
	// connection (timeout argv[4] seconds, default 2), and prints a JSON
	// object: the answers' counts by body ("" for failures), and the
	// connections per second.
	httpClient = `import http.client, json, sys, time
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
timeout = float(sys.argv[4]) if len(sys.argv) > 4 else 2
counts, start = {}, time.time()
for i in range(n):
    try:
        c = http.client.HTTPConnection(host, port, timeout=timeout)
        c.request("GET", "/name")
        body = c.getresponse().read().decode().strip()
        c.close()
    except Exception as e:
        body = ""
    counts[body] = counts.get(body, 0) + 1
print(json.dumps({"counts": counts, "rate": n / (time.time() - start)}))
`
	// udpEcho answers every datagram on argv[1] with argv[2].
	udpEcho = `import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
while True:
    d, a = s.recvfrom(100)
    s.sendto(sys.argv[2].encode(), a)
`
	// udpAsk sends argv[3] datagrams to argv[1]:argv[2] from a connected
	// socket (which takes answers from that address only), from source
	// ports argv[4] (default 40000) on, and prints the answers' counts.
	udpAsk = `import json, socket, sys
counts = {}
base = int(sys.argv[4]) if len(sys.argv) > 4 else 40000
for i in range(int(sys.argv[3])):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", base + i))  # a new source port: a new connection
    s.connect((sys.argv[1], int(sys.argv[2])))
    s.settimeout(1)
    s.send(b"hi")
    try:
        b = s.recv(100).decode()
    except Exception:
        b = ""
    counts[b] = counts.get(b, 0) + 1
    s.close()
print(json.dumps(counts))
`
)

type httpResult struct {
	Counts map[string]int `json:"counts"`
	Rate   float64        `json:"rate"`
}

func httpRequests(t *testing.T, v *ovslab.VM, host string, port, n int, timeout ...string) httpResult {
	t.Helper()
	var r httpResult
	args := append([]string{host, strconv.Itoa(port), strconv.Itoa(n)}, timeout...)
	if err := json.Unmarshal([]byte(py(t, v, httpClient, args...)), &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// background runs argv in v's namespace until the test ends.
func background(t *testing.T, v *ovslab.VM, argv ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", v.NS}, argv...)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

// httpServe serves a file "name" holding the VM's name on port 8080
// until owner (t or a parent of t) ends.
func httpServe(t, owner *testing.T, v *ovslab.VM) *exec.Cmd {
	t.Helper()
	dir := servedDir(owner, v)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "name"), []byte(v.Name+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := background(owner, v, vmPython, "-m", "http.server", "8080", "--bind", "0.0.0.0", "--directory", dir)
	waitForD(t, 5*time.Second, v.Name+" serving HTTP", func() bool {
		return httpRequests(t, v, "127.0.0.1", 8080, 1).Counts[v.Name] == 1
	})
	return cmd
}

// TestOVSLoadBalancer checks load balancers on real OVS: backends b1, b2
// (hv1) and b3 (hv2) serve their name over HTTP on 8080 and UDP on 5353;
// clients c1, c2, c3 on each host reach them through VIP 10.1.0.100:80
// (tcp, weights 3:1:1) and :53 (udp).
func TestOVSLoadBalancer(t *testing.T) {
	requireTools(t, vmPython)
	top := t
	o := newOverlayLab(t, "lldp,overlay,router,dhcp,portpolicy,firewall,loadbalancer")
	o.create("networks", "name=blue", "type=vxlan", "vni=5001")
	o.create("subnets", "name=blue-a", "network=blue", "cidr=10.1.0.0/24", "gateway=10.1.0.1")
	b1 := o.port("b1", "blue", "02:00:00:00:01:0b", "10.1.0.11", "hv1")
	b2 := o.port("b2", "blue", "02:00:00:00:01:0c", "10.1.0.12", "hv1")
	b3 := o.port("b3", "blue", "02:00:00:00:01:0d", "10.1.0.13", "hv2")
	clients := []*ovslab.VM{
		o.port("c1", "blue", "02:00:00:00:01:15", "10.1.0.21", "hv1"),
		o.port("c2", "blue", "02:00:00:00:01:16", "10.1.0.22", "hv2"),
		o.port("c3", "blue", "02:00:00:00:01:17", "10.1.0.23", "hv3"),
	}
	o.converged()
	servers, udpServers := map[string]*exec.Cmd{}, map[string]*exec.Cmd{}
	for _, b := range []*ovslab.VM{b1, b2, b3} {
		servers[b.Name] = httpServe(t, t, b)
		udpServers[b.Name] = background(t, b, vmPython, "-c", udpEcho, "5353", b.Name)
	}

	o.create("load-balancers", "name=web", "network=blue", "vip=10.1.0.100", "protocol=tcp", "port=80",
		`backends=[{"ip":"10.1.0.11","port":8080,"weight":3},{"ip":"10.1.0.12","port":8080},{"ip":"10.1.0.13","port":8080}]`)
	first := waitForD(t, 10*time.Second, "a first answer through the VIP", func() bool {
		return httpRequests(t, clients[0], "10.1.0.100", 80, 1).Counts[""] == 0
	})
	t.Logf("POST /load-balancers -> first answered request through the VIP (c1 on hv1): %v", first.Round(time.Millisecond))

	t.Run("tcp: every client reaches all three backends, weights 3:1:1", func(t *testing.T) {
		total := map[string]int{}
		for _, c := range clients {
			r := httpRequests(t, c, "10.1.0.100", 80, 90)
			t.Logf("%s: %v, %.0f new connections/s through the VIP", c.Name, r.Counts, r.Rate)
			for k, n := range r.Counts {
				total[k] += n
			}
			for _, b := range []string{"b1", "b2", "b3"} {
				if r.Counts[b] == 0 {
					t.Errorf("%s never reached %s: %v", c.Name, b, r.Counts)
				}
			}
			if r.Counts[""] != 0 {
				t.Errorf("%s: %d requests failed", c.Name, r.Counts[""])
			}
		}
		share := float64(total["b1"]) / float64(total["b1"]+total["b2"]+total["b3"])
		t.Logf("b1's share: %.1f%% (%v)", 100*share, total)
		if share < 0.48 || share > 0.72 {
			t.Errorf("b1 got %.1f%% of the connections, want 60%% ± 12%%", 100*share)
		}
	})
	t.Run("hairpin: a backend reaches itself through the VIP", func(t *testing.T) {
		for _, b := range []*ovslab.VM{b1, b3} {
			r := httpRequests(t, b, "10.1.0.100", 80, 30)
			t.Logf("%s: %v", b.Name, r.Counts)
			if r.Counts[""] != 0 || r.Counts[b.Name] == 0 {
				t.Errorf("%s through the VIP: %v, want every request answered, some by itself", b.Name, r.Counts)
			}
		}
	})
	// UDP: the answers come from VIP:53 (the client's socket is
	// connected to it), from every backend (new UDP connections are
	// spread by source port, not by the select group: OVS's dp_hash
	// leaves UDP ports out).
	t.Run("udp through the VIP", func(t *testing.T) {
		o.create("load-balancers", "name=dns", "network=blue", "vip=10.1.0.100", "protocol=udp", "port=53",
			`backends=[{"ip":"10.1.0.11","port":5353},{"ip":"10.1.0.12","port":5353},{"ip":"10.1.0.13","port":5353}]`)
		o.converged()
		for _, c := range clients {
			var counts map[string]int
			waitForD(t, 5*time.Second, "udp answers", func() bool {
				json.Unmarshal([]byte(py(t, c, udpAsk, "10.1.0.100", "53", "30")), &counts)
				return counts[""] == 0
			}, func() string { return fmt.Sprint(counts) })
			t.Logf("%s: %v", c.Name, counts)
			if len(counts) != 3 {
				t.Errorf("%s: udp answers from %v, want all three backends", c.Name, counts)
			}
		}
		// A UDP health check: a closed port answers ICMP unreachable.
		o.patch("/api/v1/load-balancers/dns", `{"health_check":{"protocol":"udp","interval_ms":1000,"timeout_ms":500,"fall":2,"rise":2}}`)
		o.converged()
		udpServers["b2"].Process.Kill()
		udpServers["b2"].Wait()
		// Each try from new source ports: new connections (an existing one
		// stays on its backend, dead or not, as long as conntrack keeps it).
		var counts map[string]int
		base := 41000
		ask := func() {
			base += 20
			counts = nil
			json.Unmarshal([]byte(py(t, clients[1], udpAsk, "10.1.0.100", "53", "20", fmt.Sprint(base))), &counts)
		}
		failover := waitForD(t, 8*time.Second, "UDP answered by b1 and b3 only", func() bool {
			ask()
			return counts[""] == 0 && counts["b2"] == 0
		}, func() string { return fmt.Sprint(counts) })
		t.Logf("b2's UDP server stopped -> every datagram answered by the others: %v", failover.Round(time.Millisecond))
		udpServers["b2"] = background(t, b2, vmPython, "-c", udpEcho, "5353", b2.Name)
		back := waitForD(t, 8*time.Second, "b2 answering UDP again", func() bool {
			ask()
			return counts[""] == 0 && counts["b2"] > 0
		}, func() string { return fmt.Sprint(counts) })
		t.Logf("b2's UDP server restarted -> b2 answers again: %v", back.Round(time.Millisecond))
		o.patch("/api/v1/load-balancers/dns", `{"health_check":null}`)
	})
	t.Run("established connections stay when the backend set changes", func(t *testing.T) {
		listen(t, b3, 7000)
		o.create("load-balancers", "name=echo", "network=blue", "vip=10.1.0.101", "protocol=tcp", "port=7000",
			`backends=[{"ip":"10.1.0.13"}]`)
		o.converged()
		done := make(chan string, 1)
		go func() {
			out, _ := clients[0].Exec(vmPython, "-c", streamClient, "10.1.0.101", "7000", "3")
			done <- strings.TrimSpace(out)
		}()
		time.Sleep(time.Second)
		listen(t, b1, 7000)
		o.patch("/api/v1/load-balancers/echo", `{"backends":[{"ip":"10.1.0.11"}]}`)
		if got := <-done; !strings.HasPrefix(got, "ok") {
			t.Errorf("connection across the change: %s", got)
		}
		if got := tcp(t, clients[1], "10.1.0.101", 7000); got != "ok" {
			t.Errorf("new connection after the change: %s", got)
		}
	})
	// The client's firewall sees the replies un-NATed (lb-reply comes
	// before fw-ingress): with ingress closed on the client and only
	// 8080 open on the backends, requests through the VIP go on. The
	// health checks that follow run with these groups: their probes
	// pass the backends' firewalls like any client's SYN.
	t.Run("with security groups", func(t *testing.T) {
		o.create("security-groups", "name=closed", "rules=[]")
		o.create("security-groups", "name=backends", `rules=[{"direction":"ingress","protocol":"tcp","port_min":8080}]`)
		for _, c := range clients {
			o.patch("/api/v1/ports/"+c.Name, `{"security_groups":["closed"]}`)
		}
		for _, b := range []string{"b1", "b2", "b3"} {
			o.patch("/api/v1/ports/"+b, `{"security_groups":["backends"]}`)
		}
		o.converged()
		for _, c := range clients {
			r := httpRequests(t, c, "10.1.0.100", 80, 30)
			t.Logf("%s: %v", c.Name, r.Counts)
			if r.Counts[""] != 0 || len(r.Counts) < 2 {
				t.Errorf("%s through the VIP with security groups: %v", c.Name, r.Counts)
			}
		}
		if got := tcp(t, clients[0], "10.1.0.11", 7000); !strings.HasPrefix(got, "TimeoutError") {
			t.Errorf("c1 -> b1:7000 (closed by b1's group): %s", got)
		}
		// Hairpin connections reach the backend from the VIP, through
		// its ingress firewall: open to the VIP, b1 reaches itself
		// through it; open only to 10.1.0.0/27 (the ports, not the VIP),
		// b1's requests that land on b2 and b3 pass and those that land
		// on itself do not.
		if r := httpRequests(t, b1, "10.1.0.100", 80, 20); r.Counts[""] != 0 || r.Counts["b1"] == 0 {
			t.Errorf("b1 -> VIP -> b1 with 8080 open to all: %v", r.Counts)
		}
		o.patch("/api/v1/security-groups/backends", `{"rules":[{"direction":"ingress","protocol":"tcp","port_min":8080,"remote_cidr":"10.1.0.0/27"}]}`)
		o.converged()
		r := httpRequests(t, b1, "10.1.0.100", 80, 15, "0.3")
		t.Logf("b1 through the VIP with 8080 closed to the VIP: %v", r.Counts)
		if r.Counts["b1"] != 0 || r.Counts[""] == 0 || r.Counts["b2"]+r.Counts["b3"] == 0 {
			t.Errorf("b1 -> VIP with 8080 closed to the VIP: %v, want the hairpin ones (to b1) refused, the others answered", r.Counts)
		}
		if r := httpRequests(t, clients[1], "10.1.0.100", 80, 15); r.Counts[""] != 0 {
			t.Errorf("c2 -> VIP with 8080 open to 10.1.0.0/27: %v", r.Counts)
		}
		o.patch("/api/v1/security-groups/backends", `{"rules":[{"direction":"ingress","protocol":"tcp","port_min":8080}]}`)
		o.converged()
	})
	// Affinity: the switch learns each client's backend (lb-affinity)
	// and forgets it affinity_seconds after the client's last packet to
	// the VIP. A pinned client stays on its backend when another backend
	// leaves.
	t.Run("client affinity", func(t *testing.T) {
		learned := func(host string) []string {
			var out []string
			for _, v := range o.flowViews(host) {
				if v.State == "learned" {
					out = append(out, v.Flow)
				}
			}
			return out
		}
		// Pins for 600 s, then affinity_seconds changed to 4: the old
		// pins are forgotten at once, the new ones last 4 s.
		o.patch("/api/v1/load-balancers/web", `{"affinity_seconds":600}`)
		o.converged()
		httpRequests(t, clients[0], "10.1.0.100", 80, 3)
		if l := learned("hv1"); !strings.Contains(strings.Join(l, "\n"), "idle_timeout=600") {
			t.Errorf("hv1's learned flows with affinity 600: %v", l)
		}
		o.patch("/api/v1/load-balancers/web", `{"affinity_seconds":4}`)
		o.converged()
		waitForD(t, 2*time.Second, "the 600 s pins forgotten", func() bool {
			return !strings.Contains(strings.Join(learned("hv1"), "\n"), "idle_timeout=600")
		})
		pinned := map[string]string{}
		for _, c := range clients {
			r := httpRequests(t, c, "10.1.0.100", 80, 30)
			t.Logf("%s: %v", c.Name, r.Counts)
			if len(r.Counts) != 1 || r.Counts[""] != 0 {
				t.Errorf("%s with affinity: %v, want one backend", c.Name, r.Counts)
			}
			for b := range r.Counts {
				pinned[c.Name] = b
			}
		}
		if l := learned("hv1"); len(l) == 0 || !strings.Contains(strings.Join(l, "\n"), "idle_timeout=4") ||
			!strings.Contains(strings.Join(l, "\n"), "nw_src=10.1.0.21") {
			t.Errorf("hv1's learned flows: %v, want c1's pin with idle_timeout=4", l)
		}
		// Take a backend c1 is not pinned to out of the load balancer.
		all := map[string]string{"b1": `{"ip":"10.1.0.11","port":8080,"weight":3}`, "b2": `{"ip":"10.1.0.12","port":8080}`, "b3": `{"ip":"10.1.0.13","port":8080}`}
		var keep []string
		out := ""
		for _, b := range []string{"b1", "b2", "b3"} {
			if out == "" && b != pinned["c1"] {
				out = b
				continue
			}
			keep = append(keep, all[b])
		}
		o.patch("/api/v1/load-balancers/web", `{"backends":[`+strings.Join(keep, ",")+`]}`)
		o.converged()
		if r := httpRequests(t, clients[0], "10.1.0.100", 80, 30); r.Counts[pinned["c1"]] != 30 {
			t.Errorf("c1 pinned to %s, after %s left: %v", pinned["c1"], out, r.Counts)
		}
		for _, c := range clients[1:] {
			if r := httpRequests(t, c, "10.1.0.100", 80, 10); len(r.Counts) != 1 || r.Counts[""] != 0 || r.Counts[out] != 0 {
				t.Errorf("%s (pinned to %s) after %s left: %v, want one backend, not %s", c.Name, pinned[c.Name], out, r.Counts, out)
			}
		}
		// Idle clients are forgotten.
		expiry := waitForD(t, 15*time.Second, "the pins to expire", func() bool {
			return len(learned("hv1"))+len(learned("hv2"))+len(learned("hv3")) == 0
		})
		t.Logf("pins forgotten %v after the clients' last request (affinity_seconds 4)", expiry.Round(100*time.Millisecond))
		o.patch("/api/v1/load-balancers/web", `{"affinity_seconds":0,"backends":[`+strings.Join([]string{all["b1"], all["b2"], all["b3"]}, ",")+`]}`)
		o.converged()
	})
	// A long download keeps its backend while the weights change: the
	// connection's translation is in conntrack, not in the group.
	t.Run("a long download keeps its backend while weights change", func(t *testing.T) {
		for _, b := range []*ovslab.VM{b1, b2, b3} {
			big := strings.Repeat(b.Name+"\n", 1<<20) // 3 MiB
			if err := os.WriteFile(filepath.Join(servedDir(top, b), "big"), []byte(big), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		done := make(chan string, 1)
		go func() {
			out, err := clients[2].Exec(vmPython, "-c", slowDownload, "10.1.0.100", "80", "/big")
			if err != nil {
				out += err.Error()
			}
			done <- strings.TrimSpace(out)
		}()
		time.Sleep(500 * time.Millisecond)
		for _, w := range []string{`[1,1,256]`, `[256,1,1]`, `[1,256,1]`} {
			var ws []int
			json.Unmarshal([]byte(w), &ws)
			o.patch("/api/v1/load-balancers/web", fmt.Sprintf(`{"backends":[{"ip":"10.1.0.11","port":8080,"weight":%d},{"ip":"10.1.0.12","port":8080,"weight":%d},{"ip":"10.1.0.13","port":8080,"weight":%d}]}`, ws[0], ws[1], ws[2]))
			time.Sleep(300 * time.Millisecond)
		}
		got := <-done
		t.Logf("download across three weight changes: %s", got)
		var res struct {
			Backend string  `json:"backend"`
			Bytes   int     `json:"bytes"`
			Mixed   bool    `json:"mixed"`
			Seconds float64 `json:"seconds"`
		}
		if err := json.Unmarshal([]byte(got), &res); err != nil {
			t.Fatalf("download: %s", got)
		}
		if res.Mixed || res.Bytes != 3<<20 || res.Seconds < 1.5 {
			t.Errorf("download %+v: want 3 MiB from one backend over more than 1.5 s", res)
		}
		o.patch("/api/v1/load-balancers/web", `{"backends":[{"ip":"10.1.0.11","port":8080,"weight":3},{"ip":"10.1.0.12","port":8080},{"ip":"10.1.0.13","port":8080}]}`)
		o.converged()
	})
	t.Run("health checks: a stopped backend leaves, a restarted one comes back", func(t *testing.T) {
		o.patch("/api/v1/load-balancers/web", `{"health_check":{"interval_ms":200,"timeout_ms":150,"fall":2,"rise":2}}`)
		o.converged()
		allOK := func(want ...string) func() bool {
			return func() bool {
				r := httpRequests(t, clients[1], "10.1.0.100", 80, 30)
				if r.Counts[""] != 0 {
					return false
				}
				for _, w := range want {
					if r.Counts[w] == 0 {
						return false
					}
				}
				return true
			}
		}
		status := func() map[string]bool { return backendStatus(t, o.api, "web") }
		waitForD(t, 5*time.Second, "all three up", allOK("b1", "b2", "b3"))
		evs := sseLines(t, o.api, "/api/v1/events?topic=loadbalancer")
		servers["b2"].Process.Kill()
		servers["b2"].Wait()
		ok := allOK()
		failover := waitForD(t, 5*time.Second, "b2 down and every request answered by b1 and b3", func() bool {
			return !status()["10.1.0.12"] && ok()
		})
		t.Logf("b2's server stopped -> every request answered (b1, b3): %v", failover.Round(time.Millisecond))
		waitForD(t, 2*time.Second, "a backend-down event for 10.1.0.12 on /events", func() bool {
			for {
				select {
				case l := <-evs:
					if strings.Contains(l, "backend-down") && strings.Contains(l, "10.1.0.12") {
						return true
					}
				default:
					return false
				}
			}
		})
		if up := status(); up["10.1.0.12"] || !up["10.1.0.11"] || !up["10.1.0.13"] {
			t.Errorf("GET /load-balancers/web after b2 stopped: %v", up)
		}
		var st northbound.LoadBalancerStatus
		getJSON(t, o.api, "/api/v1/load-balancers/web/status", &st)
		for _, b := range st.Backends {
			if b.Up != (b.IP != "10.1.0.12") || !b.Checked {
				t.Errorf("GET /load-balancers/web/status after b2 stopped: %+v", b)
			}
		}
		r := httpRequests(t, clients[2], "10.1.0.100", 80, 60)
		if r.Counts[""] != 0 || r.Counts["b2"] != 0 {
			t.Errorf("after failover: %v", r.Counts)
		}
		httpServe(t, top, b2) // serving until the end of the test, not of this subtest
		back := waitForD(t, 5*time.Second, "b2 answering again", allOK("b2"))
		t.Logf("b2's server restarted -> b2 answers again: %v", back.Round(time.Millisecond))
		if up := status(); !up["10.1.0.12"] {
			t.Errorf("GET /load-balancers/web after b2 restarted: %v", up)
		}
	})
	// A network routed to blue (green, on router r1): its clients reach
	// the VIP through their gateway, and a backend in it is reached
	// through blue's gateway, both ways through the distributed router.
	t.Run("routed clients and backends", func(t *testing.T) {
		o.create("networks", "name=green", "type=vxlan", "vni=5002")
		o.create("subnets", "name=green-a", "network=green", "cidr=10.2.0.0/24", "gateway=10.2.0.1")
		o.create("routers", "name=r1", `subnets=["blue-a","green-a"]`)
		g1 := o.port("g1", "green", "02:00:00:00:02:15", "10.2.0.21", "hv3")
		g2 := o.port("g2", "green", "02:00:00:00:02:0c", "10.2.0.12", "hv2")
		for vm, gw := range map[*ovslab.VM]string{g1: "10.2.0.1", g2: "10.2.0.1", b3: "10.1.0.1", clients[0]: "10.1.0.1"} {
			if out, err := vm.Exec("ip", "route", "replace", "default", "via", gw); err != nil {
				t.Fatalf("%s: %v %s", vm.Name, err, out)
			}
		}
		httpServe(t, top, g2)
		o.create("load-balancers", "name=mixed", "network=blue", "vip=10.1.0.102", "protocol=tcp", "port=80",
			`backends=[{"ip":"10.1.0.13","port":8080},{"ip":"10.2.0.12","port":8080}]`)
		o.converged()
		for _, c := range []*ovslab.VM{clients[0], g1} {
			// One answer first (a new load balancer's flows wait for its
			// select group number on each host), then 30 requests.
			waitForD(t, 5*time.Second, c.Name+"'s first answer through the VIP", func() bool {
				return httpRequests(t, c, "10.1.0.102", 80, 1, "0.5").Counts[""] == 0
			}, func() string {
				groups, _ := c.Host.Ofctl("dump-groups", "br-int")
				var vip []string
				for _, f := range o.flows(c.Host.Name) {
					if strings.Contains(f, "10.1.0.102") {
						vip = append(vip, f)
					}
				}
				return fmt.Sprintf("%s's flows to the VIP:\n%s\ngroups:\n%s", c.Host.Name, strings.Join(vip, "\n"), groups)
			})
			var r httpResult
			waitForD(t, 5*time.Second, c.Name+" answered through the VIP", func() bool {
				r = httpRequests(t, c, "10.1.0.102", 80, 30)
				return r.Counts[""] == 0
			}, func() string { return fmt.Sprint(r.Counts) })
			t.Logf("%s (%s) -> 10.1.0.102: %v", c.Name, c.IP, r.Counts)
			if r.Counts["b3"] == 0 || r.Counts["g2"] == 0 {
				t.Errorf("%s through the VIP: %v, want both b3 (blue) and g2 (green)", c.Name, r.Counts)
			}
		}
	})
	t.Run("every client reaches the restarted backend", func(t *testing.T) {
		for _, c := range clients {
			// Directly from source ports the VIP connections above did not
			// use: a direct connection from the port of a VIP connection
			// still in conntrack (TIME_WAIT) has its replies taken for
			// that connection's and translated back to the VIP, as with
			// any conntrack-NAT load balancer (kube-proxy, OVN). The
			// VIP's connections use the default ephemeral range.
			setPorts := func(r string) {
				if out, err := c.Exec("sysctl", "-qw", "net.ipv4.ip_local_port_range="+r); err != nil {
					t.Fatalf("%s: %v %s", c.Name, err, out)
				}
			}
			setPorts("20000 29999")
			r := httpRequests(t, c, "10.1.0.12", 8080, 5)
			setPorts("32768 60999")
			if r.Counts["b2"] != 5 {
				t.Errorf("%s -> b2 directly: %v", c.Name, r.Counts)
			}
			if r := httpRequests(t, c, "10.1.0.100", 80, 30); r.Counts[""] != 0 || r.Counts["b2"] == 0 {
				t.Errorf("%s -> VIP: %v", c.Name, r.Counts)
			}
		}
	})
}

// slowDownload fetches argv[3] from argv[1]:argv[2] over one connection,
// reading 64 KiB every 50 ms, and prints a JSON object: the backend whose
// name fills the body, the bytes, whether another name showed up, and the
// seconds it took.
const slowDownload = `import http.client, json, sys, time
start = time.time()
c = http.client.HTTPConnection(sys.argv[1], int(sys.argv[2]), timeout=5)
c.request("GET", sys.argv[3])
r = c.getresponse()
body = b""
while True:
    d = r.read(65536)
    if not d:
        break
    body += d
    time.sleep(0.05)
names = set(body.split(b"\n")) - {b""}
print(json.dumps({"backend": b",".join(sorted(names)).decode(), "bytes": len(body), "mixed": len(names) != 1, "seconds": time.time() - start}))
`

var servedDirs sync.Map // owner test name + VM name -> directory

// servedDir is the directory httpServe serves v's files from: one per VM
// and owner test.
func servedDir(owner *testing.T, v *ovslab.VM) string {
	key := owner.Name() + "/" + v.Name
	if d, ok := servedDirs.Load(key); ok {
		return d.(string)
	}
	d := filepath.Join(owner.TempDir(), v.Name)
	servedDirs.Store(key, d)
	return d
}

// backendStatus reads a load balancer's object and returns its backends'
// status (up or not) by address.
func backendStatus(t *testing.T, api, lb string) map[string]bool {
	t.Helper()
	var obj struct {
		Backends []struct {
			IP     string     `json:"ip"`
			Status string     `json:"status"`
			Since  *time.Time `json:"since"`
		} `json:"backends"`
	}
	getJSON(t, api, "/api/v1/load-balancers/"+lb, &obj)
	up := map[string]bool{}
	for _, b := range obj.Backends {
		if b.Status != "up" && b.Status != "down" {
			t.Errorf("GET /load-balancers/%s: backend %s has status %q", lb, b.IP, b.Status)
		}
		if b.Status == "down" && b.Since == nil {
			t.Errorf("GET /load-balancers/%s: backend %s is down with no since", lb, b.IP)
		}
		up[b.IP] = b.Status == "up"
	}
	return up
}

// sseLines streams the lines of a Server-Sent Events response until the
// test ends.
func sseLines(t *testing.T, api, path string) <-chan string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+api+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 256)
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
	}()
	return lines
}
