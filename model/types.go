package model

import (
	"encoding/json"
	"reflect"
	"strconv"
	"time"
)

// Meta is what every object has. ID, CreatedAt, UpdatedAt and Revision
// are set by the Service: on input they are ignored.
type Meta struct {
	ID        string    `json:"id" doc:"generated; read-only"`
	Name      string    `json:"name" doc:"unique per kind; 1-63 of letters, digits, -, _ and ., starting and ending with a letter or digit"`
	CreatedAt time.Time `json:"created_at" doc:"read-only"`
	UpdatedAt time.Time `json:"updated_at" doc:"read-only"`
	Revision  uint64    `json:"revision" doc:"store revision of the last write; read-only (send it as If-Match)"`
}

// Base returns the object's Meta.
func (m *Meta) Base() *Meta { return m }

// Object is one object of the model: *Host, *Network, *Subnet, *Port,
// *PortGroup, *Router, *SecurityGroup, *LoadBalancer or *FloatingIP. Objects
// handed out by the Service and its snapshots are shared and must not be
// modified.
type Object interface {
	Base() *Meta
	Kind() Kind
}

// Host is a hypervisor running Open vSwitch.
type Host struct {
	Meta
	OVSDB        string `json:"ovsdb" doc:"OVSDB address: unix:/PATH or tcp:HOST:PORT (HOST an IPv4 address, [IPv6 address] or DNS name; PORT 1-65535; one target)"`
	VTEPIP       string `json:"vtep_ip" doc:"local VXLAN tunnel endpoint address; unique among hosts"`
	Bridge       string `json:"bridge" doc:"integration bridge (default br-int)"`
	DatapathType string `json:"datapath_type" enum:"system|netdev" doc:"default system"`
	Controller   string `json:"controller,omitempty" doc:"OpenFlow controller target for the bridge: tcp:HOST:PORT, ssl:HOST:PORT or unix:/PATH (as ovsdb; one target, no commas)"`
	Uplink       string `json:"uplink,omitempty" doc:"physical interface added to the bridge (vlan and flat networks)"`
}

// MaxVNI is the highest VNI a network may have: Loom keeps the 4096 above
// it for traffic a router sends to its gateway host.
const MaxVNI = 1<<24 - 1 - 4096

// Network is a virtual L2 network.
type Network struct {
	Meta
	Type string `json:"type" enum:"vxlan|vlan|flat"`
	VNI  int    `json:"vni,omitempty" doc:"vxlan only: 1-16773119, unique among vxlan networks (the top 4096 VNIs carry routed traffic between hosts)"`
	VLAN int    `json:"vlan,omitempty" doc:"vlan only: 1-4094, unique among vlan networks"`
}

// Route is a static route.
type Route struct {
	Destination string `json:"destination" doc:"CIDR"`
	Nexthop     string `json:"nexthop" doc:"IP address"`
}

// Subnet is an IP range of a network.
type Subnet struct {
	Meta
	Network      string   `json:"network" ref:"network" required:"true" doc:"network (name or id on input, id on output); cannot change"`
	CIDR         string   `json:"cidr" doc:"IPv4 (at most /30) or IPv6 (at most /126) prefix without host bits; must not overlap the network's other subnets nor the subnets of the routers it is attached to"`
	Gateway      string   `json:"gateway" doc:"inside cidr, neither its network nor broadcast address (default: the first address)"`
	DHCP         *bool    `json:"dhcp" doc:"default true"`
	DNSServers   []string `json:"dns_servers,omitempty" doc:"up to 8 addresses of the subnet's address family"`
	LeaseSeconds int      `json:"lease_seconds,omitempty" doc:"DHCP lease, 60-31536000 (default: the DHCP server's)"`
	HostRoutes   []Route  `json:"host_routes,omitempty" doc:"routes handed out by DHCP; nexthops inside cidr"`
}

