package model

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
)

// The kinds of port mirroring and flow export.
const (
	KindMirror     Kind = "mirror"
	KindFlowExport Kind = "flow_export"
)

// Mirror copies the traffic of VM ports to an analyzer: a VM port on the
// same host (SPAN) or a collector reached in GRE over the underlay
// (remote mirroring).
type Mirror struct {
	Meta
	Sources   []string `json:"sources" ref:"port" doc:"ports whose traffic is copied (names or ids on input, ids on output); 1-1000"`
	Direction string   `json:"direction" enum:"both|from-port|to-port" doc:"what is copied: what the sources send (from-port), what they receive (to-port), or both (default)"`
	// Exactly one of OutputPort and RemoteIP.
	OutputPort string `json:"output_port,omitempty" ref:"port" doc:"SPAN: the analyzer's port (name or id on input, id on output), not a source; it receives the copies of the sources bound on its own host, and nothing else while the mirror exists"`
	RemoteIP   string `json:"remote_ip,omitempty" doc:"remote mirroring: an IPv4 collector; every host with a source sends it the copies in GRE (key gre_key) through its underlay; exactly one of output_port and remote_ip"`
	GREKey     int64  `json:"gre_key,omitempty" doc:"remote_ip only: 0-4294967295 (default 0)"`
}

// FlowExport has hosts export samples of their traffic (sFlow) or flow
// records (IPFIX, NetFlow v5) to collectors.
type FlowExport struct {
	Meta
	Protocol string   `json:"protocol" enum:"sflow|ipfix|netflow"`
	Targets  []string `json:"targets" doc:"collectors, IPv4:port; 1-16"`
	Hosts    []string `json:"hosts,omitempty" ref:"host" doc:"the hosts that export (names or ids on input, ids on output; default: every host); a host exports each protocol for one flow export at most"`
	Sampling int      `json:"sampling,omitempty" doc:"sflow, ipfix: one packet in sampling is sampled, 1-16777215 (default 400)"`
	// sFlow
	PollingSeconds int `json:"polling_seconds,omitempty" doc:"sflow: seconds between counter samples, 1-3600 (default 30)"`
	HeaderBytes    int `json:"header_bytes,omitempty" doc:"sflow: bytes of each sampled packet, 64-1500 (default 128)"`
	// IPFIX and NetFlow
	ActiveTimeoutSeconds int `json:"active_timeout_seconds,omitempty" doc:"ipfix, netflow: seconds after which a long flow is reported, 1-3600 (default: OVS's)"`
	ObservationDomain    int `json:"observation_domain,omitempty" doc:"ipfix: observation domain id, 0-4294967295"`
	EngineID             int `json:"engine_id,omitempty" doc:"netflow: engine id, 0-255"`
}

// Kind implements Object.
func (*Mirror) Kind() Kind { return KindMirror }

// Kind implements Object.
func (*FlowExport) Kind() Kind { return KindFlowExport }

func validateMirror(c *check, m *Mirror) *Error {
	if len(m.Sources) == 0 || len(m.Sources) > 1000 {
		return invalidf("sources", "give 1-1000 source ports")
	}
	for i, id := range m.Sources {
		if slices.Contains(m.Sources[:i], id) {
			return invalidf(fmt.Sprintf("sources[%d]", i), "port %s is listed twice", id)
		}
	}
	if m.Direction == "" {
		m.Direction = "both"
	}
	if err := enum("direction", m.Direction, "both", "from-port", "to-port"); err != nil {
		return err
	}
	switch {
	case m.OutputPort == "" && m.RemoteIP == "":
		return invalidf("output_port", "give output_port (SPAN) or remote_ip (remote mirroring)")
	case m.OutputPort != "" && m.RemoteIP != "":
		return invalidf("remote_ip", "give output_port or remote_ip, not both")
	case m.OutputPort != "":
		if slices.Contains(m.Sources, m.OutputPort) {
			return invalidf("output_port", "the output port is one of the sources")
		}
		if m.GREKey != 0 {
			return invalidf("gre_key", "gre_key goes with remote_ip")
		}
		if o := c.cur.index().outputs[m.OutputPort]; o != nil && o.ID != m.ID {
			return conflictf("output_port", "port %s is already mirror %s's output", m.OutputPort, o.Name)
		}
	default:
		a, err := parseIP("remote_ip", &m.RemoteIP)
		if err != nil {
			return err
		}
		if !a.Is4() {
			return invalidf("remote_ip", "remote_ip %s is not an IPv4 address", a)
		}
		if m.GREKey < 0 || m.GREKey > 0xffffffff {
			return invalidf("gre_key", "gre_key %d is not 0-4294967295", m.GREKey)
		}
	}
	return nil
}

