package arpguard_test

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loom-sdn/loom/apps/kit"
	"github.com/loom-sdn/loom/apps/overlay"
	"github.com/loom-sdn/loom/controller"
	"github.com/loom-sdn/loom/controller/controllertest"
	"github.com/loom-sdn/loom/examples/plugin/arpguard"
	"github.com/loom-sdn/loom/model"
	"github.com/loom-sdn/loom/southbound/openflow/emu"
	"github.com/loom-sdn/loom/southbound/openflow/packet"
	"github.com/loom-sdn/loom/southbound/openflow/wire"
	"github.com/loom-sdn/loom/view/viewtest"
)

const (
	guardCookie = "cookie=0x1001000000000000"
	missCookie  = "cookie=0xffff000000000000"
)

// fabric is the runtime with the overlay and the guard, and hv1's switch:
// blue's b1 on hv1 (ofport 5), b2 on hv2, behind the tunnel.
type fabric struct {
	env *controllertest.Env
	sw  *emu.Switch
	lab *viewtest.Lab
}

func newFabric(t *testing.T, opts map[string]string) *fabric {
	t.Helper()
	l := viewtest.New(t)
	m := viewtest.Meta
	l.Create(
		&model.Host{Meta: m("hv1"), OVSDB: "unix:/a", VTEPIP: "10.200.0.1"},
		&model.Host{Meta: m("hv2"), OVSDB: "unix:/b", VTEPIP: "10.200.0.2"},
		&model.Network{Meta: m("blue"), Type: "vxlan", VNI: 5001},
		&model.Subnet{Meta: m("blue-a"), Network: "blue", CIDR: "10.1.0.0/24"},
		&model.Port{Meta: m("b1"), Network: "blue", MAC: "02:00:00:00:01:01", IPs: []string{"10.1.0.11"}},
		&model.Port{Meta: m("b2"), Network: "blue", MAC: "02:00:00:00:01:02", IPs: []string{"10.1.0.12"}},
	)
	l.Bind("b1", "hv1", "tap-b1", 5)
	l.Bind("b2", "hv2", "tap-b2", 7)
	cfg := controller.Config{Apps: []string{overlay.Name, arpguard.Name}, Services: kit.Services(l.View, nil)}
	if opts != nil {
		cfg.AppOptions = map[string]map[string]string{arpguard.Name: opts}
	}
	env := controllertest.Start(t, cfg, nil)
	dpid := l.DPID("hv1")
	sw := env.Dial(emu.Options{DatapathID: dpid, Ports: []wire.Port{{PortNo: 1000, Name: overlay.TunnelPort}, {PortNo: 5, Name: "tap-b1"}}})
	env.Ready(dpid)
	return &fabric{env: env, sw: sw, lab: l}
}

// meters is the switch's desired meters, as the runtime keeps them.
func (f *fabric) meters(t *testing.T) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := f.env.Ctl.Inspect(ctx, f.lab.DPID("hv1"))
	if err != nil {
		t.Fatal(err)
	}
	return st.Meters
}

// inTable selects the flows of table id in ovs-ofctl's text (which
// leaves table 0 out).
func inTable(id string) func(string) bool {
	return func(s string) bool {
		if id == "0" {
			return !strings.Contains(s, "table=")
		}
		return strings.Contains(s, "table="+id+",")
	}
}

var (
	b1, b2 = packet.MAC{2, 0, 0, 0, 1, 1}, packet.MAC{2, 0, 0, 0, 1, 2}
	ip1    = netip.MustParseAddr("10.1.0.11")
	ip2    = netip.MustParseAddr("10.1.0.12")
)