// Port is a VM interface on a network.
type Port struct {
	Meta
	Network        string   `json:"network" ref:"network" required:"true" doc:"network (name or id on input, id on output); cannot change"`
	MAC            string   `json:"mac" doc:"unicast, not all-zero, unique in the network (default: generated, 02:xx:xx:xx:xx:xx)"`
	IPs            []string `json:"ips" doc:"each inside one of the network's subnets, not its gateway, network or broadcast address; unique in the network"`
	PortGroup      string   `json:"port_group,omitempty" ref:"port_group"`
	SecurityGroups []string `json:"security_groups,omitempty" ref:"security_group"`
}

// PortGroup is a set of port policies.
type PortGroup struct {
	Meta
	BandwidthKbps int   `json:"bandwidth_kbps,omitempty" doc:"rate limit of each port of the group, in each direction (to and from the VM), 1-100000000"`
	BurstKB       int   `json:"burst_kb,omitempty" doc:"burst size, 1-100000000; needs bandwidth_kbps (default: a tenth of a second of bandwidth_kbps)"`
	Priority      *int  `json:"priority,omitempty" doc:"0-7: IP traffic from the group's ports is marked DSCP class selector CS<priority>"`
	VLAN          int   `json:"vlan,omitempty" doc:"1-4094"`
	DHCPIsolation bool  `json:"dhcp_isolation,omitempty" doc:"drop DHCP server replies (UDP source port 67) the group's ports send"`
	IPMACBinding  *bool `json:"ip_mac_binding,omitempty" doc:"port security: a port sends only from its MAC and model addresses (default true; ports in no group always have it)"`
}

// Router connects subnets.
type Router struct {
	Meta
	Subnets         []string `json:"subnets" ref:"subnet" doc:"attached subnets; a subnet attaches to one router; their CIDRs must not overlap"`
	ExternalNetwork string   `json:"external_network,omitempty" ref:"network" doc:"network to the outside (name or id on input, id on output); not the network of an attached subnet; needs an IPv4 subnet with a free address (for external_ip)"`
	ExternalIP      string   `json:"external_ip,omitempty" doc:"read-only (ignored on input): the router's address on external_network, allocated when external_network is set: the lowest free host address of the network's first IPv4 subnet by CIDR that has one (not the gateway, a port's, a load balancer's, a floating IP's or another router's); kept while external_network stays, released when it is removed"`
	SNAT            bool     `json:"snat,omitempty" doc:"source NAT to the external network; needs external_network"`
	GatewayHost     string   `json:"gateway_host,omitempty" ref:"host" doc:"host (name or id on input, id on output) running the external gateway; default with external_network: the first host by name that has an uplink (empty if none)"`
	Routes          []Route  `json:"routes,omitempty" doc:"static routes; nexthops inside an attached subnet"`
}

// FloatingIP is an address of an external network mapped one to one
// (DNAT and SNAT) to a port's address by the router between them.
type FloatingIP struct {
	Meta
	IP      string `json:"ip" doc:"IPv4 address inside a subnet of network: not its gateway, network or broadcast address, nor the address of a port, a load balancer, another floating IP or a router's external_ip"`
	Network string `json:"network" ref:"network" doc:"external network: some router's external_network (name or id on input, id on output; default: the external network with a subnet containing ip)"`
	Port    string `json:"port,omitempty" ref:"port" doc:"port the address maps to (name or id on input, id on output; empty: unassociated); its network must have a subnet attached to a router whose external_network is network; one floating IP per port"`
}

// Rule is a security group rule.
type Rule struct {
	Direction   string   `json:"direction" enum:"ingress|egress"`
	Ethertype   string   `json:"ethertype" enum:"ipv4|ipv6" doc:"default ipv4"`
	Protocol    Protocol `json:"protocol" doc:"tcp, udp, icmp, any (default) or an IP protocol number 0-255 (a JSON number or string)"`
	PortMin     int      `json:"port_min,omitempty" doc:"tcp and udp only: 1-65535"`
	PortMax     int      `json:"port_max,omitempty" doc:"tcp and udp only: port_min-65535 (default port_min)"`
	RemoteCIDR  string   `json:"remote_cidr,omitempty" doc:"of the rule's ethertype; not with remote_group"`
	RemoteGroup string   `json:"remote_group,omitempty" ref:"security_group" doc:"may be the group itself"`
	Stateful    *bool    `json:"stateful" doc:"default true"`
}

