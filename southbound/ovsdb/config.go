package ovsdb

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Defaults of HostConfig.
const (
	DefaultBridge       = "br-int"
	DefaultDatapathType = "system"
	// DefaultTunnelPort is the OpenFlow port number requested for the
	// VXLAN port, so flows can name it before OVS has assigned it.
	DefaultTunnelPort = 1000
)

// TunnelPortName is the name of the VXLAN port on the integration bridge.
const TunnelPortName = "vxlan0"

// Controller settings Loom gives the bridge's controller row.
const (
	// ControllerMaxBackoff (ms) makes OVS retry a lost controller within a
	// second instead of backing off up to 8 s.
	ControllerMaxBackoff = 1000
	// ControllerInactivityProbe (ms) is OVS's default, stated explicitly:
	// an idle connection is probed after 5 s and dropped 5 s later.
	ControllerInactivityProbe = 5000
)

// HostConfig describes one hypervisor and what Loom ensures on it.
type HostConfig struct {
	// Name identifies the host in the Manager, statuses and bindings.
	Name string
	// Address is the host's OVSDB: "unix:/path/db.sock" or "tcp:HOST:PORT".
	Address string
	// Bridge is the integration bridge, DefaultBridge if empty.
	Bridge string
	// DatapathType is "system" (the kernel datapath, DefaultDatapathType
	// if empty) or "netdev" (userspace).
	DatapathType string
	// DatapathID, if not zero, is set as other_config:datapath-id;
	// otherwise OVS derives the datapath ID from a MAC address.
	DatapathID uint64
	// Controller is the bridge's OpenFlow controller target, for example
	// "tcp:10.0.0.1:6653". Empty means Loom sets no controller (and
	// removes its own).
	Controller string
	// VTEPIP, if set, is the local address of the VXLAN port vxlan0.
	VTEPIP string
	// Uplink, if set, is an existing network interface made a port of the
	// bridge.
	Uplink string
	// TunnelPort is vxlan0's ofport_request, DefaultTunnelPort if zero.
	TunnelPort int
}

// withDefaults returns c with defaults filled in, or an error saying which
// field is wrong.
func (c HostConfig) withDefaults() (HostConfig, error) {
	if c.Bridge == "" {
		c.Bridge = DefaultBridge
	}
	if c.DatapathType == "" {
		c.DatapathType = DefaultDatapathType
	}
	if c.TunnelPort == 0 {
		c.TunnelPort = DefaultTunnelPort
	}
	var errs []error
	if c.Name == "" {
		errs = append(errs, errors.New("Name is empty"))
	}
	if !strings.HasPrefix(c.Address, "unix:/") && !strings.HasPrefix(c.Address, "tcp:") {
		errs = append(errs, fmt.Errorf("Address %q: want unix:/PATH or tcp:HOST:PORT", c.Address))
	}
	if c.DatapathType != "system" && c.DatapathType != "netdev" {
		errs = append(errs, fmt.Errorf("DatapathType %q: want system or netdev", c.DatapathType))
	}
	if c.Controller != "" && !strings.Contains(c.Controller, ":") {
		errs = append(errs, fmt.Errorf("Controller %q: want an OVS target such as tcp:IP:PORT", c.Controller))
	}
	if c.VTEPIP != "" {
		if _, err := netip.ParseAddr(c.VTEPIP); err != nil {
			errs = append(errs, fmt.Errorf("VTEPIP: %w", err))
		}
	}
	// OpenFlow 1.3 physical ports are 1..0xff00 (OFPP_MAX).
	if c.TunnelPort < 1 || c.TunnelPort > 0xff00 {
		errs = append(errs, fmt.Errorf("TunnelPort %d: want 1..65280", c.TunnelPort))
	}
	for _, f := range [][2]string{{"Bridge", c.Bridge}, {"Uplink", c.Uplink}} {
		field, name := f[0], f[1]
		if len(name) > 15 || strings.ContainsAny(name, "/ \t\n") {
			errs = append(errs, fmt.Errorf("%s %q: not a valid interface name", field, name))
		}
	}
	if c.Uplink != "" && (c.Uplink == c.Bridge || c.Uplink == TunnelPortName) {
		errs = append(errs, fmt.Errorf("Uplink %q: clashes with the bridge's own ports", c.Uplink))
	}
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("ovsdb: host %q: %w", c.Name, err)
	}
	return c, nil
}
