package overlay_test

// The other apps that compute from the view, for BenchmarkPortMoveAllApps
// (an external test package, so that they may import the overlay).
import (
	_ "github.com/loom-sdn/loom/apps/dhcp"
	_ "github.com/loom-sdn/loom/apps/firewall"
	_ "github.com/loom-sdn/loom/apps/loadbalancer"
	_ "github.com/loom-sdn/loom/apps/portpolicy"
	_ "github.com/loom-sdn/loom/apps/router"
)
