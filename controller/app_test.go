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
