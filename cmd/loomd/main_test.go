package main

import (
	"os"
	"testing"
)

// TestMain removes the binaries the integration tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}
