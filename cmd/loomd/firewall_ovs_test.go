package main

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/loom-sdn/loom/internal/ovslab"
)

// The VMs' TCP and UDP ends are Debian's python3 (which CI has with
// python3-scapy): a listener that echoes lines, and clients.
const (
	echoServer = `import socketserver, sys
class H(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            self.wfile.write(line)
            self.wfile.flush()
socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer(("0.0.0.0", int(sys.argv[1])), H).serve_forever()
`
	// connect prints "ok" after a round trip through the echo server,
	// or the error ("timed out": the SYN or the answer was dropped;
	// "refused": a RST came back, so the SYN reached the VM).
	connectClient = `import socket, sys
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3]))
    s.sendall(b"hello\n")
    s.settimeout(float(sys.argv[3]))
    print("ok" if s.recv(100) == b"hello\n" else "bad echo")
except Exception as e:
    print(type(e).__name__, e)
`
	// streamClient keeps one connection busy: a line every 20 ms for
	// argv[3] seconds, each echo awaited (2 s at most); it prints the
	// number of round trips, or the error that ended them.
	streamClient = `import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)
end, n = time.time() + float(sys.argv[3]), 0
try:
    while time.time() < end:
        s.sendall(b"%d\n" % n)
        buf = b""
        while not buf.endswith(b"\n"):
            d = s.recv(100)
            if not d:
                raise Exception("closed by the peer")
            buf += d
        if buf != b"%d\n" % n:
            raise Exception("bad echo %r" % buf)
        n += 1
        time.sleep(0.02)
    print("ok", n)
except Exception as e:
    print("broken after", n, "round trips:", type(e).__name__, e)
`
	// udpReceiver counts datagrams on a port for argv[2] seconds.
	udpReceiver = `import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
end, n = time.time() + float(sys.argv[2]), 0
while time.time() < end:
    s.settimeout(max(0.01, end - time.time()))
    try:
        s.recv(100); n += 1
    except socket.timeout:
        pass
print(n)
`
	udpBroadcast = `import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
for i in range(5):
    s.sendto(b"hi", (sys.argv[1], int(sys.argv[2]))); time.sleep(0.05)
`
)

const vmPython = "/usr/bin/python3"

// py runs a python3 script in a VM and returns its trimmed output.
func py(t *testing.T, v *ovslab.VM, script string, args ...string) string {
	t.Helper()
	out, err := v.Exec(append([]string{vmPython, "-c", script}, args...)...)
	if err != nil {
		t.Fatalf("python3 in %s: %v\n%s", v.Name, err, out)
	}
	return strings.TrimSpace(out)
}

// listen runs an echo server on port in v until the test ends, and waits
// until it accepts connections.
func listen(t *testing.T, v *ovslab.VM, port int) {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", v.NS, vmPython, "-c", echoServer, strconv.Itoa(port))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitForD(t, 5*time.Second, fmt.Sprintf("%s listening on %d", v.Name, port), func() bool {
		return py(t, v, connectClient, "127.0.0.1", strconv.Itoa(port), "1") == "ok"
	})
}

// tcp connects from v to ip:port and returns "ok" or the error.
func tcp(t *testing.T, v *ovslab.VM, ip string, port int) string {
	t.Helper()
	return py(t, v, connectClient, ip, strconv.Itoa(port), "1")
}

func wantTCP(t *testing.T, from *ovslab.VM, to *ovslab.VM, port int, open bool) {
	t.Helper()
	got := tcp(t, from, to.IP, port)
	switch {
	case open && got != "ok":
		t.Errorf("%s -> %s:%d: %s, want a connection", from.Name, to.Name, port, got)
	case !open && !strings.HasPrefix(got, "TimeoutError"):
		// A refused connection would mean the SYN reached the VM.
		t.Errorf("%s -> %s:%d: %s, want it dropped (timed out)", from.Name, to.Name, port, got)
	}
}

func wantPing(t *testing.T, from, to *ovslab.VM, ok bool) {
	t.Helper()
	err := from.Ping(to.IP, 1, time.Second)
	if ok && err != nil {
		t.Errorf("%s cannot ping %s: %v", from.Name, to.Name, err)
	} else if !ok && err == nil {
		t.Errorf("%s pings %s", from.Name, to.Name)
	}
}

