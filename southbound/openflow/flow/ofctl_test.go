package flow

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/loom-sdn/loom/internal/testenv"
)

// ofctl returns ovs-ofctl's path; without it the test is skipped, or
// fails when LOOM_REQUIRE_OVS=1 (CI).
func ofctl(t *testing.T) string {
	t.Helper()
	return testenv.Tool(t, "ovs-ofctl")
}

// ofpParse hands encoded OpenFlow messages to ovs-ofctl ofp-parse and
// returns what it printed.
func ofpParse(t *testing.T, msgs []byte) string {
	t.Helper()
	bin := ofctl(t)
	file := filepath.Join(t.TempDir(), "msgs")
	if err := os.WriteFile(file, msgs, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "ofp-parse", file).CombinedOutput()
	if err != nil {
		t.Fatalf("ovs-ofctl ofp-parse: %v\n%s", err, out)
	}
	return string(out)
}