func validateFlowExport(c *check, f *FlowExport) *Error {
	if err := enum("protocol", f.Protocol, "sflow", "ipfix", "netflow"); err != nil {
		return err
	}
	if len(f.Targets) == 0 || len(f.Targets) > 16 {
		return invalidf("targets", "give 1-16 targets")
	}
	for i := range f.Targets {
		field := fmt.Sprintf("targets[%d]", i)
		ap, err := netip.ParseAddrPort(f.Targets[i])
		if err != nil || !ap.Addr().Is4() || ap.Port() == 0 {
			return invalidf(field, "target %q is not IPv4:port", f.Targets[i])
		}
		f.Targets[i] = ap.String()
		if slices.Contains(f.Targets[:i], f.Targets[i]) {
			return invalidf(field, "target %s is listed twice", f.Targets[i])
		}
	}
	only := func(field string, v int, protocols ...string) *Error {
		if v != 0 && !slices.Contains(protocols, f.Protocol) {
			return invalidf(field, "%s does not apply to %s", field, f.Protocol)
		}
		return nil
	}
	for _, e := range []*Error{
		only("sampling", f.Sampling, "sflow", "ipfix"), optRange("sampling", f.Sampling, 1, 16777215),
		only("polling_seconds", f.PollingSeconds, "sflow"), optRange("polling_seconds", f.PollingSeconds, 1, 3600),
		only("header_bytes", f.HeaderBytes, "sflow"), optRange("header_bytes", f.HeaderBytes, 64, 1500),
		only("active_timeout_seconds", f.ActiveTimeoutSeconds, "ipfix", "netflow"),
		optRange("active_timeout_seconds", f.ActiveTimeoutSeconds, 1, 3600),
		only("observation_domain", f.ObservationDomain, "ipfix"), optRange("observation_domain", f.ObservationDomain, 0, 0xffffffff),
		only("engine_id", f.EngineID, "netflow"), optRange("engine_id", f.EngineID, 0, 255),
	} {
		if e != nil {
			return e
		}
	}
	for i, h := range f.Hosts {
		if slices.Contains(f.Hosts[:i], h) {
			return invalidf(fmt.Sprintf("hosts[%d]", i), "host %s is listed twice", h)
		}
	}
	// One flow export of a protocol per host: the first (by name) other
	// flow export of the protocol that covers a host f covers clashes.
	// Without hosts, f clashes with every other; with hosts, with those
	// that list one of them or have none.
	x := c.cur.index()
	clash := map[string]*FlowExport{}
	if len(f.Hosts) == 0 {
		clash = x.exports[f.Protocol]
	} else {
		for _, h := range f.Hosts {
			if o := x.exportHosts[f.Protocol][h]; o != nil {
				clash[o.ID] = o
			}
		}
		maps.Copy(clash, x.exportAll[f.Protocol])
	}
	var o *FlowExport
	for _, e := range clash {
		if e.ID != f.ID && (o == nil || e.Name < o.Name) {
			o = e
		}
	}
	if o == nil {
		return nil
	}
	// The first host by name they both cover.
	covers := func(e *FlowExport, h string) bool { return len(e.Hosts) == 0 || slices.Contains(e.Hosts, h) }
	hosts := f.Hosts
	switch {
	case len(hosts) == 0 && len(o.Hosts) == 0:
		hosts = slices.Collect(maps.Keys(c.cur.Hosts.byID))
	case len(hosts) == 0:
		hosts = o.Hosts
	}
	var shared *Host
	for _, id := range hosts {
		if h, ok := c.cur.Hosts.Get(id); ok && covers(f, id) && covers(o, id) && (shared == nil || h.Name < shared.Name) {
			shared = h
		}
	}
	if shared == nil {
		return conflictf("hosts", "flow export %s already exports %s from every host", o.Name, f.Protocol)
	}
	return conflictf("hosts", "host %s already exports %s for flow export %s", shared.Name, f.Protocol, o.Name)
}
