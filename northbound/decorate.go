package northbound

import (
	"time"

	"github.com/loom-sdn/loom/model"
)

// BackendStatus is a load balancer backend's health.
type BackendStatus struct {
	LoadBalancer string    `json:"load_balancer"`
	IP           string    `json:"ip"`
	Port         int       `json:"port"`
	Up           bool      `json:"up"`
	Checked      bool      `json:"checked"`        // probed by a health check
	Since        time.Time `json:"since,omitzero"` // the last change (or the first probe)
}

// BackendHealth reports the health of a load balancer's backends, in the
// order of lb.Backends, as the running load balancer app sees it; false
// when the app does not run. loomd wires it to the app; nil is an app
// that does not run.
type BackendHealth func(lb *model.LoadBalancer) ([]BackendStatus, bool)

func (h BackendHealth) of(lb *model.LoadBalancer) ([]BackendStatus, bool) {
	if h == nil {
		return nil, false
	}
	return h(lb)
}

// ModelOption configures ModelRoutes.
type ModelOption func(*decorator)

// WithBackendHealth has load balancers carry their backends' health.
func WithBackendHealth(h BackendHealth) ModelOption {
	return func(d *decorator) { d.health = h }
}

// A decorator fills in the read-only fields that some kinds carry, which
// the model does not store but the running apps know: the API fills them
// in every object it returns. It returns a copy; model objects are shared
// and immutable.
type decorator struct {
	health BackendHealth
}

func (d decorator) decorate(o model.Object) model.Object {
	if lb, ok := o.(*model.LoadBalancer); ok {
		return d.loadBalancer(lb)
	}
	return o
}

func (d decorator) decorateAll(objs []model.Object) []model.Object {
	if len(objs) == 0 || objs[0].Kind() != model.KindLoadBalancer {
		return objs
	}
	out := make([]model.Object, len(objs))
	for i, o := range objs {
		out[i] = d.decorate(o)
	}
	return out
}

// loadBalancer fills each backend's status (up or down) and the time of
// its last change from the load balancer app's health checks; without
// the app running the backends carry no status.
func (d decorator) loadBalancer(lb *model.LoadBalancer) model.Object {
	st, running := d.health.of(lb)
	if !running {
		return lb
	}
	cp := *lb
	cp.Backends = make([]model.Backend, len(lb.Backends))
	for i, b := range lb.Backends {
		if i < len(st) {
			b.Status = "down"
			if st[i].Up {
				b.Status = "up"
			}
			if st[i].Checked {
				since := st[i].Since
				b.Since = &since
			}
		}
		cp.Backends[i] = b
	}
	return &cp
}
