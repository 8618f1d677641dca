package kit

import (
	"cmp"
	"slices"

	"github.com/loom-sdn/loom/controller"
	"github.com/loom-sdn/loom/model"
	"github.com/loom-sdn/loom/southbound/openflow/wire"
	"github.com/loom-sdn/loom/view"
)

// The distributed virtual switch's definitions that the apps working on
// its packets share (the overlay builds it; the router, DHCP, port
// policies and load balancers work on its networks).

// TunnelPort is the name of the flow-based VXLAN port Loom creates on
// every host (southbound/ovsdb).
const TunnelPort = "vxlan0"

// Its registers (RegOutPort, RegPriority) and metadata layout
// (MetadataMask: the network's key and the remote bit) are in registry.go.

// Network keys: the VNI for VXLAN networks; VLAN networks and flat
// networks in their own ranges above 2^24.
const (
	KeyVLAN = 1 << 24
	KeyFlat = 2 << 24
)

// NetworkKeys gives every network its key. Flat networks are numbered in
// the order of their ids.
func NetworkKeys(m *model.Snapshot) map[string]uint32 {
	keys := make(map[string]uint32, m.Networks.Len())
	var flat []*model.Network
	for id, n := range m.Networks.All() {
		switch n.Type {
		case "vxlan":
			keys[id] = uint32(n.VNI)
		case "vlan":
			keys[id] = KeyVLAN | uint32(n.VLAN)
		case "flat":
			flat = append(flat, n)
		}
	}
	slices.SortFunc(flat, func(a, b *model.Network) int { return cmp.Compare(a.ID, b.ID) })
	for i, n := range flat {
		keys[n.ID] = KeyFlat | uint32(i+1)
	}
	return keys
}

// SwitchPorts are the switch's own ports the overlay uses; 0 when absent.
type SwitchPorts struct {
	Tunnel uint32 // the flow-based VXLAN port
	Uplink uint32 // the host's uplink (VLAN and flat networks)
}

// FindSwitchPorts finds the tunnel and the host's uplink among the
// switch's ports, by name.
func FindSwitchPorts(ctx *controller.Context, snap *view.Snapshot) SwitchPorts {
	var sp SwitchPorts
	uplink := ""
	if h, ok := snap.HostByDatapath(ctx.DatapathID()); ok {
		uplink = h.Uplink
	}
	ctx.Ports(func(p wire.Port) {
		switch {
		case p.Name == TunnelPort:
			sp.Tunnel = p.PortNo
		case uplink != "" && p.Name == uplink:
			sp.Uplink = p.PortNo
		}
	})
	return sp
}
