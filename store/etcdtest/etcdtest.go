// Package etcdtest runs an etcd cluster inside the test process
// (go.etcd.io/etcd/server/v3/embed): three members on free localhost ports
// with their data in a temporary directory, tuned to start fast and log
// nothing. A package's tests share one cluster: Shared starts it on first
// use and Main stops it and removes its data after the tests.
package etcdtest

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// Cluster is a running in-process etcd cluster.
type Cluster struct {
	Endpoints []string
	members   []*embed.Etcd
	dir       string
	closing   sync.WaitGroup
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Start starts a cluster of n members, ready to serve.
func Start(n int) (*Cluster, error) { return StartTLS(n, nil) }

// StartTLS starts a cluster of n members whose clients must use TLS:
// https client URLs served with tls's certificate, and client
// certificates required when tls.ClientCertAuth (nil: plain http).
func StartTLS(n int, tls *transport.TLSInfo) (*Cluster, error) {
	dir, err := os.MkdirTemp("", "loom-etcd-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir}
	type urls struct{ peer, client url.URL }
	us := make([]urls, n)
	var initial []string
	for i := range us {
		pp, err := freePort()
		if err != nil {
			return nil, err
		}
		cp, err := freePort()
		if err != nil {
			return nil, err
		}
		scheme := "http"
		if tls != nil {
			scheme = "https"
		}
		us[i] = urls{url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", pp)}, url.URL{Scheme: scheme, Host: fmt.Sprintf("127.0.0.1:%d", cp)}}
		initial = append(initial, fmt.Sprintf("m%d=%s", i, us[i].peer.String()))
		c.Endpoints = append(c.Endpoints, us[i].client.String())
	}
	for i := range us {
		cfg := embed.NewConfig()
		cfg.Name = fmt.Sprintf("m%d", i)
		cfg.Dir = filepath.Join(dir, cfg.Name)
		cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{us[i].peer}, []url.URL{us[i].peer}
		cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{us[i].client}, []url.URL{us[i].client}
		cfg.InitialCluster = strings.Join(initial, ",")
		cfg.InitialClusterToken = "loom-test"
		cfg.TickMs, cfg.ElectionMs = 20, 400 // fast, yet no elections when tests load the machine
		cfg.SnapshotCount = 1000
		cfg.UnsafeNoFsync = os.Getenv("LOOM_ETCD_FSYNC") == ""
		cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
		cfg.LogLevel = "error"
		if tls != nil {
			cfg.ClientTLSInfo = *tls
		}
		e, err := embed.StartEtcd(cfg)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.members = append(c.members, e)
	}
	for _, m := range c.members {
		select {
		case <-m.Server.ReadyNotify():
		case <-time.After(30 * time.Second):
			c.Close()
			return nil, fmt.Errorf("etcd member %s not ready", m.Config().Name)
		}
	}
	return c, nil
}

// Stop stops member i (as a crash would, its data left in place).
func (c *Cluster) Stop(i int) {
	if m := c.members[i]; m != nil {
		c.members[i] = nil
		m.Server.HardStop() // raft and the server at once
		c.closing.Add(1)
		go func() { // Close drains client streams for seconds
			defer c.closing.Done()
			m.Close()
		}()
	}
}

// Close stops the members and removes their data.
func (c *Cluster) Close() {
	for i := range c.members {
		c.Stop(i)
	}
	c.closing.Wait()
	os.RemoveAll(c.dir)
}

var (
	once    sync.Once
	shared  *Cluster
	starErr error
)

// Shared returns the endpoints of the package's shared three-member
// cluster, starting it on first use.
func Shared(tb testing.TB) []string {
	tb.Helper()
	once.Do(func() { shared, starErr = Start(3) })
	if starErr != nil {
		tb.Fatalf("embedded etcd: %v", starErr)
	}
	return shared.Endpoints
}

// Main runs the tests (call it from TestMain) and stops the shared
// cluster if they started it.
func Main(m *testing.M) {
	code := m.Run()
	if shared != nil {
		shared.Close()
	}
	os.Exit(code)
}
