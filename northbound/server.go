// Package northbound serves Loom's HTTP API: health, metrics and the REST
// API under /api/v1 (switches now; the network model from the next
// milestone on).
package northbound

import (
	"encoding/json"
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

// Error is the body of every error response.
type Error struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

// Handler returns the HTTP handler.
func Handler(c *controller.Controller, gatherer prometheus.Gatherer) http.Handler {
	r := mux.NewRouter()
	r.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "switches": len(c.Switches())})
	}).Methods(http.MethodGet)
	r.Handle("/metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{})).Methods(http.MethodGet)
	api := r.PathPrefix("/api/v1").Subrouter()
	api.HandleFunc("/switches", func(w http.ResponseWriter, _ *http.Request) {
		out := []Switch{}
		for _, s := range c.Switches() {
			out = append(out, switchView(s))
		}
		writeJSON(w, http.StatusOK, out)
	}).Methods(http.MethodGet)
	api.HandleFunc("/switches/{dpid}", func(w http.ResponseWriter, req *http.Request) {
		dpid, err := ParseDPID(mux.Vars(req)["dpid"])
		if err != nil {
			writeJSON(w, http.StatusBadRequest, Error{Error: err.Error(), Field: "dpid"})
			return
		}
		st, err := c.Inspect(req.Context(), dpid)
		if errors.Is(err, controller.ErrNoSwitch) {
			writeJSON(w, http.StatusNotFound, Error{Error: fmt.Sprintf("switch %016x is not connected", dpid)})
			return
		} else if err != nil {
			writeJSON(w, http.StatusServiceUnavailable, Error{Error: err.Error()})
			return
		}
		d := SwitchDetail{Switch: switchView(st.Info), Ports: []Port{}, Flows: st.Flows, Groups: st.Groups, Meters: st.Meters}
		for _, p := range st.Ports {
			d.Ports = append(d.Ports, Port{p.PortNo, p.Name, macString(p.HWAddr), p.Up()})
		}
		writeJSON(w, http.StatusOK, d)
	}).Methods(http.MethodGet)
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		writeJSON(w, http.StatusNotFound, Error{Error: "no such resource: " + req.URL.Path})
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		writeJSON(w, http.StatusMethodNotAllowed, Error{Error: req.Method + " is not allowed on " + req.URL.Path})
	})
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

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
