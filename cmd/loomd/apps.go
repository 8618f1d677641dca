package main

// The apps linked into loomd. Each registers itself in init(); which of
// them run, and so which pipeline tables are realized, is --apps.
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
