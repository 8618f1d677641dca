package testenv

import (
	"testing"
	"time"
)

type fakeT struct {
	testing.TB
	failed, skipped bool
	msg             string
}

func (f *fakeT) Helper()                           {}
func (f *fakeT) Fatal(args ...any)                 { f.failed = true; panic(f) }
func (f *fakeT) Fatalf(format string, args ...any) { f.failed = true; panic(f) }
func (f *fakeT) Skip(args ...any)                  { f.skipped = true; panic(f) }

func run(f func(t *fakeT)) *fakeT {
	t := &fakeT{}
	func() {
		defer func() { recover() }()
		f(t)
	}()
	return t
}

func TestRequireTools(t *testing.T) {
	t.Setenv("LOOM_REQUIRE_OVS", "")
	if r := run(func(t *fakeT) { RequireTools(t, "no-such-tool-xyz") }); !r.skipped || r.failed {
		t.Errorf("missing tool without LOOM_REQUIRE_OVS: %+v, want a skip", r)
	}
	t.Setenv("LOOM_REQUIRE_OVS", "1")
	if r := run(func(t *fakeT) { RequireTools(t, "no-such-tool-xyz") }); !r.failed || r.skipped {
		t.Errorf("missing tool with LOOM_REQUIRE_OVS=1: %+v, want a failure", r)
	}
	if r := run(func(t *fakeT) { RequireTools(t, "sh") }); r.failed || r.skipped {
		t.Errorf("sh: %+v", r)
	}
}

func TestWaitFor(t *testing.T) {
	n := 0
	if d := WaitFor(t, time.Second, "n = 3", func() bool { n++; return n == 3 }); d <= 0 || n != 3 {
		t.Errorf("WaitFor: %v, n %d", d, n)
	}
	if r := run(func(t *fakeT) { WaitFor(t, 30*time.Millisecond, "never", func() bool { return false }) }); !r.failed {
		t.Error("WaitFor of a condition that never holds did not fail")
	}
}
