// Package controllertest runs Loom's runtime on a unix socket for tests of
// apps and APIs, with emulated switches (southbound/openflow/emu).
package controllertest

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loom-sdn/loom/controller"
	"github.com/loom-sdn/loom/southbound/openflow"
	"github.com/loom-sdn/loom/southbound/openflow/emu"
	"github.com/prometheus/client_golang/prometheus"
)

// Env is a running runtime.
type Env struct {
	T    testing.TB
	Ctl  *controller.Controller
	Sock string // the OpenFlow unix socket
}

// Start starts the runtime with cfg (metrics registered in reg, which may
// be nil) and stops it when the test ends.
func Start(t testing.TB, cfg controller.Config, reg prometheus.Registerer) *Env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctl, err := controller.New(ctx, cfg, log, reg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "of.sock")
	l, err := openflow.Listen("unix:"+sock, openflow.TLSFiles{})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	// Tests connect up to thousands of emulated switches over one unix
	// socket, which is one source.
	srv := &openflow.Server{Config: openflow.Config{MaxConns: -1, MaxConnsPerSource: -1}, Handler: ctl, Log: log}
	go srv.Serve(ctx, l)
	t.Cleanup(func() { cancel(); srv.Wait(); ctl.Wait() })
	return &Env{T: t, Ctl: ctl, Sock: sock}
}

// Dial connects an emulated switch, closed when the test ends.
func (e *Env) Dial(opt emu.Options) *emu.Switch {
	e.T.Helper()
	sw, err := emu.Dial("unix", e.Sock, opt)
	if err != nil {
		e.T.Fatal(err)
	}
	e.T.Cleanup(sw.Close)
	return sw
}

// Ready waits until the switch is connected and its first reconciliation
// confirmed.
func (e *Env) Ready(dpid uint64) {
	e.T.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if s, ok := e.Ctl.Switch(dpid); ok {
			select {
			case <-s.Ready():
				return
			case <-time.After(5 * time.Second):
			}
		}
	}
	e.T.Fatalf("switch %016x never became ready", dpid)
}

// WaitFlow waits until the emulated switch sw (called name in the
// failure) has a flow whose text contains every one of parts, or, with
// want false, none such; it fails the test after 5 s.
func WaitFlow(t testing.TB, sw *emu.Switch, name string, want bool, parts ...string) {
	t.Helper()
	match := func() bool {
	flows:
		for s := range sw.Flows() {
			for _, p := range parts {
				if !strings.Contains(s, p) {
					continue flows
				}
			}
			return true
		}
		return false
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if match() == want {
			return
		}
	}
	t.Fatalf("%s: flow with %q present: %v, want %v", name, parts, !want, want)
}

// ExpectFlows checks that the flows of the emulated switch sw whose text
// satisfies keep (nil: all) are exactly want, in ovs-ofctl syntax (as
// flow.Flow.String prints them: what `ovs-ofctl dump-flows` shows, less
// counters); it waits up to 5 s for the switch to get there, then fails
// naming what is missing and what is extra.
func ExpectFlows(t testing.TB, sw *emu.Switch, keep func(string) bool, want ...string) {
	t.Helper()
	var missing, extra []string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		missing, extra = diffFlows(sw.Flows(), keep, want)
		if len(missing) == 0 && len(extra) == 0 {
			return
		}
		if time.Now().After(deadline) {
			break
		}
	}
	t.Fatalf("flows differ:\nmissing:\n  %s\nextra:\n  %s", strings.Join(missing, "\n  "), strings.Join(extra, "\n  "))
}

func diffFlows(have map[string]bool, keep func(string) bool, want []string) (missing, extra []string) {
	w := map[string]bool{}
	for _, f := range want {
		w[f] = true
		if !have[f] {
			missing = append(missing, f)
		}
	}
	for f := range have {
		if (keep == nil || keep(f)) && !w[f] {
			extra = append(extra, f)
		}
	}
	slices.Sort(missing)
	slices.Sort(extra)
	return missing, extra
}
