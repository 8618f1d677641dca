package store

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"

	"github.com/loom-sdn/loom/store/etcdtest"
)

// writeCert writes a certificate (signed by parent, or self-signed) and
// its key as PEM files named name.pem and name-key.pem in dir.
func writeCert(t *testing.T, dir, name string, tmpl *x509.Certificate, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	os.WriteFile(filepath.Join(dir, name+".pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(filepath.Join(dir, name+"-key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	return cert, key
}

// The etcd store talks TLS with a client certificate; without one the
// cluster refuses it.
func TestEtcdTLS(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	ca, caKey := writeCert(t, dir, "ca", &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "loom test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}, nil, nil)
	writeCert(t, dir, "server", &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "etcd"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}, ca, caKey)
	writeCert(t, dir, "client", &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "loomd"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, ca, caKey)
	f := func(name string) string { return filepath.Join(dir, name) }
	c, err := etcdtest.StartTLS(1, &transport.TLSInfo{CertFile: f("server.pem"), KeyFile: f("server-key.pem"), TrustedCAFile: f("ca.pem"), ClientCertAuth: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	e, err := OpenEtcd(ctx, EtcdOptions{Endpoints: c.Endpoints, CAFile: f("ca.pem"), CertFile: f("client.pem"), KeyFile: f("client-key.pem")})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	rev := mustTxn(t, e, Txn{Ops: []Op{{Kind: "k", Key: "a", Value: []byte("1")}}})
	if kv, err := e.Get(ctx, "k", "a"); err != nil || kv.ModRevision != rev {
		t.Fatalf("get: %+v %v", kv, err)
	}
	_, err = OpenEtcd(ctx, EtcdOptions{Endpoints: c.Endpoints, CAFile: f("ca.pem"), DialTimeout: time.Second})
	if err == nil || !strings.Contains(err.Error(), c.Endpoints[0]) {
		t.Fatalf("without a client certificate: %v", err)
	}
}
