// Package testenv is what every test shares about its environment: the
// one rule for tests that need root, OVS or other tools (skip on a
// laptop, fail in CI, where LOOM_REQUIRE_OVS=1), and the one wait loop.
package testenv

import (
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Required reports whether a missing prerequisite fails tests instead of
// skipping them (LOOM_REQUIRE_OVS=1, as CI sets it).
func Required() bool { return os.Getenv("LOOM_REQUIRE_OVS") == "1" }

// SkipOrFail skips the test with msg, or fails it when Required.
func SkipOrFail(t testing.TB, msg string) {
	t.Helper()
	if Required() {
		t.Fatal(msg + " [LOOM_REQUIRE_OVS=1]")
	}
	t.Skip(msg)
}

// RequireTools skips the test (or fails it, when Required) unless every
// tool is on PATH (or, given as a path, executable). .ci/packages names
// the Debian package of each.
func RequireTools(t testing.TB, tools ...string) {
	t.Helper()
	var missing []string
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		SkipOrFail(t, "missing "+strings.Join(missing, ", ")+" (`make deps` installs them: .ci/packages)")
	}
}

// Tool returns the path of a tool, as RequireTools requires it.
func Tool(t testing.TB, tool string) string {
	t.Helper()
	RequireTools(t, tool)
	path, _ := exec.LookPath(tool)
	return path
}

// WaitFor polls cond every 10 ms until it holds and returns how long that
// took; after timeout it fails the test, naming what it waited for and
// adding what each detail returns.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool, detail ...func() string) time.Duration {
	t.Helper()
	start := time.Now()
	for deadline := start.Add(timeout); ; time.Sleep(10 * time.Millisecond) {
		if cond() {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			break
		}
	}
	var more string
	for _, f := range detail {
		more += "\n" + f()
	}
	t.Fatalf("timed out after %v waiting for %s%s", timeout, what, more)
	return 0
}

// HeapInuse is the heap in use after a GC, for tests that bound memory.
func HeapInuse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// RSSKB is the process's resident set in KiB (VmRSS), 0 where /proc is
// missing.
func RSSKB() int {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	return 0
}