// TestOVSFirewall checks security groups on real OVS: srv (hv1) is in
// group web (tcp 8080 from anywhere, icmp from group friends' members,
// udp 9999 from anywhere); peer (hv1, srv's own host) and friend (hv2) are
// in friends (no rules at first: ingress closed, egress open); stranger
// (hv3) has no group.
func TestOVSFirewall(t *testing.T) {
	requireTools(t, vmPython)
	o := newOverlayLab(t, "lldp,overlay,router,dhcp,firewall")
	o.create("networks", "name=blue", "type=vxlan", "vni=5001")
	o.create("subnets", "name=blue-a", "network=blue", "cidr=10.1.0.0/24", "gateway=10.1.0.1")
	srv := o.port("srv", "blue", "02:00:00:00:01:0b", "10.1.0.11", "hv1")
	peer := o.port("peer", "blue", "02:00:00:00:01:0c", "10.1.0.12", "hv1")
	friend := o.port("friend", "blue", "02:00:00:00:01:0d", "10.1.0.13", "hv2")
	stranger := o.port("stranger", "blue", "02:00:00:00:01:0e", "10.1.0.14", "hv3")
	o.converged()
	for _, p := range []int{8080, 9090} {
		listen(t, srv, p)
	}
	for _, p := range []int{7070, 7071} {
		listen(t, stranger, p)
	}
	listen(t, friend, 7070)
	// Without groups everything is open: the controls of what follows.
	wantTCP(t, stranger, srv, 9090, true)
	wantTCP(t, srv, friend, 7070, true)
	wantPing(t, stranger, srv, true)

	o.create("security-groups", "name=friends", "rules=[]")
	o.create("security-groups", "name=web", `rules=[
		{"direction":"ingress","protocol":"tcp","port_min":8080},
		{"direction":"ingress","protocol":"icmp","remote_group":"friends"},
		{"direction":"ingress","protocol":"udp","port_min":9999}]`)
	o.patch("/api/v1/ports/srv", `{"security_groups":["web"]}`)
	o.patch("/api/v1/ports/peer", `{"security_groups":["friends"]}`)
	o.patch("/api/v1/ports/friend", `{"security_groups":["friends"]}`)
	o.converged()

	t.Run("an allowed port is open, another closed", func(t *testing.T) {
		wantTCP(t, stranger, srv, 8080, true)
		wantTCP(t, stranger, srv, 9090, false)
		// On srv's own host: peer's open egress commits the connection
		// in peer's zone, which does not open srv's ingress.
		wantTCP(t, peer, srv, 8080, true)
		wantTCP(t, peer, srv, 9090, false)
	})
	t.Run("icmp only from the remote group's members", func(t *testing.T) {
		wantPing(t, friend, srv, true)
		wantPing(t, peer, srv, true)
		wantPing(t, stranger, srv, false)
		if n := o.counter("hv1", "conj_id="); n < 0 {
			t.Error("no conj_id flow on hv1")
		}
	})
	t.Run("the return traffic of an egress connection comes in", func(t *testing.T) {
		// srv's ingress is default-deny, its egress open.
		wantTCP(t, srv, stranger, 7070, true)
		// friend has groups and no ingress rule.
		wantTCP(t, srv, friend, 7070, false)
		wantPing(t, srv, stranger, true)
	})
	t.Run("broadcast copies go through conntrack in the flood group", func(t *testing.T) {
		rx := map[string]chan string{}
		for _, v := range []*ovslab.VM{srv, peer} {
			ch := make(chan string, 1)
			rx[v.Name] = ch
			go func() {
				out, _ := v.Exec(vmPython, "-c", udpReceiver, "9999", "2")
				ch <- strings.TrimSpace(out)
			}()
		}
		time.Sleep(300 * time.Millisecond)
		py(t, stranger, udpBroadcast, "10.1.0.255", "9999")
		if got := <-rx["srv"]; got != "5" {
			t.Errorf("srv (udp 9999 allowed) received %s of 5 broadcasts", got)
		}
		if got := <-rx["peer"]; got != "0" {
			t.Errorf("peer (ingress closed) received %s of 5 broadcasts", got)
		}
	})

	t.Run("a long connection survives unrelated rule changes", func(t *testing.T) {
		done := make(chan string, 1)
		go func() {
			out, err := stranger.Exec(vmPython, "-c", streamClient, srv.IP, "8080", "4")
			if err != nil {
				out += " " + err.Error()
			}
			done <- strings.TrimSpace(out)
		}()
		time.Sleep(time.Second)
		// A rule of srv's own group (its ports' flows gain a
		// conjunction), then a group srv's rules name.
		o.patch("/api/v1/security-groups/web", `{"rules":[
			{"direction":"ingress","protocol":"tcp","port_min":8080},
			{"direction":"ingress","protocol":"icmp","remote_group":"friends"},
			{"direction":"ingress","protocol":"udp","port_min":9999},
			{"direction":"ingress","protocol":"tcp","port_min":443,"port_max":444}]}`)
		time.Sleep(time.Second)
		o.patch("/api/v1/security-groups/friends", `{"rules":[{"direction":"egress","protocol":"tcp","port_min":7070}]}`)
		got := <-done
		n, ok := strings.CutPrefix(got, "ok ")
		if trips, _ := strconv.Atoi(n); !ok || trips < 100 {
			t.Errorf("the connection across the changes: %s", got)
		} else {
			t.Logf("%d round trips in 4 s over one connection, across two rule changes", trips)
		}
		o.converged()
	})
	t.Run("egress rules close the rest of egress", func(t *testing.T) {
		// friends now has one egress rule: tcp 7070.
		wantTCP(t, friend, stranger, 7070, true)
		wantTCP(t, friend, stranger, 7071, false)
		wantPing(t, friend, stranger, false)
		// srv (web has no egress rule) still goes anywhere.
		wantTCP(t, srv, stranger, 7071, true)
	})

	t.Run("time from PATCH to enforcement", func(t *testing.T) {
		// Pings every 2 ms: the resolution of the figures.
		const interval = 2 * time.Millisecond
		var took time.Duration // the PATCH's own round trip
		measure := func(from *ovslab.VM, change func()) (replies []time.Time, at time.Time) {
			p := startPing(t, from, srv.IP, "0.002", 1000)
			time.Sleep(800 * time.Millisecond)
			at = time.Now()
			change()
			took = time.Since(at)
			return p.wait(), at
		}
		// Opening: stranger's pings start being answered.
		replies, at := measure(stranger, func() {
			o.patch("/api/v1/security-groups/web", `{"rules":[
				{"direction":"ingress","protocol":"tcp","port_min":8080},
				{"direction":"ingress","protocol":"icmp","remote_group":"friends"},
				{"direction":"ingress","protocol":"icmp","remote_cidr":"10.1.0.14/32"}]}`)
		})
		if len(replies) == 0 || replies[0].Before(at) {
			t.Fatalf("stranger's pings: %d replies, the first at %v (PATCH at %v)", len(replies), replies, at)
		}
		t.Logf("rule added: PATCH sent -> first ping answered %v later (pings every %v; the PATCH's answer took %v)",
			replies[0].Sub(at).Round(100*time.Microsecond), interval, took.Round(100*time.Microsecond))
		// Closing: the rule goes again; the established flow of echoes it
		// let in is cut too (the originator's packets meet the rules
		// again).
		replies, at = measure(stranger, func() {
			o.patch("/api/v1/security-groups/web", `{"rules":[
				{"direction":"ingress","protocol":"tcp","port_min":8080},
				{"direction":"ingress","protocol":"icmp","remote_group":"friends"}]}`)
		})
		if len(replies) == 0 || replies[0].After(at) {
			t.Fatalf("stranger's pings: no reply before the change")
		}
		last := replies[len(replies)-1]
		if last.After(at.Add(time.Second)) {
			t.Fatalf("stranger's pings still answered a second after the rule went: %d replies, the last %v after", len(replies), last.Sub(at))
		}
		t.Logf("rule removed: PATCH sent -> last ping answered %v later, none after (the established echo flow is cut; the PATCH's answer took %v)",
			last.Sub(at).Round(100*time.Microsecond), took.Round(100*time.Microsecond))
		wantPing(t, stranger, srv, false)
		o.converged()
	})
	o.converged()
}
