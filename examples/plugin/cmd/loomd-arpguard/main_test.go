package main

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain runs main instead of the tests when the test binary is started
// as loomd by the tests below (LOOMD_ARPGUARD_MAIN=1).
func TestMain(m *testing.M) {
	if os.Getenv("LOOMD_ARPGUARD_MAIN") == "1" {
		os.Args = append([]string{"loomd-arpguard"}, os.Args[1:]...)
		main()
	}
	os.Exit(m.Run())
}

// command is this test binary run as loomd-arpguard with args.
func command(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "LOOMD_ARPGUARD_MAIN=1")
	return cmd
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// TestUsageAndOptionErrors: the build knows arpguard beside the built-in
// apps (an unknown name lists them all, exit status 2), and a bad rate
// stops it with exit status 1, naming the option.
func TestUsageAndOptionErrors(t *testing.T) {
	var stderr bytes.Buffer
	cmd := command("--apps", "lldp,nope", "--data-dir", t.TempDir(), "--api-listen", "")
	cmd.Stderr = &stderr
	if code := exitCode(cmd.Run()); code != 2 {
		t.Errorf("--apps lldp,nope: exit status %d, want 2", code)
	}
	if msg := stderr.String(); !strings.Contains(msg, "registered: arpguard, dhcp, firewall, l2switch, lldp, loadbalancer, overlay, portpolicy, router") {
		t.Errorf("--apps lldp,nope: stderr %q does not list arpguard with the built-in apps", msg)
	}

	stderr.Reset()
	cmd = command("--apps", "lldp,overlay,arpguard", "--app-opt", "arpguard.rate=abc", "--data-dir", t.TempDir(),
		"--api-listen", "", "--openflow-listen", "unix:"+filepath.Join(t.TempDir(), "of.sock"))
	cmd.Stderr = &stderr
	if code := exitCode(cmd.Run()); code != 1 {
		t.Errorf("arpguard.rate=abc: exit status %d, want 1", code)
	}
	if msg := stderr.String(); !strings.Contains(msg, `app arpguard: option rate="abc"`) {
		t.Errorf("arpguard.rate=abc: stderr %q does not name the option", msg)
	}
}

// TestRunsWithTheOverlay: loomd-arpguard starts with the overlay and the
// guard, the guard's table right after the classifier, and stops cleanly
// on SIGTERM.
func TestRunsWithTheOverlay(t *testing.T) {
	dir := t.TempDir()
	cmd := command("--apps", "lldp,overlay,arpguard", "--app-opt", "arpguard.rate=50", "--data-dir", filepath.Join(dir, "data"),
		"--api-listen", "", "--openflow-listen", "unix:"+filepath.Join(dir, "of.sock"))
	out, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	started := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.Contains(sc.Text(), `msg="loomd started"`) {
				started <- sc.Text()
			}
		}
		close(started)
	}()
	select {
	case line := <-started:
		if !strings.Contains(line, `pipeline="0:discovery 1:overlay-classify 2:arp-guard 3:overlay-arp 4:overlay-forward 5:overlay-deliver"`) {
			t.Errorf("started: %s\nwant the guard's table right after the classifier", line)
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("loomd-arpguard did not start in 10 s")
	}
	cmd.Process.Signal(syscall.SIGTERM)
	for range started { // the rest of its log, until it exits
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("after SIGTERM: %v, want exit status 0", err)
	}
}
