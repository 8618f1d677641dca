package arpguard_test

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/loom-sdn/loom/apps/l2switch"
	"github.com/loom-sdn/loom/controller"
	"github.com/loom-sdn/loom/controller/controllertest"
	"github.com/loom-sdn/loom/examples/plugin/arpguard"
	"github.com/loom-sdn/loom/internal/ovslab"
)

// arpFlood sends n ARP requests for dst from the VM's interface through a
// raw socket, 10 at a time, a millisecond apart (some 5,000 a second: all
// at once, the datapath's socket overflows and drops most before the
// pipeline sees them).
const arpFlood = `
import socket, sys, time
iface, mac, src, dst, n = sys.argv[1], bytes.fromhex(sys.argv[2].replace(':', '')), socket.inet_aton(sys.argv[3]), socket.inet_aton(sys.argv[4]), int(sys.argv[5])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((iface, 0))
frame = b'\xff' * 6 + mac + b'\x08\x06' + b'\x00\x01\x08\x00\x06\x04\x00\x01' + mac + src + b'\x00' * 6 + dst
frame += b'\x00' * (60 - len(frame))
for i in range(n):
    s.send(frame)
    if i % 10 == 9:
        time.sleep(0.001)
`

var meterCounts = regexp.MustCompile(`(?s)packet_in_count:(\d+) .*\n\s*0: packet_count:(\d+)`)

// TestOVSGuardOnOVS: on Open vSwitch (userspace datapath), with l2switch
// (the guard's table first, then l2switch's), the switch takes the meter
// and the flow, two VMs still ping each other (their ARP goes through the
// meter), and of an ARP flood of 2,000 requests (some 5,000 a second)
// the meter at 20/s lets through no more than 20 a second and its burst.
// The test imports internal/ovslab, which only packages under
// github.com/loom-sdn/loom may: a plugin elsewhere brings its own lab.
func TestOVSGuardOnOVS(t *testing.T) {
	ovslab.Require(t)
	env := controllertest.Start(t, controller.Config{Apps: []string{"l2switch", arpguard.Name}, PacketInRate: 1000,
		AppOptions: map[string]map[string]string{arpguard.Name: {"rate": "20"}}}, nil)
	lab := ovslab.New(t)
	h := lab.AddHost("h1", ovslab.HostOptions{Controllers: []string{"unix:" + env.Sock}})
	v1 := h.AddVM("v1", "02:00:00:00:00:01", "10.0.0.1/24")
	v2 := h.AddVM("v2", "02:00:00:00:00:02", "10.0.0.2/24")
	env.Ready(h.DPID)

	meters, err := h.Ofctl("dump-meters", "br-int")
	if err != nil || !strings.Contains(meters, "meter=268500992 pktps burst stats bands=") || !strings.Contains(meters, "type=drop rate=20 burst_size=2") {
		t.Fatalf("dump-meters: %v\n%s", err, meters)
	}
	flows, err := h.DumpFlows()
	if err != nil {
		t.Fatal(err)
	}
	var guard string
	for _, f := range flows {
		if strings.Contains(f, "meter:268500992") {
			guard = f
		}
	}
	if strings.Contains(guard, "table=") || !strings.Contains(guard, "arp") || !strings.Contains(guard, "goto_table:1") {
		t.Fatalf("no guard flow in table 0 going on to l2-learning:\n%s", strings.Join(flows, "\n"))
	}

	if err := v1.Ping(v2.IP, 3, 5*time.Second); err != nil {
		t.Fatalf("ping v1 -> v2 through the guard: %v", err)
	}
	in0, drop0 := meterStats(t, h)
	start := time.Now()
	if out, err := v1.Exec("/usr/bin/python3", "-c", arpFlood, "eth0", v1.MAC, v1.IP, v2.IP, "2000"); err != nil {
		t.Fatalf("ARP flood: %v\n%s", err, out)
	}
	// The counts settle once the datapath has seen the whole flood (the
	// VM's link may lose some of it on the way: that is no business of
	// the meter's).
	in, drop := meterStats(t, h)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
		i, d := meterStats(t, h)
		if i == in && d == drop {
			break
		}
		in, drop = i, d
	}
	elapsed := time.Since(start)
	seen, passed := in-in0, (in-in0)-(drop-drop0)
	t.Logf("OVS: %d ARP packets (2,000 requests, and the replies to those let through) met the guard's meter (20/s) in %v; it let %d through",
		seen, elapsed.Round(time.Millisecond), passed)
	if seen < 1000 {
		t.Errorf("only %d of 2,000 ARP requests reached the meter", seen)
	}
	if most := 2 + 20*int(elapsed.Seconds()+1); passed > most {
		t.Errorf("the meter passed %d ARP packets in %v, want at most %d (20/s, burst 2)", passed, elapsed.Round(time.Millisecond), most)
	}
	if err := v2.Ping(v1.IP, 3, 5*time.Second); err != nil {
		t.Errorf("ping v2 -> v1 after the flood: %v", err)
	}
}

// meterStats is the guard meter's packets in and the packets its band
// dropped, on h.
func meterStats(t *testing.T, h *ovslab.Host) (in, dropped int) {
	t.Helper()
	out, err := h.Ofctl("meter-stats", "br-int", "meter="+strconv.Itoa(int(arpguard.MeterID)))
	if err != nil {
		t.Fatalf("meter-stats: %v\n%s", err, out)
	}
	m := meterCounts.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("meter-stats: no counts in\n%s", out)
	}
	in, _ = strconv.Atoi(m[1])
	dropped, _ = strconv.Atoi(m[2])
	return in, dropped
}
