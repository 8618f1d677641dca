package northbound

import (
	"net/http"
	"time"

	"github.com/gorilla/mux"
	"github.com/loom-sdn/loom/topology"
)

// TopologyView is GET /topology: the graph shaped for drawing. Nodes are
// switches (id = datapath id), links join nodes (source/target are node
// ids, with the ports), endpoints name the node and port they attach to.
// Every list is sorted, and ids are stable.
type TopologyView struct {
	Version   uint64             `json:"version"`
	Nodes     []TopologyNode     `json:"nodes"`
	Links     []TopologyLink     `json:"links"`
	Endpoints []TopologyEndpoint `json:"endpoints"`
}

// TopologyNode is a switch.
type TopologyNode struct {
	ID    string    `json:"id"`
	Type  string    `json:"type"` // "switch"
	Ports []Port    `json:"ports"`
	Since time.Time `json:"since"`
}

// TopologyLink is a link between two switch ports (source sorts first).
// It is bidirectional when LLDP sees both directions.
type TopologyLink struct {
	ID            string    `json:"id"`
	Source        string    `json:"source"`
	SourcePort    uint32    `json:"source_port"`
	Target        string    `json:"target"`
	TargetPort    uint32    `json:"target_port"`
	Bidirectional bool      `json:"bidirectional"`
	FirstSeen     time.Time `json:"first_seen"`
	LastSeen      time.Time `json:"last_seen"`
}

// TopologyEndpoint is a host or VM interface (id = MAC).
type TopologyEndpoint struct {
	ID       string    `json:"id"`
	MAC      string    `json:"mac"`
	IPs      []string  `json:"ips"`
	Switch   string    `json:"switch,omitempty"` // node id, when attached
	Port     uint32    `json:"port,omitempty"`
	Source   string    `json:"source"`
	LastSeen time.Time `json:"last_seen"`
}

// TopologyPath is GET /topology/path: the switches from one to the other,
// each with the port the path enters (in_port) and leaves (out_port) by.
type TopologyPath struct {
	From string         `json:"from"`
	To   string         `json:"to"`
	Hops []topology.Hop `json:"hops"`
}

// TopologyRoutes serves the topology graph: GET /topology and
// GET /topology/path?from=DPID&to=DPID (404 when there is no path).
func TopologyRoutes(g *topology.Graph) Mount {
	return func(api *mux.Router) {
		api.HandleFunc("/topology", func(w http.ResponseWriter, _ *http.Request) {
			WriteJSON(w, http.StatusOK, TopologyOf(g.Snapshot()))
		}).Methods(http.MethodGet)
		api.HandleFunc("/topology/path", func(w http.ResponseWriter, req *http.Request) {
			from, err := dpidParam(req, "from")
			if err != nil {
				WriteError(w, err)
				return
			}
			to, err := dpidParam(req, "to")
			if err != nil {
				WriteError(w, err)
				return
			}
			s := g.Snapshot()
			for _, e := range []struct {
				field string
				dpid  topology.DPID
			}{{"from", from}, {"to", to}} {
				if _, ok := s.Switch(e.dpid); !ok {
					WriteError(w, Errorf(http.StatusNotFound, CodeNotFound, e.field, "switch %s is not in the topology", e.dpid))
					return
				}
			}
			hops, ok := s.Path(from, to)
			if !ok {
				WriteError(w, Errorf(http.StatusNotFound, CodeNotFound, "", "no path from %s to %s", from, to))
				return
			}
			WriteJSON(w, http.StatusOK, TopologyPath{From: from.String(), To: to.String(), Hops: hops})
		}).Methods(http.MethodGet)
	}
}

func dpidParam(req *http.Request, field string) (topology.DPID, *APIError) {
	v := req.URL.Query().Get(field)
	if v == "" {
		return 0, Errorf(http.StatusBadRequest, CodeInvalid, field, "%s is required: a datapath id", field)
	}
	d, err := ParseDPID(v)
	if err != nil {
		return 0, Errorf(http.StatusBadRequest, CodeInvalid, field, "%v", err)
	}
	return topology.DPID(d), nil
}

// TopologyOf renders a snapshot for the API.
func TopologyOf(s *topology.Snapshot) TopologyView {
	v := TopologyView{Version: s.Version, Nodes: []TopologyNode{}, Links: []TopologyLink{}, Endpoints: []TopologyEndpoint{}}
	for _, sw := range s.Switches {
		n := TopologyNode{ID: sw.DPID.String(), Type: "switch", Ports: []Port{}, Since: sw.Since}
		for _, p := range sw.Ports {
			n.Ports = append(n.Ports, Port{Number: p.Number, Name: p.Name, MAC: p.MAC.String(), Up: p.Up})
		}
		v.Nodes = append(v.Nodes, n)
	}
	for _, l := range s.Links {
		v.Links = append(v.Links, TopologyLink{ID: l.ID(), Source: l.A.DPID.String(), SourcePort: l.A.Port,
			Target: l.B.DPID.String(), TargetPort: l.B.Port, Bidirectional: l.Bidirectional(),
			FirstSeen: l.FirstSeen(), LastSeen: l.LastSeen()})
	}
	for _, e := range s.Endpoints {
		te := TopologyEndpoint{ID: e.MAC.String(), MAC: e.MAC.String(), IPs: []string{}, Source: e.Source, LastSeen: e.LastSeen}
		for _, ip := range e.IPs {
			te.IPs = append(te.IPs, ip.String())
		}
		if e.Attached() {
			te.Switch, te.Port = e.At.DPID.String(), e.At.Port
		}
		v.Endpoints = append(v.Endpoints, te)
	}
	return v
}
