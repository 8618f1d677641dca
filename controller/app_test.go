package controller

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// An unknown app name is an error that lists the registered apps; it
// used to deadlock (lookup held the registry's lock and called
// Registered, which takes it again).
func TestUnknownAppIsAnError(t *testing.T) {
	done := make(chan error, 1)
	go func() {
		_, err := New(context.Background(), Config{Apps: []string{"test-ap"}}, slog.New(slog.DiscardHandler), nil)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), `unknown app "test-ap"`) || !strings.Contains(err.Error(), "test-app") {
			t.Fatalf("New with an unknown app: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("New with an unknown app hangs")
	}
}

// Options reach their app, which refuses keys it does not know; options
// for an app that does not run are an error.
func TestAppOptions(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	if _, err := New(context.Background(), Config{Apps: []string{"test-app"}, AppOptions: map[string]map[string]string{"other": {"k": "v"}}}, log, nil); err == nil ||
		!strings.Contains(err.Error(), `"other"`) {
		t.Errorf("options for an app that does not run: %v", err)
	}
	env := Env{Options: map[string]string{"interval": "1s", "typo": "x"}}
	if err := env.CheckOptions("interval"); err == nil || !strings.Contains(err.Error(), `"typo"`) || !strings.Contains(err.Error(), "interval") {
		t.Errorf("CheckOptions: %v", err)
	}
	if err := (Env{Options: map[string]string{"interval": "1s"}}).CheckOptions("interval"); err != nil {
		t.Error(err)
	}
	if err := (Env{Options: map[string]string{"x": "1"}}).CheckOptions(); err == nil {
		t.Error("an app without options took one")
	}
	if (Env{services: map[string]any{"a": 1}}).Service("a") != 1 || (Env{}).Service("a") != nil {
		t.Error("Service")
	}
}

// A second test app, declared as a plugin would: its table placed before
// the test app's.
var otherTable = DeclareTable("test-first", "test-other", MissNext, Place{Before: "test"})

func init() {
	DeclareOwner("test-other", 0x7f02)
	Register("test-other", func(Env) (App, error) { return &testApp{}, nil })
}

// Two controllers in one process realize their own pipelines: each keeps
// its table ids whatever the other runs (the ids were package state that
// the second controller's realize overwrote).
func TestTwoControllersTwoPipelines(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	other := otherTable
	a, err := New(context.Background(), Config{Apps: []string{"test-app"}}, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(context.Background(), Config{Apps: []string{"test-other", "test-app"}}, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	if id := a.Pipeline().ID(testTable); id != 0 {
		t.Errorf("controller a: test is table %d, want 0", id)
	}
	if a.Pipeline().Realized(other) {
		t.Error("controller a realized the other app's table")
	}
	if b.Pipeline().ID(other) != 0 || b.Pipeline().ID(testTable) != 1 {
		t.Errorf("controller b: test-first %d, test %d; want 0 and 1 (placed before test)", b.Pipeline().ID(other), b.Pipeline().ID(testTable))
	}
	if id := a.Pipeline().ID(testTable); id != 0 {
		t.Errorf("controller a's test table moved to %d when b realized its pipeline", id)
	}
	if n, ok := b.Pipeline().Next(other); !ok || n != testTable {
		t.Errorf("b: after test-first comes %v", n)
	}
}
