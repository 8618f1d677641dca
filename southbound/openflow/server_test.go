package openflow

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/loom-sdn/loom/southbound/openflow/emu"
	"github.com/loom-sdn/loom/southbound/openflow/wire"
)

type recorder struct{ up chan *Session }

func (r recorder) Connected(s *Session)                  { r.up <- s }
func (r recorder) Message(*Session, wire.Header, []byte) {}
func (r recorder) Disconnected(*Session, error)          {}
func newRecorder() recorder                              { return recorder{up: make(chan *Session, 4)} }
func quietLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
}
func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// pki makes a CA and a certificate signed by it for name.
func pki(t *testing.T, dir string) (ca *x509.Certificate, caKey *ecdsa.PrivateKey, issue func(name string) tls.Certificate) {
	caKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "loom test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ = x509.ParseCertificate(der)
	writePEM(t, filepath.Join(dir, "ca.pem"), "CERTIFICATE", der)
	serial := int64(2)
	issue = func(name string) tls.Certificate {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		serial++
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, _ := x509.MarshalECPrivateKey(key)
		writePEM(t, filepath.Join(dir, name+".pem"), "CERTIFICATE", der)
		writePEM(t, filepath.Join(dir, name+"-key.pem"), "EC PRIVATE KEY", kder)
		c, err := tls.LoadX509KeyPair(filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem"))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	return
}

func TestSSLListener(t *testing.T) {
	dir := t.TempDir()
	ca, _, issue := pki(t, dir)
	issue("controller")
	swCert := issue("switch")
	l, err := Listen("ssl:127.0.0.1:0", TLSFiles{
		Cert: filepath.Join(dir, "controller.pem"), Key: filepath.Join(dir, "controller-key.pem"), CA: filepath.Join(dir, "ca.pem")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rec := newRecorder()
	srv := &Server{Handler: rec, Log: quietLog()}
	go srv.Serve(ctx, l)
	defer srv.Wait()

	pool := x509.NewCertPool()
	pool.AddCert(ca)
	c, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{swCert}, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	sw := emu.Run(c, emu.Options{DatapathID: 0x42})
	defer sw.Close()
	select {
	case s := <-rec.up:
		if s.DatapathID() != 0x42 {
			t.Errorf("dpid %x", s.DatapathID())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("switch over TLS never connected")
	}

	// A client without a certificate is refused.
	c2, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err == nil {
		c2.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err = c2.Read(make([]byte, 1))
		c2.Close()
	}
	if err == nil {
		t.Error("a switch without a client certificate must be refused")
	}
}

func TestListenTargets(t *testing.T) {
	for _, bad := range []string{"", "tcp", "tcp:", "udp:1.2.3.4:5", "ssl:127.0.0.1:0"} {
		if l, err := Listen(bad, TLSFiles{}); err == nil {
			l.Close()
			t.Errorf("%q: no error", bad)
		}
	}
	// A stale unix socket file is replaced.
	path := filepath.Join(t.TempDir(), "s.sock")
	l1, err := Listen("unix:"+path, TLSFiles{})
	if err != nil {
		t.Fatal(err)
	}
	l1.(*net.UnixListener).SetUnlinkOnClose(false)
	l1.Close()
	l2, err := Listen("unix:"+path, TLSFiles{})
	if err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	l2.Close()
}

// TestRequestMatchesRepliesAndErrors checks that a multipart reply in
// many parts comes back whole, and that an error is returned to the
// request that caused it.
func TestRequestMatchesRepliesAndErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	l, err := Listen("unix:"+path, TLSFiles{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rec := newRecorder()
	srv := &Server{Handler: rec, Log: quietLog()}
	go srv.Serve(ctx, l)
	defer srv.Wait()
	var ports []wire.Port
	for i := 1; i <= 7; i++ {
		ports = append(ports, wire.Port{PortNo: uint32(i)})
	}
	sw, err := emu.Dial("unix", path, emu.Options{DatapathID: 1, Ports: ports, EntriesPerPart: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer sw.Close()
	s := <-rec.up
	if len(s.Ports) != 7 {
		t.Errorf("PORT_DESC in 4 parts gave %d ports", len(s.Ports))
	}
	parts, err := s.Request(ctx, func(dst []byte, xid uint32) []byte {
		return wire.AppendMultipartRequest(dst, xid, wire.MultipartPortDesc, nil)
	})
	if err != nil || len(parts) != 4 {
		t.Fatalf("parts %d err %v", len(parts), err)
	}
	_, err = s.Request(ctx, func(dst []byte, xid uint32) []byte {
		return wire.AppendMultipartRequest(dst, xid, wire.MultipartTableFeat, nil) // the emulator refuses it
	})
	if e, ok := err.(*wire.Error); !ok || e.Type != wire.ErrBadRequest {
		t.Errorf("want the switch's error, got %v", err)
	}
}

// A connection that claims the datapath id of a live session (one that
// answers an echo) is refused; one that claims the id of a dead session
// (silent, not answering) replaces it, as a switch reconnecting after a
// network blip must.
func TestDuplicateDatapathID(t *testing.T) {
	l := unixListener(t)
	rec := newPolicyRecorder()
	serve(t, l, Config{DuplicateProbe: 300 * time.Millisecond}, rec)
	path := l.Addr().String()
	connected := func() *Session {
		t.Helper()
		select {
		case s := <-rec.up:
			return s
		case <-time.After(5 * time.Second):
			t.Fatal("no session connected")
			return nil
		}
	}
	dial := func(opt emu.Options) *emu.Switch {
		sw, err := emu.Dial("unix", path, opt)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(sw.Close)
		return sw
	}

	live := dial(emu.Options{DatapathID: 0x77})
	first := connected()
	time.Sleep(400 * time.Millisecond) // idle longer than the probe: it must answer an echo
	intruder := dial(emu.Options{DatapathID: 0x77})
	select {
	case <-intruder.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a second connection claiming a live datapath id must be refused")
	}
	select {
	case <-live.Done():
		t.Fatal("the live session was dropped")
	case s := <-rec.up:
		t.Fatalf("the intruder was connected (%s)", s.RemoteAddr())
	case <-time.After(100 * time.Millisecond):
	}
	if first.isClosed() || rec.count(ReasonDuplicateDPID) != 1 {
		t.Errorf("first closed %v, duplicates counted %d", first.isClosed(), rec.count(ReasonDuplicateDPID))
	}

	dead := dial(emu.Options{DatapathID: 0x78, NoEcho: true})
	old := connected()
	time.Sleep(400 * time.Millisecond)
	start := time.Now()
	back := dial(emu.Options{DatapathID: 0x78})
	s := connected()
	if s == old || s.DatapathID() != 0x78 {
		t.Fatalf("got session %p of %x, the old one is %p", s, s.DatapathID(), old)
	}
	t.Logf("a dead session was replaced in %v", time.Since(start))
	select {
	case <-dead.Done():
	case <-time.After(3 * time.Second):
		t.Fatal("the dead session must be closed")
	}
	select {
	case <-back.Done():
		t.Fatal("the reconnected switch was dropped")
	case <-time.After(100 * time.Millisecond):
	}
	if n := rec.count(ReasonDuplicateDPID); n != 1 {
		t.Errorf("duplicates counted %d, want still 1", n)
	}
}

// With RequireCertDPID, a TLS switch whose certificate does not name its
// datapath id is refused after FEATURES_REPLY; one that does is served.
func TestSSLRequireDPID(t *testing.T) {
	dir := t.TempDir()
	ca, _, issue := pki(t, dir)
	issue("controller")
	good := issue("0000000000000042")
	other := issue("0000000000000043")
	l, err := Listen("ssl:127.0.0.1:0", TLSFiles{
		Cert: filepath.Join(dir, "controller.pem"), Key: filepath.Join(dir, "controller-key.pem"), CA: filepath.Join(dir, "ca.pem")})
	if err != nil {
		t.Fatal(err)
	}
	rec := newPolicyRecorder()
	serve(t, l, Config{RequireCertDPID: true}, rec)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	dial := func(cert tls.Certificate) *emu.Switch {
		c, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, ServerName: "127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		sw := emu.Run(c, emu.Options{DatapathID: 0x42})
		t.Cleanup(sw.Close)
		return sw
	}
	impostor := dial(other)
	select {
	case <-impostor.Done():
	case s := <-rec.up:
		t.Fatalf("a certificate for 0x43 was accepted for %x", s.DatapathID())
	case <-time.After(5 * time.Second):
		t.Fatal("the impostor was neither refused nor connected")
	}
	if n := rec.count(ReasonCertDPID); n != 1 {
		t.Errorf("certificate mismatches counted %d", n)
	}
	dial(good)
	select {
	case s := <-rec.up:
		if s.DatapathID() != 0x42 {
			t.Errorf("dpid %x", s.DatapathID())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the switch with the matching certificate was not connected")
	}
}

func TestCertNamesDPID(t *testing.T) {
	for _, tc := range []struct {
		cn   string
		dns  []string
		want bool
	}{
		{"0000000000000042", nil, true},
		{"00:00:00:00:00:00:00:42", nil, true},
		{"0x000000000000002a", nil, false}, // 0x2a is not 0x42
		{"0x0000000000000042", nil, true},
		{"00000000000000AB", nil, false},
		{"42", nil, false}, // 16 digits or nothing
		{"switch", []string{"0000000000000042"}, true},
		{"switch id:1234", []string{"sw.example"}, false},
		{"000000000000004g", nil, false},
	} {
		cert := &x509.Certificate{Subject: pkix.Name{CommonName: tc.cn}, DNSNames: tc.dns}
		if got := CertNamesDPID(cert, 0x42); got != tc.want {
			t.Errorf("CN %q DNS %v: %v, want %v", tc.cn, tc.dns, got, tc.want)
		}
	}
	if !CertNamesDPID(&x509.Certificate{Subject: pkix.Name{CommonName: "00000000000000ab"}}, 0xab) {
		t.Error("lower case")
	}
}
