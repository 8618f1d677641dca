package ovslab

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// A Link is a cable between two hosts' br-int: a veth pair whose ends are
// br-int ports, one in each host's namespace, as if the two hypervisors'
// switches were wired together. Both ends, and their br-int ports, are
// named Name.
type Link struct {
	Name   string
	A, B   *Host
	APort  int // OpenFlow port number of the end on A's br-int
	BPort  int // on B's br-int
	lab    *Lab
	remove bool
}

// Link wires a's br-int to b's with a new veth pair and waits until both
// ends have OpenFlow port numbers. It fails the test if anything goes
// wrong. Links between the same hosts may be repeated (a loop: the
// controller must cope).
func (l *Lab) Link(a, b *Host) *Link {
	l.t.Helper()
	k, err := l.link(a, b)
	if err != nil {
		l.t.Fatalf("ovslab: Link %s-%s: %v", a.Name, b.Name, err)
	}
	return k
}

func (l *Lab) link(a, b *Host) (*Link, error) {
	if a == b {
		return nil, fmt.Errorf("a link needs two hosts")
	}
	var name string
	for i := 1; ; i++ {
		name = "lk" + strconv.Itoa(i)
		if !l.names[name] {
			break
		}
	}
	if err := l.claimName(name); err != nil {
		return nil, err
	}
	k := &Link{Name: name, A: a, B: b, lab: l}
	if err := runAll(
		[]string{"ip", "-n", a.NS, "link", "add", "name", name, "type", "veth", "peer", "name", name, "netns", b.NS},
		[]string{"ip", "netns", "exec", a.NS, "ethtool", "-K", name, "tx", "off"},
		[]string{"ip", "netns", "exec", b.NS, "ethtool", "-K", name, "tx", "off"},
		[]string{"ip", "-n", a.NS, "link", "set", "dev", name, "up"},
		[]string{"ip", "-n", b.NS, "link", "set", "dev", name, "up"},
	); err != nil {
		return nil, err
	}
	var err error
	for _, end := range []struct {
		h    *Host
		port *int
	}{{a, &k.APort}, {b, &k.BPort}} {
		if _, err = end.h.Vsctl("add-port", "br-int", name); err != nil {
			return nil, err
		}
		if *end.port, err = end.h.waitOFPort(name, 10*time.Second); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// Delete pulls the cable: it deletes the veth pair, then removes both
// br-int ports. The name may then be reused.
func (k *Link) Delete() error {
	if _, err := run("ip", "-n", k.A.NS, "link", "del", "dev", k.Name); err != nil {
		return err
	}
	for _, h := range []*Host{k.A, k.B} {
		if _, err := h.Vsctl("--if-exists", "del-port", "br-int", k.Name); err != nil {
			return err
		}
	}
	delete(k.lab.names, k.Name)
	return nil
}

// SetDown sets A's end of the cable down, so both switches report the
// link as down (the carrier goes on B's end); SetUp undoes it.
func (k *Link) SetDown() error {
	_, err := run("ip", "-n", k.A.NS, "link", "set", "dev", k.Name, "down")
	return err
}

// SetUp undoes SetDown.
func (k *Link) SetUp() error {
	_, err := run("ip", "-n", k.A.NS, "link", "set", "dev", k.Name, "up")
	return err
}

// Uplink gives host h a physical uplink: interface ifname in h's
// namespace, a veth whose peer is a port of the lab's physical segment (a
// Linux bridge, phys-br, in namespace PREFIX-phys, which passes VLAN tags
// through) shared by every host with an uplink. The interface is not put
// in any bridge: the controller under test does that. It fails the test if
// anything goes wrong.
func (l *Lab) Uplink(h *Host, ifname string) {
	l.t.Helper()
	if err := l.uplink(h, ifname); err != nil {
		l.t.Fatalf("ovslab: Uplink %s %s: %v", h.Name, ifname, err)
	}
}

func (l *Lab) uplink(h *Host, ifname string) error {
	ns := l.Prefix + "-phys"
	if !l.physical {
		if err := l.uplinkSegment(); err != nil {
			return err
		}
	}
	return runAll(
		[]string{"ip", "-n", h.NS, "link", "add", "name", ifname, "type", "veth", "peer", "name", h.Name, "netns", ns},
		[]string{"ip", "netns", "exec", h.NS, "ethtool", "-K", ifname, "tx", "off"},
		[]string{"ip", "-n", ns, "link", "set", "dev", h.Name, "master", "phys-br", "up"},
		[]string{"ip", "-n", h.NS, "link", "set", "dev", ifname, "up"},
	)
}

// uplinkSegment creates the physical segment: bridge phys-br in namespace
// PREFIX-phys.
func (l *Lab) uplinkSegment() error {
	ns := l.Prefix + "-phys"
	if err := l.addNetns(ns); err != nil {
		return err
	}
	if err := runAll(
		[]string{"ip", "-n", ns, "link", "add", "name", "phys-br", "type", "bridge"},
		[]string{"ip", "-n", ns, "link", "set", "dev", "phys-br", "up"},
	); err != nil {
		return err
	}
	l.physical = true
	return nil
}

// An External is a network namespace on the lab's physical segment (see
// Uplink), standing for what lies outside the data center: an address on
// the external network, and no route to anything else.
type External struct {
	NS  string
	IP  string // without length
	lab *Lab
}

// AddExternal creates namespace PREFIX-NAME with interface eth0 on the
// physical segment, address cidr ("172.24.0.1/24") and MAC mac. It fails
// the test if anything goes wrong.
func (l *Lab) AddExternal(name, mac, cidr string) *External {
	l.t.Helper()
	e, err := l.addExternal(name, mac, cidr)
	if err != nil {
		l.t.Fatalf("ovslab: AddExternal %s: %v", name, err)
	}
	return e
}

func (l *Lab) addExternal(name, mac, cidr string) (*External, error) {
	if err := l.claimName(name); err != nil {
		return nil, err
	}
	if !l.physical {
		if err := l.uplinkSegment(); err != nil {
			return nil, err
		}
	}
	ip, _, _ := strings.Cut(cidr, "/")
	e := &External{NS: l.Prefix + "-" + name, IP: ip, lab: l}
	if err := l.addNetns(e.NS); err != nil {
		return nil, err
	}
	phys := l.Prefix + "-phys"
	if err := runAll(
		[]string{"ip", "-n", e.NS, "link", "add", "name", "eth0", "type", "veth", "peer", "name", name, "netns", phys},
		[]string{"ip", "netns", "exec", e.NS, "sh", "-ec", `ip link set eth0 address "$1"
			ip addr add "$2" dev eth0
			ethtool -K eth0 tx off >/dev/null
			ip link set eth0 up`, "sh", mac, cidr},
		[]string{"ip", "-n", phys, "link", "set", "dev", name, "master", "phys-br", "up"},
	); err != nil {
		return nil, err
	}
	return e, nil
}

// Exec runs a command in the namespace and returns its combined output.
func (e *External) Exec(args ...string) (string, error) {
	return run(append([]string{"ip", "netns", "exec", e.NS}, args...)...)
}
