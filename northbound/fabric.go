package northbound

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"

	"github.com/gorilla/mux"
	"github.com/loom-sdn/loom/controller"
	"github.com/loom-sdn/loom/southbound/ovsdb"
	"github.com/loom-sdn/loom/topology"
	"github.com/loom-sdn/loom/view"
)

// Fabric is GET /fabric: the distributed virtual switch in one answer,
// shaped for drawing (the live topology page, /ui/): the hosts with their
// OVSDB and OpenFlow state, the networks and on which hosts they have
// ports, every port with where it is bound, the VXLAN tunnels in use
// (host pairs that share a VXLAN network), the links LLDP found, the
// routers and the load balancers. Every list is sorted.
type Fabric struct {
	Revision      uint64               `json:"revision"` // the model's
	ViewSeq       uint64               `json:"view_seq"` // the view's (bindings)
	Hosts         []FabricHost         `json:"hosts"`
	Networks      []FabricNetwork      `json:"networks"`
	Ports         []FabricPort         `json:"ports"`
	Tunnels       []FabricTunnel       `json:"tunnels"`
	Links         []TopologyLink       `json:"links"`
	Routers       []FabricRouter       `json:"routers"`
	LoadBalancers []FabricLoadBalancer `json:"load_balancers"`
}

// FabricHost is a hypervisor.
type FabricHost struct {
	Name              string `json:"name"`
	VTEPIP            string `json:"vtep_ip,omitempty"`
	Uplink            string `json:"uplink,omitempty"`
	DatapathID        string `json:"datapath_id"`
	OVSDBConnected    bool   `json:"ovsdb_connected"`
	BridgeReady       bool   `json:"bridge_ready"`
	OpenFlowConnected bool   `json:"openflow_connected"`
	LastError         string `json:"last_error,omitempty"`
}

// FabricNetwork is a network and the hosts with a port of it bound.
type FabricNetwork struct {
	Name    string   `json:"name"`
	Type    string   `json:"type"`
	Segment int      `json:"segment,omitempty"` // VNI or VLAN
	Subnets []string `json:"subnets"`           // CIDRs
	Hosts   []string `json:"hosts"`
}

// FabricPort is a port and where it is bound.
type FabricPort struct {
	Name      string   `json:"name"`
	Network   string   `json:"network"`
	MAC       string   `json:"mac"`
	IPs       []string `json:"ips"`
	Host      string   `json:"host,omitempty"` // "" while unbound
	Interface string   `json:"interface,omitempty"`
	OFPort    uint32   `json:"ofport,omitempty"`
	Up        bool     `json:"up"`
	Bindings  int      `json:"bindings"` // more than one while migrating
}

// FabricTunnel joins two hosts (A sorts first) that both have ports of
// the VXLAN networks named.
type FabricTunnel struct {
	A        string   `json:"a"`
	B        string   `json:"b"`
	Networks []string `json:"networks"`
}

// FabricRouter is a router and the networks it joins.
type FabricRouter struct {
	Name     string   `json:"name"`
	Networks []string `json:"networks"`
	External string   `json:"external_network,omitempty"`
	Gateway  string   `json:"gateway_host,omitempty"`
}

// FabricLoadBalancer is a load balancer and how many backends are up.
type FabricLoadBalancer struct {
	Name     string `json:"name"`
	Network  string `json:"network"`
	VIP      string `json:"vip"`
	Port     int    `json:"port"`
	Protocol string `json:"protocol"`
	Backends int    `json:"backends"`
	Up       int    `json:"up"`
}

// FabricRoutes serves GET /fabric.
func FabricRoutes(mgr *ovsdb.Manager, ctl *controller.Controller, v *view.View, topo *topology.Graph, health BackendHealth) Mount {
	Describe(http.MethodGet, "/api/v1/fabric", "The distributed virtual switch in one answer: hosts and their state, networks, ports and where they are bound, VXLAN tunnels in use, LLDP links, routers, load balancers")
	return func(api *mux.Router) {
		api.HandleFunc("/fabric", func(w http.ResponseWriter, _ *http.Request) {
			WriteJSON(w, http.StatusOK, FabricOf(v.Snapshot(), mgr, ctl, topo, health))
		}).Methods(http.MethodGet)
	}
}

