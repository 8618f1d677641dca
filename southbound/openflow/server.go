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

// Server accepts switch connections and runs a session for each. One
// Server may serve several listeners; its limits cover them all.
type Server struct {
	Config  Config
	Handler Handler
	Log     *slog.Logger

	wg sync.WaitGroup

	mu        sync.Mutex
	conns     int
	perSource map[string]int
	sessions  map[*Session]struct{}
	byDPID    map[uint64]*Session // sessions past the handshake
	refusals  refusalLog
}

// ErrDuplicateDPID refuses a session whose datapath id belongs to a live
// session.
var ErrDuplicateDPID = errors.New("openflow: datapath id already connected")

// claim makes s the session of its datapath id. When another session has
// it, that one is probed (Config.DuplicateProbe): alive, s is refused;
// dead (a switch reconnecting after a network blip), it is closed and s
// takes its place.
func (srv *Server) claim(ctx context.Context, s *Session) error {
	if srv == nil {
		return nil
	}
	dpid := s.DatapathID()
	for range 4 {
		srv.mu.Lock()
		if srv.byDPID == nil {
			srv.byDPID = make(map[uint64]*Session)
		}
		old := srv.byDPID[dpid]
		if old == nil || old.isClosed() {
			srv.byDPID[dpid] = s
			srv.mu.Unlock()
			return nil
		}
		srv.mu.Unlock()
		if old.alive(ctx, s.cfg.DuplicateProbe) {
			return fmt.Errorf("%w: %016x is connected from %s, which answers", ErrDuplicateDPID, dpid, old.RemoteAddr())
		}
		old.log.Warn("openflow session replaced: a new connection claims its datapath id and it does not answer",
			"new_remote", s.RemoteAddr(), "probe", s.cfg.DuplicateProbe)
		old.Close(fmt.Errorf("replaced by a new connection from %s: no answer within %v", s.RemoteAddr(), s.cfg.DuplicateProbe))
	}
	return fmt.Errorf("%w: %016x: contended", ErrDuplicateDPID, dpid)
}

// refusalLog rate-limits the log of refused connections: the first, then
// at most one line per interval with the count of those not logged.
type refusalLog struct {
	last       time.Time
	suppressed int
}

const refusalLogInterval = 10 * time.Second

// source is the key a connection counts against MaxConnsPerSource: the
// remote IP address, or the network for addresses without one (every
// unix socket client is the same source).
func source(a net.Addr) string {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.IP.String()
	case *net.UDPAddr:
		return a.IP.String()
	}
	if host, _, err := net.SplitHostPort(a.String()); err == nil {
		return host
	}
	return a.Network()
}

// admit counts a new connection, or reports why it is over a limit.
func (srv *Server) admit(src string, cfg *Config) string {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.perSource == nil {
		srv.perSource = make(map[string]int)
		srv.sessions = make(map[*Session]struct{})
	}
	switch {
	case cfg.MaxConns > 0 && srv.conns >= cfg.MaxConns:
		return ReasonMaxConns
	case cfg.MaxConnsPerSource > 0 && srv.perSource[src] >= cfg.MaxConnsPerSource:
		return ReasonMaxConnsPerSource
	}
	srv.conns++
	srv.perSource[src]++
	return ""
}

func (srv *Server) release(src string, s *Session) {
	srv.mu.Lock()
	srv.conns--
	if srv.perSource[src]--; srv.perSource[src] <= 0 {
		delete(srv.perSource, src)
	}
	delete(srv.sessions, s)
	if srv.byDPID[s.DatapathID()] == s {
		delete(srv.byDPID, s.DatapathID())
	}
	srv.mu.Unlock()
}

// refuse closes a connection over a limit at once, counts it and logs it
// (rate-limited: a flood of connections must not flood the log).
func (srv *Server) refuse(c net.Conn, reason string, cfg *Config) {
	c.Close()
	if o, ok := srv.Handler.(PolicyObserver); ok {
		o.SessionRefused(reason)
	}
	srv.mu.Lock()
	now := time.Now()
	if now.Sub(srv.refusals.last) < refusalLogInterval {
		srv.refusals.suppressed++
		srv.mu.Unlock()
		return
	}
	suppressed := srv.refusals.suppressed
	srv.refusals = refusalLog{last: now}
	conns := srv.conns
	srv.mu.Unlock()
	srv.Log.Warn("openflow connection refused: over the limit", "reason", reason, "remote", c.RemoteAddr().String(),
		"connections", conns, "max_conns", cfg.MaxConns, "max_conns_per_source", cfg.MaxConnsPerSource,
		"refused_since_last_report", suppressed)
}

// Sessions returns the sessions running now, handshake complete or not.
func (srv *Server) Sessions() []*Session {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	out := make([]*Session, 0, len(srv.sessions))
	for s := range srv.sessions {
		out = append(out, s)
	}
	return out
}

// Serve accepts on l until ctx ends, then closes l. Sessions end with ctx.
func (srv *Server) Serve(ctx context.Context, l net.Listener) error {
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	cfg := srv.Config
	cfg.defaults()
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
		src := source(c.RemoteAddr())
		if reason := srv.admit(src, &cfg); reason != "" {
			srv.refuse(c, reason, &cfg)
			continue
		}
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetNoDelay(true)
		}
		s := newSession(c, srv.Config, srv.Log.With("remote", c.RemoteAddr().String()), srv.Handler)
		s.srv = srv
		srv.mu.Lock()
		srv.sessions[s] = struct{}{}
		srv.mu.Unlock()
		srv.wg.Add(1)
		go func() {
			defer srv.wg.Done()
			defer srv.release(src, s)
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
