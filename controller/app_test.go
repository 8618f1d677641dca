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
