package northbound

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/gorilla/mux"
	"github.com/loom-sdn/loom/controller"
	"github.com/loom-sdn/loom/model"
	"github.com/loom-sdn/loom/southbound/ovsdb"
	"github.com/loom-sdn/loom/view"
)

// HostStatus is what Loom knows of a hypervisor beyond its model object.
type HostStatus struct {
	Host              string `json:"host"`
	ovsdb.HostStatus         // OVSDB connection, bridge, datapath id, last error
	OpenFlowConnected bool   `json:"openflow_connected"`
}

// PortStatus is where a model port is bound: the hypervisor interface
// whose external_ids:iface-id is the port's name.
type PortStatus struct {
	Port    string         `json:"port"`
	Bound   bool           `json:"bound"`
	Binding *ovsdb.Binding `json:"binding,omitempty"` // the active binding
	// Bindings lists every host interface bound to the port, active
	// first: more than one while a VM migrates.
	Bindings []view.Binding `json:"bindings,omitempty"`
}

// LoadBalancerStatus is the health of a load balancer's backends
// (BackendHealth); Running is false when loomd does not run the app.
type LoadBalancerStatus struct {
	LoadBalancer string          `json:"load_balancer"`
	Running      bool            `json:"running"`
	Backends     []BackendStatus `json:"backends"`
}

// StatusRoutes serves GET /hosts/{id-or-name}/status and
// GET /ports/{id-or-name}/status.
func StatusRoutes(svc *model.Service, mgr *ovsdb.Manager, ctl *controller.Controller, v *view.View, health BackendHealth) Mount {
	Describe(http.MethodGet, "/api/v1/hosts/{id}/status", "A host's OVSDB and OpenFlow state: connected, bridge ready, datapath id, last error")
	Describe(http.MethodGet, "/api/v1/ports/{id}/status", "Where a port is bound: host, interface, ofport, MAC, admin and link state")
	Describe(http.MethodGet, "/api/v1/load-balancers/{id}/status", "A load balancer's backends: up or down (health checks) and since when")
	return func(api *mux.Router) {
		api.HandleFunc("/hosts/{id}/status", func(w http.ResponseWriter, r *http.Request) {
			h, err := svc.Get(model.KindHost, mux.Vars(r)["id"])
			if err != nil {
				WriteError(w, Errorf(http.StatusNotFound, CodeNotFound, "id", "%v", err))
				return
			}
			name := h.Base().Name
			st, _ := mgr.HostStatus(name)
			out := HostStatus{Host: name, HostStatus: st}
			for _, sw := range ctl.Switches() {
				if st.DatapathID != "" && strings.EqualFold(dpidHex(sw.DatapathID), strings.TrimPrefix(st.DatapathID, "0x")) {
					out.OpenFlowConnected = true
				}
			}
			WriteJSON(w, http.StatusOK, out)
		}).Methods(http.MethodGet)
		api.HandleFunc("/load-balancers/{id}/status", func(w http.ResponseWriter, r *http.Request) {
			o, err := svc.Get(model.KindLoadBalancer, mux.Vars(r)["id"])
			lb, ok := o.(*model.LoadBalancer)
			if err != nil || !ok {
				WriteError(w, Errorf(http.StatusNotFound, CodeNotFound, "id", "%v", err))
				return
			}
			bes, running := health.of(lb)
			if bes == nil {
				bes = []BackendStatus{}
			}
			WriteJSON(w, http.StatusOK, LoadBalancerStatus{LoadBalancer: lb.Name, Running: running, Backends: bes})
		}).Methods(http.MethodGet)
		api.HandleFunc("/ports/{id}/status", func(w http.ResponseWriter, r *http.Request) {
			p, err := svc.Get(model.KindPort, mux.Vars(r)["id"])
			if err != nil {
				WriteError(w, Errorf(http.StatusNotFound, CodeNotFound, "id", "%v", err))
				return
			}
			out := PortStatus{Port: p.Base().Name}
			out.Bindings = v.Snapshot().Bindings(out.Port)
			if len(out.Bindings) > 0 {
				active := out.Bindings[0]
				for _, b := range mgr.Bindings() {
					if b.IfaceID == out.Port && b.Host == active.Host && b.Interface == active.Interface {
						out.Bound, out.Binding = true, &b
						break
					}
				}
			}
			WriteJSON(w, http.StatusOK, out)
		}).Methods(http.MethodGet)
	}
}

func dpidHex(d uint64) string { return fmt.Sprintf("%016x", d) }
