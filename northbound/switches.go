package northbound

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/loom-sdn/loom/northbound/restapi"

	"github.com/gorilla/mux"
	"github.com/loom-sdn/loom/controller"
)

// Switch is the REST view of a connected switch.
type Switch = restapi.Switch

// Port is the REST view of a switch port.
type Port = restapi.Port

// SwitchDetail is a switch with its ports and desired state.
type SwitchDetail = restapi.SwitchDetail

// SwitchRoutes serves the connected switches: GET /switches,
// /switches/{dpid} (ports and desired state) and /switches/{dpid}/flows
// (desired against installed, with owners and counters).
func SwitchRoutes(c *controller.Controller) Mount {
	return func(api *mux.Router) {
		api.HandleFunc("/switches", func(w http.ResponseWriter, _ *http.Request) {
			out := []Switch{}
			for _, s := range c.Switches() {
				out = append(out, switchView(c, s))
			}
			WriteJSON(w, http.StatusOK, out)
		}).Methods(http.MethodGet)
		api.HandleFunc("/switches/{dpid}", func(w http.ResponseWriter, req *http.Request) {
			dpid, aerr := dpidVar(req)
			if aerr != nil {
				WriteError(w, aerr)
				return
			}
			st, err := c.Inspect(req.Context(), dpid)
			if err != nil {
				WriteError(w, switchError(dpid, err))
				return
			}
			d := SwitchDetail{Switch: switchView(c, st.Info), Ports: []Port{}, Flows: make([]restapi.OwnedFlow, len(st.Flows)), Groups: st.Groups, Meters: st.Meters}
			for i, f := range st.Flows {
				d.Flows[i] = restapi.OwnedFlow(f)
			}
			for _, p := range st.Ports {
				d.Ports = append(d.Ports, Port{Number: p.PortNo, Name: p.Name, MAC: macString(p.HWAddr), Up: p.Up()})
			}
			WriteJSON(w, http.StatusOK, d)
		}).Methods(http.MethodGet)
		api.HandleFunc("/switches/{dpid}/flows", func(w http.ResponseWriter, req *http.Request) {
			dpid, aerr := dpidVar(req)
			if aerr != nil {
				WriteError(w, aerr)
				return
			}
			flows, err := c.Flows(req.Context(), dpid)
			if err != nil {
				WriteError(w, switchError(dpid, err))
				return
			}
			out := make([]restapi.FlowView, len(flows))
			for i, f := range flows {
				out[i] = restapi.FlowView(f)
			}
			WriteJSON(w, http.StatusOK, out)
		}).Methods(http.MethodGet)
	}
}

func dpidVar(req *http.Request) (uint64, *APIError) {
	dpid, err := ParseDPID(mux.Vars(req)["dpid"])
	if err != nil {
		return 0, Errorf(http.StatusBadRequest, CodeInvalid, "dpid", "%v", err)
	}
	return dpid, nil
}

func switchError(dpid uint64, err error) *APIError {
	if errors.Is(err, controller.ErrNoSwitch) {
		return Errorf(http.StatusNotFound, CodeNotFound, "dpid", "switch %016x is not connected", dpid)
	}
	return Errorf(http.StatusServiceUnavailable, CodeUnavailable, "", "switch %016x: %v", dpid, err)
}

// ParseDPID parses a datapath id written in hex ("000000000ac80001",
// optionally with "0x" or colons).
func ParseDPID(s string) (uint64, error) {
	h := strings.ReplaceAll(strings.TrimPrefix(strings.ToLower(s), "0x"), ":", "")
	v, err := strconv.ParseUint(h, 16, 64)
	if err != nil || h == "" {
		return 0, fmt.Errorf("datapath id %q is not up to 16 hex digits", s)
	}
	return v, nil
}

func switchView(c *controller.Controller, s controller.SwitchInfo) Switch {
	sw := Switch{DatapathID: dpidHex(s.DatapathID), Remote: s.Remote, Software: s.Desc.Software, Tables: s.Features.NTables}
	if r, ok := c.RoleOf(s.DatapathID); ok {
		sw.Role, sw.Generation, sw.Master = r.Role, r.Generation, r.Master
	}
	return sw
}

// ClusterInfo is what GET /cluster shows of the replicas sharing an etcd
// store (loomd wires package cluster to it).
type ClusterInfo interface {
	Cluster() restapi.Cluster
}

// ClusterRoutes serves GET /cluster: this loomd's replica id and every
// replica with its lease and its switch and host counts.
func ClusterRoutes(ci ClusterInfo) Mount {
	return func(api *mux.Router) {
		api.HandleFunc("/cluster", func(w http.ResponseWriter, _ *http.Request) {
			WriteJSON(w, http.StatusOK, ci.Cluster())
		}).Methods(http.MethodGet)
	}
}

func macString(b [6]byte) string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3], b[4], b[5])
}
