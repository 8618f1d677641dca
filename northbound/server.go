// Package northbound serves Loom's HTTP API: health, metrics and the REST
// API under /api/v1. Each part of the API is a Mount (switches.go,
// model.go, topology.go, events.go); auth.go guards them all.
package northbound

import (
	"net/http"

	"github.com/gorilla/mux"
	"github.com/loom-sdn/loom/controller"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Mount adds a group of routes to the /api/v1 router.
type Mount func(api *mux.Router)

// Handler returns the HTTP handler: /healthz, /metrics, and /api/v1 with
// the switch routes and the given mounts. Writes (POST, PUT, PATCH) need
// Content-Type: application/json (415 otherwise); HEAD is served wherever
// GET is.
func Handler(c *controller.Controller, gatherer prometheus.Gatherer, mounts ...Mount) http.Handler {
	r := mux.NewRouter()
	r.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]any{"status": "ok", "switches": len(c.Switches())})
	}).Methods(http.MethodGet)
	r.Handle("/metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{})).Methods(http.MethodGet)
	uiRoutes(r)
	api := r.PathPrefix("/api/v1").Subrouter()
	SwitchRoutes(c)(api)
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
	return apiHandler{Handler: headAsGet(requireJSON(r)), router: r}
}

// apiHandler is the API with its router at hand (for WalkRoutes).
type apiHandler struct {
	http.Handler
	router *mux.Router
}
