// Command loomd-arpguard is loomd with the arpguard app linked in: the
// stock daemon (every built-in app, every flag) plus one more name for
// --apps. Build it from this module (go build ./cmd/loomd-arpguard) and
// run it as loomd, e.g.
//
//	loomd-arpguard --apps lldp,overlay,router,dhcp,portpolicy,firewall,loadbalancer,arpguard --app-opt arpguard.rate=50
package main

import (
	_ "github.com/loom-sdn/loom/examples/plugin/arpguard"
	"github.com/loom-sdn/loom/loomd"
)

func main() { loomd.Main() }
