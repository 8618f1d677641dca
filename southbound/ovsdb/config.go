package ovsdb

import (
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"net/netip"
	"reflect"
	"slices"
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
	// "tcp:10.0.0.1:6653", or several separated by commas (every loomd
	// replica's: see Targets). Empty means Loom sets no controller (and
	// removes its own).
	Controller string
	// VTEPIP, if set, is the local address of the VXLAN port vxlan0.
	VTEPIP string
	// Uplink, if set, is an existing network interface made a port of the
	// bridge.
	Uplink string
	// TunnelPort is vxlan0's ofport_request, DefaultTunnelPort if zero.
	TunnelPort int

	// Observe makes the agent only watch the host (bindings, zones):
	// another loomd replica manages it, and this one writes nothing.
	Observe bool

	// ManageZones makes the bridge's external_ids hold exactly Zones as
	// ZoneKeyPrefix+USER=N (conntrack zone N of zone user USER), as
	// ovn-controller keeps its ct-zone-NAME keys there. Without it the
	// agent leaves those keys as they are (a restarted loomd reads them
	// back, OnZones, before it allocates).
	ManageZones bool
	Zones       map[string]uint16

	// Mirrors are the port mirrors on the bridge (mirror.go).
	Mirrors []MirrorConfig
	// SFlow, IPFIX and NetFlow, when set, export samples of the bridge's
	// traffic or its flow records to collectors (export.go).
	SFlow   *SFlowConfig
	IPFIX   *IPFIXConfig
	NetFlow *NetFlowConfig
}

// Equal tells whether two configurations ask for the same.
func (c HostConfig) Equal(o HostConfig) bool { return reflect.DeepEqual(c, o) }

// MirrorConfig is a port mirror: copies of what some VM ports send and
// receive, to an analyzer port on the same host (SPAN) or in GRE to a
// remote collector.
type MirrorConfig struct {
	// Name names the Mirror row (unique on the bridge).
	Name string
	// From and To select ports by iface-id (their interface's
	// external_ids:iface-id, the model port's name): what the selected
	// ports receive from their VM (From) and send to it (To) is copied.
	// Iface-ids not bound on this host are left out; a mirror with no
	// port selected here has no row.
	From, To []string
	// OutputIfaceID is the iface-id of the port the copies go to (on
	// this host; without it here, the mirror has no row). OVS reserves a
	// mirror's output port: nothing else is sent to it.
	OutputIfaceID string
	// RemoteIP, instead, sends the copies in GRE (key GREKey) to a
	// collector, through a GRE port of the bridge (MirrorPortName).
	RemoteIP string
	GREKey   uint32
	// Receive makes the mirror the end of other hosts' remote mirrors:
	// a GRE port (MirrorPortName; any remote, key GREKey) receives their
	// copies and the mirror copies what it receives to OutputIfaceID.
	// From and To are not used.
	Receive bool
}

// MirrorPortName is the name of the GRE port of a remote mirror.
func MirrorPortName(mirror string) string {
	h := fnv.New32a()
	h.Write([]byte(mirror))
	return fmt.Sprintf("lmir%08x", h.Sum32())
}

// SFlowConfig exports sFlow samples of the bridge's traffic.
type SFlowConfig struct {
	Targets  []string // collectors, IP:PORT
	Sampling int      // one packet in Sampling (0: OVS's default, 400)
	Polling  int      // seconds between counter samples (0: OVS's default, 30)
	Header   int      // bytes of each sampled packet (0: OVS's default, 128)
	Agent    string   // the interface or IP the datagrams give as their agent (empty: OVS's choice)
}

// IPFIXConfig exports IPFIX flow records of sampled packets.
type IPFIXConfig struct {
	Targets            []string // collectors, IP:PORT
	Sampling           int      // one packet in Sampling (0: OVS's default, 400)
	ObsDomainID        int      // observation domain id (0: none)
	CacheActiveTimeout int      // seconds a flow record is kept before it is exported (0: OVS's default)
}

