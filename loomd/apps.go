package loomd

// The built-in apps, linked into every loomd built on this package. Each
// registers itself in init(); which of them run, and so which pipeline
// tables are realized, is --apps. A custom build links more apps from its
// own main package (see the package comment).
import (
	_ "github.com/loom-sdn/loom/apps/dhcp"
	_ "github.com/loom-sdn/loom/apps/firewall"
	_ "github.com/loom-sdn/loom/apps/l2switch"
	_ "github.com/loom-sdn/loom/apps/lldp"
	_ "github.com/loom-sdn/loom/apps/loadbalancer"
	_ "github.com/loom-sdn/loom/apps/overlay"
	_ "github.com/loom-sdn/loom/apps/portpolicy"
	_ "github.com/loom-sdn/loom/apps/router"
)
