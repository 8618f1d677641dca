package main

import (
	"slices"

	"github.com/loom-sdn/loom/model"
	"github.com/loom-sdn/loom/southbound/ovsdb"
)

// mirrorConfigs are the model's mirrors as every host's OVSDB agent
// applies them: each host's agent selects the source ports bound there.
func mirrorConfigs(m *model.Snapshot) []ovsdb.MirrorConfig {
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
		if mr.OutputPort != "" {
			mc.OutputIfaceID = name(mr.OutputPort)
		}
		if mr.Direction != "to-port" {
			mc.From = srcs
		}
		if mr.Direction != "from-port" {
			mc.To = srcs
		}
		out = append(out, mc)
	}
	return out
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
