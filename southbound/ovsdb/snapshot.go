package ovsdb

import (
	"context"
	"fmt"

	"github.com/ovn-org/libovsdb/client"

	"github.com/loom-sdn/loom/southbound/ovsdb/vswitchd"
)

// monitored returns the tables and columns agents monitor: only what they
// read, so that statistics and status updates do not wake them.
func monitored(c client.Client) *client.Monitor {
	var (
		root vswitchd.OpenvSwitch
		br   vswitchd.Bridge
		p    vswitchd.Port
		i    vswitchd.Interface
		ctl  vswitchd.Controller
		mir  vswitchd.Mirror
		sfl  vswitchd.SFlow
		ipf  vswitchd.IPFIX
		nf   vswitchd.NetFlow
	)
	return c.NewMonitor(
		client.WithTable(&root, &root.Bridges),
		client.WithTable(&br, &br.Name, &br.DatapathType, &br.DatapathID, &br.Protocols, &br.FailMode,
			&br.OtherConfig, &br.ExternalIDs, &br.Controller, &br.Ports, &br.Mirrors, &br.Sflow, &br.IPFIX, &br.Netflow),
		client.WithTable(&p, &p.Name, &p.Interfaces, &p.ExternalIDs),
		client.WithTable(&i, &i.Name, &i.Type, &i.Options, &i.Ofport, &i.OfportRequest, &i.ExternalIDs,
			&i.MACInUse, &i.AdminState, &i.LinkState, &i.Error),
		client.WithTable(&ctl, &ctl.Target, &ctl.MaxBackoff, &ctl.InactivityProbe, &ctl.ExternalIDs),
		client.WithTable(&mir, &mir.Name, &mir.SelectSrcPort, &mir.SelectDstPort, &mir.OutputPort, &mir.SelectAll, &mir.ExternalIDs),
		client.WithTable(&sfl, &sfl.Targets, &sfl.Sampling, &sfl.Polling, &sfl.Header, &sfl.Agent, &sfl.ExternalIDs),
		client.WithTable(&ipf, &ipf.Targets, &ipf.Sampling, &ipf.ObsDomainID, &ipf.CacheActiveTimeout, &ipf.ExternalIDs),
		client.WithTable(&nf, &nf.Targets, &nf.ActiveTimeout, &nf.EngineID, &nf.ExternalIDs),
	)
}

// A snapshot is what an agent's cache holds at one reconciliation.
type snapshot struct {
	root        *vswitchd.OpenvSwitch
	bridge      *vswitchd.Bridge // the configured bridge, nil if missing
	ports       map[string]*vswitchd.Port
	portsByName map[string]*vswitchd.Port
	ifaces      map[string]*vswitchd.Interface
	controllers map[string]*vswitchd.Controller
	mirrors     map[string]*vswitchd.Mirror
	sflows      map[string]*vswitchd.SFlow
	ipfixes     map[string]*vswitchd.IPFIX
	netflows    map[string]*vswitchd.NetFlow
}

// readSnapshot reads the monitored tables from c's cache.
func readSnapshot(ctx context.Context, c client.Client, bridge string) (*snapshot, error) {
	var (
		roots  []vswitchd.OpenvSwitch
		brs    []vswitchd.Bridge
		ports  []vswitchd.Port
		ifaces []vswitchd.Interface
		ctls   []vswitchd.Controller
		mirs   []vswitchd.Mirror
		sfls   []vswitchd.SFlow
		ipfs   []vswitchd.IPFIX
		nfs    []vswitchd.NetFlow
	)
	for _, l := range []any{&roots, &brs, &ports, &ifaces, &ctls, &mirs, &sfls, &ipfs, &nfs} {
		if err := c.List(ctx, l); err != nil {
			return nil, err
		}
	}
	if len(roots) != 1 {
		return nil, fmt.Errorf("database has %d Open_vSwitch rows, want 1 (ovs-vsctl init creates it)", len(roots))
	}
	s := &snapshot{
		root:        &roots[0],
		ports:       make(map[string]*vswitchd.Port, len(ports)),
		portsByName: make(map[string]*vswitchd.Port, len(ports)),
		ifaces:      make(map[string]*vswitchd.Interface, len(ifaces)),
		controllers: make(map[string]*vswitchd.Controller, len(ctls)),
		mirrors:     make(map[string]*vswitchd.Mirror, len(mirs)),
		sflows:      make(map[string]*vswitchd.SFlow, len(sfls)),
		ipfixes:     make(map[string]*vswitchd.IPFIX, len(ipfs)),
		netflows:    make(map[string]*vswitchd.NetFlow, len(nfs)),
	}
	for i := range brs {
		if brs[i].Name == bridge {
			s.bridge = &brs[i]
		}
	}
	for i := range ports {
		s.ports[ports[i].UUID] = &ports[i]
		s.portsByName[ports[i].Name] = &ports[i]
	}
	for i := range ifaces {
		s.ifaces[ifaces[i].UUID] = &ifaces[i]
	}
	for i := range ctls {
		s.controllers[ctls[i].UUID] = &ctls[i]
	}
	for i := range mirs {
		s.mirrors[mirs[i].UUID] = &mirs[i]
	}
	for i := range sfls {
		s.sflows[sfls[i].UUID] = &sfls[i]
	}
	for i := range ipfs {
		s.ipfixes[ipfs[i].UUID] = &ipfs[i]
	}
	for i := range nfs {
		s.netflows[nfs[i].UUID] = &nfs[i]
	}
	return s, nil
}