// FabricOf computes the fabric from a view snapshot and the southbound
// state (any of mgr, ctl and topo may be nil).
func FabricOf(s *view.Snapshot, mgr *ovsdb.Manager, ctl *controller.Controller, topo *topology.Graph, health BackendHealth) Fabric {
	m := s.Model
	f := Fabric{Revision: m.Revision, ViewSeq: s.Seq, Hosts: []FabricHost{}, Networks: []FabricNetwork{}, Ports: []FabricPort{},
		Tunnels: []FabricTunnel{}, Links: []TopologyLink{}, Routers: []FabricRouter{}, LoadBalancers: []FabricLoadBalancer{}}
	connected := map[uint64]bool{}
	if ctl != nil {
		for _, sw := range ctl.Switches() {
			connected[sw.DatapathID] = true
		}
	}
	for _, h := range m.Hosts.Sorted() {
		dpid, _ := s.DatapathID(h.Name)
		fh := FabricHost{Name: h.Name, VTEPIP: h.VTEPIP, Uplink: h.Uplink, DatapathID: fmt.Sprintf("%016x", dpid),
			OpenFlowConnected: connected[dpid]}
		if mgr != nil {
			if st, ok := mgr.HostStatus(h.Name); ok {
				fh.OVSDBConnected, fh.BridgeReady, fh.LastError = st.Connected, st.BridgeReady, st.LastError
			}
		}
		f.Hosts = append(f.Hosts, fh)
	}
	netName := func(id string) string {
		if n, ok := m.Networks.Get(id); ok {
			return n.Name
		}
		return id
	}
	hostsOf := map[string]map[string]bool{} // network id -> hosts
	for _, p := range m.Ports.Sorted() {
		fp := FabricPort{Name: p.Name, Network: netName(p.Network), MAC: p.MAC, IPs: p.IPs}
		if fp.IPs == nil {
			fp.IPs = []string{}
		}
		bs := s.Bindings(p.Name)
		fp.Bindings = len(bs)
		if len(bs) > 0 {
			b := bs[0]
			fp.Host, fp.Interface, fp.OFPort, fp.Up = b.Host, b.Interface, b.OFPort, b.Up
			if b.OFPort != 0 {
				if hostsOf[p.Network] == nil {
					hostsOf[p.Network] = map[string]bool{}
				}
				hostsOf[p.Network][b.Host] = true
			}
		}
		f.Ports = append(f.Ports, fp)
	}
	cidrs := map[string][]string{} // by network, in subnet name order
	for _, sn := range m.Subnets.Sorted() {
		cidrs[sn.Network] = append(cidrs[sn.Network], sn.CIDR)
	}
	tunnels := map[[2]string][]string{}
	for _, n := range m.Networks.Sorted() {
		fn := FabricNetwork{Name: n.Name, Type: n.Type, Subnets: []string{}, Hosts: []string{}}
		switch n.Type {
		case "vxlan":
			fn.Segment = n.VNI
		case "vlan":
			fn.Segment = n.VLAN
		}
		fn.Subnets = append(fn.Subnets, cidrs[n.ID]...)
		for h := range hostsOf[n.ID] {
			fn.Hosts = append(fn.Hosts, h)
		}
		slices.Sort(fn.Hosts)
		if n.Type == "vxlan" {
			for i, a := range fn.Hosts {
				for _, b := range fn.Hosts[i+1:] {
					tunnels[[2]string{a, b}] = append(tunnels[[2]string{a, b}], n.Name)
				}
			}
		}
		f.Networks = append(f.Networks, fn)
	}
	for pair, nets := range tunnels {
		f.Tunnels = append(f.Tunnels, FabricTunnel{A: pair[0], B: pair[1], Networks: nets})
	}
	slices.SortFunc(f.Tunnels, func(x, y FabricTunnel) int { return cmp.Or(cmp.Compare(x.A, y.A), cmp.Compare(x.B, y.B)) })
	if topo != nil {
		f.Links = TopologyOf(topo.Snapshot()).Links
	}
	for _, r := range m.Routers.Sorted() {
		fr := FabricRouter{Name: r.Name, Networks: []string{}}
		for _, id := range r.Subnets {
			if sn, ok := m.Subnets.Get(id); ok && !slices.Contains(fr.Networks, netName(sn.Network)) {
				fr.Networks = append(fr.Networks, netName(sn.Network))
			}
		}
		if r.ExternalNetwork != "" {
			fr.External = netName(r.ExternalNetwork)
		}
		if h, ok := m.Hosts.Get(r.GatewayHost); ok {
			fr.Gateway = h.Name
		}
		f.Routers = append(f.Routers, fr)
	}
	for _, lb := range m.LoadBalancers.Sorted() {
		fl := FabricLoadBalancer{Name: lb.Name, Network: netName(lb.Network), VIP: lb.VIP, Port: lb.Port, Protocol: lb.Protocol,
			Backends: len(lb.Backends), Up: len(lb.Backends)}
		if st, ok := health.of(lb); ok {
			fl.Up = 0
			for _, b := range st {
				if b.Up {
					fl.Up++
				}
			}
		}
		f.LoadBalancers = append(f.LoadBalancers, fl)
	}
	return f
}
