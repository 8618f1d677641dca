package loomd

import (
	"hash/fnv"
	"slices"

	"github.com/loom-sdn/loom/model"
	"github.com/loom-sdn/loom/southbound/ovsdb"
	"github.com/loom-sdn/loom/view"
)

// mirrorConfigs are the model's mirrors as host's OVSDB agent applies
// them (each agent selects the source ports bound on its bridge). A SPAN
// mirror is local on its analyzer's host; every other host sends its
// sources' copies in GRE to the analyzer host's VTEP, where a receiving
// mirror (its GRE port) copies them to the analyzer too.
func mirrorConfigs(m *model.Snapshot, v *view.Snapshot, host string) []ovsdb.MirrorConfig {
	var out []ovsdb.MirrorConfig
	name := func(id string) string {
		if p, ok := m.Ports.Get(id); ok {
			return p.Name // the iface-id
		}
		return ""
	}
	for _, mr := range m.Mirrors.Sorted() {
		var srcs []string
		for _, id := range mr.Sources {
			if n := name(id); n != "" {
				srcs = append(srcs, n)
			}
		}
		mc := ovsdb.MirrorConfig{Name: "loom-" + mr.Name, RemoteIP: mr.RemoteIP, GREKey: uint32(mr.GREKey)}
		if mr.Direction != "to-port" {
			mc.From = srcs
		}
		if mr.Direction != "from-port" {
			mc.To = srcs
		}
		if mr.OutputPort == "" {
			out = append(out, mc)
			continue
		}
		analyzer := name(mr.OutputPort)
		b, bound := v.Binding(analyzer)
		switch {
		case !bound:
			continue // nowhere to send the copies yet
		case b.Host == host:
			mc.OutputIfaceID = analyzer
			out = append(out, mc)
			// The copies of the sources bound elsewhere come in GRE.
			if slices.ContainsFunc(srcs, func(p string) bool { sb, ok := v.Binding(p); return ok && sb.Host != host }) {
				out = append(out, ovsdb.MirrorConfig{Name: "loom-in:" + mr.Name, Receive: true, GREKey: spanKey(mr.ID), OutputIfaceID: analyzer})
			}
		default:
			if h, ok := m.Hosts.ByName(b.Host); ok && h.VTEPIP != "" {
				mc.RemoteIP, mc.GREKey = h.VTEPIP, spanKey(mr.ID)
				out = append(out, mc)
			}
		}
	}
	return out
}

// spanKey is the GRE key of a SPAN mirror's copies between hosts.
func spanKey(id string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(id))
	return h.Sum32()
}

// exportConfigs are the flow exports host (an id) takes part in.
func exportConfigs(m *model.Snapshot, host string) (*ovsdb.SFlowConfig, *ovsdb.IPFIXConfig, *ovsdb.NetFlowConfig) {
	var (
		sf *ovsdb.SFlowConfig
		ip *ovsdb.IPFIXConfig
		nf *ovsdb.NetFlowConfig
	)
	for _, f := range m.FlowExports.Sorted() {
		if len(f.Hosts) > 0 && !slices.Contains(f.Hosts, host) {
			continue
		}
		switch f.Protocol {
		case "sflow":
			sf = &ovsdb.SFlowConfig{Targets: f.Targets, Sampling: f.Sampling, Polling: f.PollingSeconds, Header: f.HeaderBytes}
		case "ipfix":
			ip = &ovsdb.IPFIXConfig{Targets: f.Targets, Sampling: f.Sampling, ObsDomainID: f.ObservationDomain,
				CacheActiveTimeout: f.ActiveTimeoutSeconds}
		case "netflow":
			nf = &ovsdb.NetFlowConfig{Targets: f.Targets, ActiveTimeout: f.ActiveTimeoutSeconds, EngineID: f.EngineID}
		}
	}
	return sf, ip, nf
}