// SecurityGroup is a set of firewall rules for ports.
type SecurityGroup struct {
	Meta
	Rules []Rule `json:"rules" doc:"up to 1000"`
}

// Backend is a load balancer member.
type Backend struct {
	IP     string `json:"ip"`
	Port   int    `json:"port" doc:"1-65535 (default: the load balancer's port)"`
	Weight *int   `json:"weight" doc:"1-256 (default 1)"`
	// Status and Since are read only: a GET fills them from the load
	// balancer app's health checks; what a client sends is ignored.
	Status string     `json:"status,omitempty" enum:"up|down" doc:"read only: up or down, as the health checks see it"`
	Since  *time.Time `json:"since,omitempty" doc:"read only: when a health check last changed the status"`
}

// HealthCheck probes backends.
type HealthCheck struct {
	Protocol   string `json:"protocol" enum:"tcp|udp" doc:"default: the load balancer's"`
	IntervalMS int    `json:"interval_ms" doc:"100-3600000 (default 5000)"`
	TimeoutMS  int    `json:"timeout_ms" doc:"1 to interval_ms-1 (default: the smaller of 2000 and interval_ms/2)"`
	Fall       int    `json:"fall" doc:"1-10 failures before a backend is down (default 3)"`
	Rise       int    `json:"rise" doc:"1-10 successes before it is up again (default 2)"`
}

// LoadBalancer spreads connections to a virtual IP over backends.
type LoadBalancer struct {
	Meta
	Network         string       `json:"network" ref:"network" required:"true" doc:"network (name or id on input, id on output); cannot change"`
	VIP             string       `json:"vip" doc:"inside one of the network's subnets, not a port's address; vip, protocol and port are unique together"`
	Protocol        string       `json:"protocol" enum:"tcp|udp"`
	Port            int          `json:"port" doc:"1-65535"`
	Backends        []Backend    `json:"backends" doc:"up to 1000, each ip:port once"`
	HealthCheck     *HealthCheck `json:"health_check,omitempty"`
	AffinitySeconds int          `json:"affinity_seconds,omitempty" doc:"client affinity, 0-86400"`
}

// Kind implements Object.
func (*Host) Kind() Kind { return KindHost }

// Kind implements Object.
func (*Network) Kind() Kind { return KindNetwork }

// Kind implements Object.
func (*Subnet) Kind() Kind { return KindSubnet }

// Kind implements Object.
func (*Port) Kind() Kind { return KindPort }

// Kind implements Object.
func (*PortGroup) Kind() Kind { return KindPortGroup }

// Kind implements Object.
func (*Router) Kind() Kind { return KindRouter }

// Kind implements Object.
func (*SecurityGroup) Kind() Kind { return KindSecurityGroup }

// Kind implements Object.
func (*LoadBalancer) Kind() Kind { return KindLoadBalancer }

// Kind implements Object.
func (*FloatingIP) Kind() Kind { return KindFloatingIP }

// Protocol is a rule's IP protocol: "tcp", "udp", "icmp", "any" or a
// decimal protocol number. On input it may also be a JSON number.
type Protocol string

// UnmarshalJSON accepts a string or a number.
func (p *Protocol) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*p = Protocol(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err == nil {
		*p = Protocol(n.String())
		return nil
	}
	if string(b) == "null" {
		*p = ""
		return nil
	}
	v := "value"
	switch b[0] {
	case 't', 'f':
		v = "bool"
	case '[':
		v = "array"
	case '{':
		v = "object"
	}
	return &json.UnmarshalTypeError{Value: v, Type: reflect.TypeFor[Protocol]()}
}

// Number returns the protocol number (-1 for any).
func (p Protocol) Number() int {
	switch p {
	case "tcp":
		return 6
	case "udp":
		return 17
	case "icmp":
		return 1
	case "any", "":
		return -1
	}
	n, err := strconv.Atoi(string(p))
	if err != nil {
		return -1
	}
	return n
}
