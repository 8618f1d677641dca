// Package kit is what Loom's apps share: the services loomd hands them
// (the model's view, the topology graph) with typed accessors, and the
// definitions more than one app needs. Apps import the kit, never each
// other.
package kit

import (
	"fmt"

	"github.com/loom-sdn/loom/controller"
	"github.com/loom-sdn/loom/topology"
	"github.com/loom-sdn/loom/view"
)

// The names under which a program shares its services with the apps
// (controller.Config.Services).
const (
	ServiceView     = "view"
	ServiceTopology = "topology"
)

// Services are the services of a program that has a view and a topology
// graph (either may be nil), for controller.Config.Services.
func Services(v *view.View, g *topology.Graph) map[string]any {
	s := map[string]any{}
	if v != nil {
		s[ServiceView] = v
	}
	if g != nil {
		s[ServiceTopology] = g
	}
	return s
}

// View returns the model's view the program shares, or an error naming
// the app that needs it.
func View(env controller.Env, app string) (*view.View, error) {
	v, _ := env.Service(ServiceView).(*view.View)
	if v == nil {
		return nil, fmt.Errorf("%s needs the model's view (controller.Config.Services: kit.Services)", app)
	}
	return v, nil
}

// Topology returns the topology graph the program shares, or an error
// naming the app that needs it.
func Topology(env controller.Env, app string) (*topology.Graph, error) {
	g, _ := env.Service(ServiceTopology).(*topology.Graph)
	if g == nil {
		return nil, fmt.Errorf("%s needs the topology graph (controller.Config.Services: kit.Services)", app)
	}
	return g, nil
}