// TestGuardAfterTheClassifier: the guard's table comes right after the
// overlay's classifier, holds the metered ARP flow and the runtime's miss,
// and the switch has the meter at the default rate; an ARP frame from a
// VM goes through the meter and on to the overlay's next table, an IPv4
// frame skips the meter and is forwarded as before.
func TestGuardAfterTheClassifier(t *testing.T) {
	f := newFabric(t, nil)
	p := f.env.Ctl.Pipeline()
	var order []string
	for _, tb := range p.Tables() {
		order = append(order, tb.Name)
	}
	if want := []string{"overlay-classify", "arp-guard", "overlay-arp", "overlay-forward", "overlay-deliver"}; !slices.Equal(order, want) {
		t.Fatalf("pipeline %q, want %q", order, want)
	}
	controllertest.WaitFlow(t, f.sw, "hv1", true, "priority=100,in_port=5 ", "goto_table:1")
	controllertest.ExpectFlows(t, f.sw, inTable("1"),
		guardCookie+", table=1, priority=100,arp actions=meter:268500992,goto_table:2",
		missCookie+", table=1, priority=0 actions=goto_table:2",
	)
	if m := f.meters(t); !slices.Equal(m, []string{"meter=268500992,pktps,burst,stats,band=type=drop,rate=100,burst_size=10"}) {
		t.Errorf("desired meters %q", m)
	}
	for deadline := time.Now().Add(5 * time.Second); f.sw.NumMeters() != 1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the switch has %d meters, want the guard's", f.sw.NumMeters())
		}
	}

	arp := f.sw.Trace(5, packet.AppendARP(nil, packet.ARPRequest, b1, ip1, packet.MAC{}, ip2))
	if len(arp.Path) < 3 || strings.Contains(arp.Path[0], "table=") ||
		arp.Path[1] != guardCookie+", table=1, priority=100,arp actions=meter:268500992,goto_table:2" ||
		!strings.Contains(arp.Path[2], "table=2,") {
		t.Errorf("ARP from b1: %v, want the classifier, the guard's meter, then overlay-arp", arp)
	}

	ip := f.sw.Trace(5, packet.AppendIPv4UDP(nil, b2, b1, ip1, ip2, 1000, 2000, []byte("x")))
	for _, hop := range ip.Path {
		if strings.Contains(hop, "meter:") {
			t.Errorf("IPv4 from b1 went through the guard's meter: %v", ip)
		}
	}
	if len(ip.Path) < 2 || ip.Path[1] != missCookie+", table=1, priority=0 actions=goto_table:2" {
		t.Errorf("IPv4 from b1: %v, want the guard's table miss after the classifier", ip)
	}
	if !slices.Equal(ip.Outputs, []uint32{1000}) {
		t.Errorf("IPv4 from b1 to b2 (on hv2): %v, want the tunnel", ip)
	}
}

// TestRateOption: --app-opt arpguard.rate=50 sets the meter's rate.
func TestRateOption(t *testing.T) {
	f := newFabric(t, map[string]string{"rate": "50"})
	controllertest.WaitFlow(t, f.sw, "hv1", true, guardCookie, "arp actions=meter:268500992")
	if m := f.meters(t); !slices.Equal(m, []string{"meter=268500992,pktps,burst,stats,band=type=drop,rate=50,burst_size=5"}) {
		t.Errorf("desired meters %q", m)
	}
}

// newController makes a controller, as loomd does, and returns its error.
func newController(t *testing.T, apps []string, opts map[string]string) error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := controller.Config{Apps: apps, Services: kit.Services(viewtest.New(t).View, nil)}
	if opts != nil {
		cfg.AppOptions = map[string]map[string]string{arpguard.Name: opts}
	}
	ctl, err := controller.New(ctx, cfg, slog.New(slog.DiscardHandler), nil)
	if err == nil {
		cancel()
		ctl.Wait()
	}
	return err
}

// TestBadOptions: a rate that is not a positive whole number, or an
// unknown key, stops the controller with an error that names it.
func TestBadOptions(t *testing.T) {
	for _, c := range []struct {
		opts map[string]string
		want string
	}{
		{map[string]string{"rate": "abc"}, `option rate="abc"`},
		{map[string]string{"rate": "0"}, `option rate="0"`},
		{map[string]string{"rate": "-5"}, `option rate="-5"`},
		{map[string]string{"burst": "10"}, `unknown option "burst" (options: rate)`},
	} {
		err := newController(t, []string{overlay.Name, arpguard.Name}, c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "app arpguard") {
			t.Errorf("options %v: %v, want an error of app arpguard naming %s", c.opts, err, c.want)
		}
	}
}

// TestAloneIsRefused: with no other app no table follows the guard's,
// and the factory says so instead of installing a guard that drops
// everything it lets through.
func TestAloneIsRefused(t *testing.T) {
	err := newController(t, []string{arpguard.Name}, nil)
	if err == nil || !strings.Contains(err.Error(), "no table follows arp-guard") {
		t.Fatalf("arpguard alone: %v, want an error", err)
	}
}

// TestMeterIDIsFree: the guard's meter id is in none of the built-in
// apps' meter ranges (apps/kit's registry) and is not the runtime's
// packet-in meter.
func TestMeterIDIsFree(t *testing.T) {
	if arpguard.MeterID == controller.PacketInMeterID {
		t.Errorf("meter id %#x is the runtime's packet-in meter", arpguard.MeterID)
	}
	for _, r := range kit.Meters {
		if r.Lo <= arpguard.MeterID && arpguard.MeterID <= r.Hi {
			t.Errorf("meter id %#x is in %s's range %#x-%#x", arpguard.MeterID, r.Name, r.Lo, r.Hi)
		}
	}
}
