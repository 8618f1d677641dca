package main

import (
	"bytes"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// A typo in --apps stops loomd at once with exit status 2 and the list of
// the apps it has (it used to hang, deaf to SIGTERM).
func TestAppsTypoExits2(t *testing.T) {
	bin := build(t, "loomd")
	for _, apps := range []string{"lldp,overlayy", ",", "l2switch,nope"} {
		cmd := exec.Command(bin, "--apps", apps, "--data-dir", t.TempDir(), "--api-listen", "", "--openflow-listen", "tcp:127.0.0.1:0")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 {
				t.Errorf("--apps %s: %v, want exit status 2; stderr: %s", apps, err, stderr.String())
			}
			msg := stderr.String()
			if !strings.Contains(msg, "--apps") || !strings.Contains(msg, "registered: ") || !strings.Contains(msg, "overlay") {
				t.Errorf("--apps %s: stderr %q does not name the flag and the known apps", apps, msg)
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("--apps %s: loomd still runs after 10 s", apps)
		}
	}
}
