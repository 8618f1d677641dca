package openflow

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"
)

// TLSFiles names the PEM files of an ssl: listener: the controller's
// certificate and key, and the CA that signed the switches' certificates.
type TLSFiles struct {
	Cert, Key, CA string
}

// Listen opens a listener for an OVS-style target: "tcp:HOST:PORT",
// "unix:PATH" or "ssl:HOST:PORT". A stale unix socket file is replaced.
func Listen(target string, tf TLSFiles) (net.Listener, error) {
	kind, addr, ok := strings.Cut(target, ":")
	if !ok || addr == "" {
		return nil, fmt.Errorf("openflow listen target %q: want tcp:HOST:PORT, unix:PATH or ssl:HOST:PORT", target)
	}
	switch kind {
	case "tcp":
		return net.Listen("tcp", addr)
	case "unix":
		if fi, err := os.Lstat(addr); err == nil && fi.Mode()&os.ModeSocket != 0 {
			os.Remove(addr)
		}
		return net.Listen("unix", addr)
	case "ssl":
		cfg, err := tlsConfig(tf)
		if err != nil {
			return nil, fmt.Errorf("openflow listen target %q: %w", target, err)
		}
		return tls.Listen("tcp", addr, cfg)
	}
	return nil, fmt.Errorf("openflow listen target %q: unknown kind %q (want tcp, unix or ssl)", target, kind)
}

func tlsConfig(tf TLSFiles) (*tls.Config, error) {
	if tf.Cert == "" || tf.Key == "" || tf.CA == "" {
		return nil, errors.New("ssl needs a certificate, a private key and a CA certificate")
	}
	cert, err := tls.LoadX509KeyPair(tf.Cert, tf.Key)
	if err != nil {
		return nil, err
	}
	pem, err := os.ReadFile(tf.CA)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no certificate in %s", tf.CA)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert, // as OVS does: both sides authenticate
		MinVersion:   tls.VersionTLS12,
	}, nil
}

// Server accepts switch connections and runs a session for each.
type Server struct {
	Config  Config
	Handler Handler
	Log     *slog.Logger

	wg sync.WaitGroup
}

// Serve accepts on l until ctx ends, then closes l. Sessions end with ctx.
func (srv *Server) Serve(ctx context.Context, l net.Listener) error {
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	backoff := 5 * time.Millisecond
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) || isTemporary(err) {
				srv.Log.Warn("openflow accept failed; retrying", "listener", l.Addr().String(), "error", err, "backoff", backoff)
				time.Sleep(backoff)
				backoff = min(2*backoff, time.Second)
				continue
			}
			return fmt.Errorf("openflow accept on %s: %w", l.Addr(), err)
		}
		backoff = 5 * time.Millisecond
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetNoDelay(true)
		}
		s := newSession(c, srv.Config, srv.Log.With("remote", c.RemoteAddr().String()), srv.Handler)
		srv.wg.Add(1)
		go func() {
			defer srv.wg.Done()
			s.serve(ctx)
		}()
	}
}

// isTemporary reports accept errors worth retrying, such as running out
// of file descriptors.
func isTemporary(err error) bool {
	s := err.Error()
	return strings.Contains(s, "too many open files") || strings.Contains(s, "connection reset") ||
		strings.Contains(s, "connection aborted")
}

// Wait waits for every session to end.
func (srv *Server) Wait() { srv.wg.Wait() }
