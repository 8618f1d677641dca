package northbound

import (
	"github.com/loom-sdn/loom/apps/loadbalancer"
	"github.com/loom-sdn/loom/model"
)

// Some kinds carry read-only fields that the model does not store but the
// running apps know: the API fills them in every object it returns.
// A decorator returns a copy; model objects are shared and immutable.
var decorators = map[model.Kind]func(model.Object) model.Object{
	model.KindLoadBalancer: decorateLoadBalancer,
}

func decorate(o model.Object) model.Object {
	if fn := decorators[o.Kind()]; fn != nil {
		return fn(o)
	}
	return o
}

func decorateAll(objs []model.Object) []model.Object {
	if len(objs) == 0 || decorators[objs[0].Kind()] == nil {
		return objs
	}
	out := make([]model.Object, len(objs))
	for i, o := range objs {
		out[i] = decorate(o)
	}
	return out
}

// decorateLoadBalancer fills each backend's status (up or down) and the
// time of its last change from the load balancer app's health checks;
// without the app running the backends carry no status.
func decorateLoadBalancer(o model.Object) model.Object {
	lb, ok := o.(*model.LoadBalancer)
	if !ok {
		return o
	}
	st, running := loadbalancer.BackendStatus(lb)
	if !running {
		return o
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
