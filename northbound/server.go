// Package northbound serves Loom's HTTP API: health, metrics and the REST
// API under /api/v1 (switches now; the network model from the next
// milestone on).
package northbound

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/gorilla/mux"
	"github.com/loom-sdn/loom/controller"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Switch is the REST view of a connected switch.
type Switch struct {
	DatapathID string `json:"datapath_id"`
	Remote     string `json:"remote"`
	Software   string `json:"software,omitempty"`
	Tables     uint8  `json:"tables"`
}

// Port is the REST view of a switch port.
type Port struct {
	Number uint32 `json:"number"`
	Name   string `json:"name"`
	MAC    string `json:"mac"`
	Up     bool   `json:"up"`
}

// SwitchDetail is a switch with its ports and desired state.
type SwitchDetail struct {
	Switch
	Ports  []Port                 `json:"ports"`
	Flows  []controller.OwnedFlow `json:"flows"`
	Groups []string               `json:"groups"`
	Meters []string               `json:"meters"`
}

// Mount adds a group of routes to the /api/v1 router. Each part of the
// API (switches, the network model, topology, events) is one Mount.
type Mount func(api *mux.Router)

// Handler returns the HTTP handler: /healthz, /metrics, and /api/v1 with
// the switch routes and the given mounts.
func Handler(c *controller.Controller, gatherer prometheus.Gatherer, mounts ...Mount) http.Handler {
	r := mux.NewRouter()
	r.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]any{"status": "ok", "switches": len(c.Switches())})
	}).Methods(http.MethodGet)
	r.Handle("/metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{})).Methods(http.MethodGet)
	api := r.PathPrefix("/api/v1").Subrouter()
	api.HandleFunc("/switches", func(w http.ResponseWriter, _ *http.Request) {
		out := []Switch{}
		for _, s := range c.Switches() {
			out = append(out, switchView(s))
		}
		WriteJSON(w, http.StatusOK, out)
	}).Methods(http.MethodGet)
	api.HandleFunc("/switches/{dpid}", func(w http.ResponseWriter, req *http.Request) {
		dpid, err := ParseDPID(mux.Vars(req)["dpid"])
		if err != nil {
			WriteError(w, Errorf(http.StatusBadRequest, CodeInvalid, "dpid", "%v", err))
			return
		}
		st, err := c.Inspect(req.Context(), dpid)
		if errors.Is(err, controller.ErrNoSwitch) {
			WriteError(w, Errorf(http.StatusNotFound, CodeNotFound, "dpid", "switch %016x is not connected", dpid))
			return
		} else if err != nil {
			WriteError(w, Errorf(http.StatusServiceUnavailable, CodeUnavailable, "", "%v", err))
			return
		}
		d := SwitchDetail{Switch: switchView(st.Info), Ports: []Port{}, Flows: st.Flows, Groups: st.Groups, Meters: st.Meters}
		for _, p := range st.Ports {
			d.Ports = append(d.Ports, Port{p.PortNo, p.Name, macString(p.HWAddr), p.Up()})
		}
		WriteJSON(w, http.StatusOK, d)
	}).Methods(http.MethodGet)
	for _, m := range mounts {
		m(api)
	}
	notFound := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		WriteError(w, Errorf(http.StatusNotFound, CodeNotFound, "", "no such resource: %s", req.URL.Path))
	})
	notAllowed := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		WriteError(w, Errorf(http.StatusMethodNotAllowed, CodeMethod, "", "%s is not allowed on %s", req.Method, req.URL.Path))
	})
	r.NotFoundHandler, api.NotFoundHandler = notFound, notFound
	r.MethodNotAllowedHandler, api.MethodNotAllowedHandler = notAllowed, notAllowed
	return r
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

func switchView(s controller.SwitchInfo) Switch {
	return Switch{fmt.Sprintf("%016x", s.DatapathID), s.Remote, s.Desc.Software, s.Features.NTables}
}

func macString(b [6]byte) string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3], b[4], b[5])
}
