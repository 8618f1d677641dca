// Command loomd is the Loom controller daemon: the stock build of package
// loomd, with every built-in app. A build with more apps is a main
// package like this one that also imports them (examples/plugin).
package main

// Imported as daemon: this package's tests name their process type loomd.
import daemon "github.com/loom-sdn/loom/loomd"

func main() { daemon.Main() }
