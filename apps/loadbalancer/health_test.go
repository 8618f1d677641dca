package loadbalancer

import (
	"log/slog"
	"testing"
	"time"
)

func TestFallRise(t *testing.T) {
	h := &health{st: map[hkey]*hstate{}, log: slog.Default(), onChange: func(string) {}}
	k, p, now := hkey{"lb", "10.1.0.11", 80}, checkParams{fall: 3, rise: 2}, time.Now()
	step := func(ok bool, wantUp bool) {
		t.Helper()
		h.mu.Lock()
		h.result(k, h.state(k, now), p, ok, now)
		h.mu.Unlock()
		if got := h.up("lb", "10.1.0.11", 80); got != wantUp {
			t.Fatalf("up = %v, want %v", got, wantUp)
		}
	}
	step(false, true)
	step(false, true)
	step(true, true) // a success resets the failures
	step(false, true)
	step(false, true)
	step(false, false) // the third in a row
	step(true, false)
	step(true, true)
	if h.seq != 2 {
		t.Errorf("%d changes, want 2", h.seq)
	}
}
