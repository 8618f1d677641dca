package loomd

import (
	"errors"
	"testing"
)

// An unknown flag or app, a stray argument and a malformed --app-opt are
// usage errors, returned before anything starts (Main exits 2 on them;
// cmd/loomd's TestAppsTypoExits2 checks the binary's status).
func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"--no-such-flag"}, {"stray"}, {"--apps", "lldp,nope"}, {"--apps", ","}, {"--app-opt", "lldp.interval"}, {"--app-opt", "interval=1s"},
		{"--apps", "l2switch", "--app-opt", "lldp.interval=1s"}, {"--store", "consul:http://x"}, {"--store", "etcd:"}} {
		err := Run(args)
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("Run(%q) = %v, want a usage error", args, err)
		}
	}
}
