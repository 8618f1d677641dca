package ovslab

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// A VM is a network namespace whose eth0 is plugged into a host's br-int
// through a veth pair; the host side is the br-int port named after the VM.
type VM struct {
	Name   string
	NS     string // network namespace holding eth0
	MAC    string // eth0's MAC address
	IP     string // eth0's address, without length
	OFPort int    // OpenFlow port number on br-int
	Host   *Host
}

// AddVM creates a VM with the given MAC and address ("10.0.0.1/24") on eth0,
// and plugs it into br-int with external_ids iface-id=NAME and
// attached-mac=MAC. It waits until OVS has assigned the OpenFlow port number,
// and fails the test if anything goes wrong.
//
// eth0 has TX checksum offload off: the userspace datapath forwards frames
// with partial checksums unchanged, so without it TCP fails.
func (h *Host) AddVM(name, mac, cidr string) *VM {
	h.lab.t.Helper()
	v, err := h.addVM(name, name, mac, cidr)
	if err != nil {
		h.lab.t.Fatalf("ovslab: AddVM %s: %v", name, err)
	}
	return v
}

// AddVMPort is AddVM with an iface-id other than the VM's name: the same
// logical port plugged in on a second host, as when a VM migrates (VM
// names, which are also their br-int port names, are unique in a lab).
func (h *Host) AddVMPort(name, ifaceID, mac, cidr string) *VM {
	h.lab.t.Helper()
	v, err := h.addVM(name, ifaceID, mac, cidr)
	if err != nil {
		h.lab.t.Fatalf("ovslab: AddVMPort %s: %v", name, err)
	}
	return v
}

// AddVMNoIP is AddVM with no address on eth0, for a VM that gets its
// address by DHCP (VM.IP is empty).
func (h *Host) AddVMNoIP(name, mac string) *VM {
	h.lab.t.Helper()
	v, err := h.addVM(name, name, mac, "")
	if err != nil {
		h.lab.t.Fatalf("ovslab: AddVMNoIP %s: %v", name, err)
	}
	return v
}

// addVM plugs in a VM; cidr "" leaves eth0 without an address.
func (h *Host) addVM(name, ifaceID, mac, cidr string) (*VM, error) {
	if _, err := net.ParseMAC(mac); err != nil {
		return nil, err
	}
	addr := ""
	if cidr != "" {
		p, err := netip.ParsePrefix(cidr)
		if err != nil {
			return nil, err
		}
		addr = p.Addr().String()
	}
	if err := h.lab.claimName(name); err != nil {
		return nil, err
	}
	v := &VM{Name: name, NS: h.lab.Prefix + "-" + name, MAC: mac, IP: addr, Host: h}
	if err := h.lab.addNetns(v.NS); err != nil {
		return nil, err
	}
	if err := runAll(
		[]string{"ip", "-n", h.NS, "link", "add", "name", name, "type", "veth", "peer", "name", "eth0", "netns", v.NS},
		[]string{"ip", "netns", "exec", v.NS, "sh", "-ec", `ip link set eth0 address "$1"
			[ -z "$2" ] || ip addr add "$2" dev eth0
			ethtool -K eth0 tx off >/dev/null
			ip link set eth0 up`, "sh", mac, cidr},
		[]string{"ip", "-n", h.NS, "link", "set", "dev", name, "up"},
	); err != nil {
		return nil, err
	}
	if _, err := h.Vsctl("add-port", "br-int", name, "--", "set", "interface", name,
		"external_ids:iface-id="+ifaceID, "external_ids:attached-mac="+mac); err != nil {
		return nil, err
	}
	var err error
	if v.OFPort, err = h.waitOFPort(name, 10*time.Second); err != nil {
		return nil, err
	}
	return v, nil
}

// waitOFPort waits until interface name has an OpenFlow port number.
func (h *Host) waitOFPort(name string, timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	for {
		out, err := h.Vsctl("get", "interface", name, "ofport")
		if err != nil {
			return 0, err
		}
		if n, err := strconv.Atoi(strings.TrimSpace(out)); err == nil && n > 0 {
			return n, nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("interface %s has no OpenFlow port after %v (ofport %s)", name, timeout, strings.TrimSpace(out))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// DelVM unplugs v from br-int and deletes it. Its name may then be reused.
func (h *Host) DelVM(v *VM) error {
	if _, err := h.Vsctl("del-port", "br-int", v.Name); err != nil {
		return err
	}
	if err := h.lab.delNetns(v.NS); err != nil { // also deletes the veth pair
		return err
	}
	delete(h.lab.names, v.Name)
	return nil
}

// Exec runs a command in the VM's namespace and returns its combined output.
func (v *VM) Exec(args ...string) (string, error) {
	return run(append([]string{"ip", "netns", "exec", v.NS}, args...)...)
}

// Ping sends count echo requests to dst, 0.2 s apart, and returns an error
// (with ping's output) unless all of them are answered within timeout
// (rounded up to whole seconds).
func (v *VM) Ping(dst string, count int, timeout time.Duration) error {
	secs := max(1, int(math.Ceil(timeout.Seconds())))
	_, err := runWith(execOpts{timeout: time.Duration(secs)*time.Second + 5*time.Second},
		"ip", "netns", "exec", v.NS, "ping", "-n", "-q", "-i", "0.2",
		"-c", strconv.Itoa(count), "-w", strconv.Itoa(secs), dst)
	return err
}

// SetLinkDown sets the host side of the VM's veth pair down, so OVS reports
// the port's link as down (OFPPS_LINK_DOWN, OFPT_PORT_STATUS).
func (v *VM) SetLinkDown() error {
	_, err := run("ip", "-n", v.Host.NS, "link", "set", "dev", v.Name, "down")
	return err
}

// SetLinkUp undoes SetLinkDown.
func (v *VM) SetLinkUp() error {
	_, err := run("ip", "-n", v.Host.NS, "link", "set", "dev", v.Name, "up")
	return err
}
