// Package northbound serves Loom's HTTP API: health, metrics and (from the
// network-model milestone on) the REST API under /api/v1.
package northbound

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/gorilla/mux"
	"github.com/loom-sdn/loom/controller"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler returns the HTTP handler: /healthz, /metrics and
// GET /api/v1/switches.
func Handler(c *controller.Controller, gatherer prometheus.Gatherer) http.Handler {
	r := mux.NewRouter()
	r.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "switches": len(c.Switches())})
	}).Methods(http.MethodGet)
	r.Handle("/metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{})).Methods(http.MethodGet)
	r.HandleFunc("/api/v1/switches", func(w http.ResponseWriter, _ *http.Request) {
		type sw struct {
			DatapathID string `json:"datapath_id"`
			Remote     string `json:"remote"`
			Software   string `json:"software,omitempty"`
			Tables     uint8  `json:"tables"`
		}
		out := []sw{}
		for _, s := range c.Switches() {
			out = append(out, sw{fmt.Sprintf("%016x", s.DatapathID), s.Remote, s.Desc.Software, s.Features.NTables})
		}
		writeJSON(w, http.StatusOK, out)
	}).Methods(http.MethodGet)
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such resource: " + req.URL.Path})
	})
	return r
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