// NetFlowConfig exports NetFlow v5 records of the bridge's flows.
type NetFlowConfig struct {
	Targets       []string // collectors, IP:PORT
	ActiveTimeout int      // seconds between records of a long flow (0: OVS's default, 600)
	EngineID      int      // 0-255 (0: none set)
}

func validIPv4(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && a.Is4()
}

func targetsOf(x any) []string {
	switch e := x.(type) {
	case *SFlowConfig:
		if e != nil {
			return e.Targets
		}
	case *IPFIXConfig:
		if e != nil {
			return e.Targets
		}
	case *NetFlowConfig:
		if e != nil {
			return e.Targets
		}
	}
	return nil
}

// clone returns c with its own copies of everything it refers to, so
// that the agent never shares memory with the caller.
func (c HostConfig) clone() HostConfig {
	c.Mirrors = slices.Clone(c.Mirrors)
	c.Zones = maps.Clone(c.Zones)
	for i := range c.Mirrors {
		c.Mirrors[i].From, c.Mirrors[i].To = slices.Clone(c.Mirrors[i].From), slices.Clone(c.Mirrors[i].To)
	}
	if c.SFlow != nil {
		sf := *c.SFlow
		sf.Targets = slices.Clone(sf.Targets)
		c.SFlow = &sf
	}
	if c.IPFIX != nil {
		ip := *c.IPFIX
		ip.Targets = slices.Clone(ip.Targets)
		c.IPFIX = &ip
	}
	if c.NetFlow != nil {
		nf := *c.NetFlow
		nf.Targets = slices.Clone(nf.Targets)
		c.NetFlow = &nf
	}
	return c
}

// withDefaults returns a copy of c (clone) with defaults filled in, or an
// error saying which field is wrong.
func (c HostConfig) withDefaults() (HostConfig, error) {
	c = c.clone()
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
	for _, t := range c.Targets() {
		if !strings.Contains(t, ":") {
			errs = append(errs, fmt.Errorf("Controller %q: want OVS targets such as tcp:IP:PORT, separated by commas", c.Controller))
			break
		}
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
	zoneUsers := map[uint16]string{}
	for _, u := range slices.Sorted(maps.Keys(c.Zones)) {
		z := c.Zones[u]
		if other, ok := zoneUsers[z]; ok || z == 0 || u == "" {
			errs = append(errs, fmt.Errorf("Zones: %q has zone %d (0, or %q's too)", u, z, other))
		}
		zoneUsers[z] = u
	}
	names := map[string]bool{}
	for i, m := range c.Mirrors {
		f := fmt.Sprintf("Mirrors[%d]", i)
		switch {
		case m.Name == "" || names[m.Name]:
			errs = append(errs, fmt.Errorf("%s: Name %q is empty or repeated", f, m.Name))
		case (m.OutputIfaceID == "") == (m.RemoteIP == ""):
			errs = append(errs, fmt.Errorf("%s: give exactly one of OutputIfaceID and RemoteIP", f))
		case m.RemoteIP != "" && !validIPv4(m.RemoteIP):
			errs = append(errs, fmt.Errorf("%s: RemoteIP %q is not an IPv4 address", f, m.RemoteIP))
		case m.Receive && m.OutputIfaceID == "":
			errs = append(errs, fmt.Errorf("%s: a receiving mirror needs OutputIfaceID", f))
		}
		names[m.Name] = true
	}
	for _, e := range []struct {
		name    string
		targets []string
	}{{"SFlow", targetsOf(c.SFlow)}, {"IPFIX", targetsOf(c.IPFIX)}, {"NetFlow", targetsOf(c.NetFlow)}} {
		for _, tgt := range e.targets {
			if ap, err := netip.ParseAddrPort(tgt); err != nil || ap.Port() == 0 {
				errs = append(errs, fmt.Errorf("%s target %q: want IP:PORT", e.name, tgt))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("ovsdb: host %q: %w", c.Name, err)
	}
	return c, nil
}
