package northbound

import (
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// ServerOptions bound what one HTTP client can hold of loomd: time per
// request, idle keep-alive connections, header bytes and connections.
// Zero values take the defaults.
type ServerOptions struct {
	// ReadTimeout bounds reading a request, headers and body.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing an ordinary response (event streams
	// keep their own per-write deadline).
	WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection idle this long.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds the request line and headers.
	MaxHeaderBytes int
	// MaxConns is the most connections served at once; more are closed
	// as soon as they are accepted (negative: no limit).
	MaxConns int
	// Log receives the rate-limited "connection refused" warning.
	Log *slog.Logger
}

// Defaults of ServerOptions.
const (
	DefaultReadTimeout    = 30 * time.Second
	DefaultWriteTimeout   = 60 * time.Second
	DefaultIdleTimeout    = 60 * time.Second
	DefaultMaxHeaderBytes = 64 << 10
	DefaultMaxConns       = 1024
)

func (o *ServerOptions) defaults() {
	if o.ReadTimeout == 0 {
		o.ReadTimeout = DefaultReadTimeout
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.MaxHeaderBytes == 0 {
		o.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if o.MaxConns == 0 {
		o.MaxConns = DefaultMaxConns
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// NewServer returns the http.Server of the API with every timeout set:
// a client that sends its headers or body slowly, or keeps an idle
// connection, is dropped instead of holding a file descriptor forever.
func NewServer(h http.Handler, o ServerOptions) *http.Server {
	o.defaults()
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: min(10*time.Second, o.ReadTimeout),
		ReadTimeout:       o.ReadTimeout,
		WriteTimeout:      o.WriteTimeout,
		IdleTimeout:       o.IdleTimeout,
		MaxHeaderBytes:    o.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(o.Log.Handler(), slog.LevelDebug),
	}
}

// LimitListener wraps l so that at most o.MaxConns accepted connections
// are open at once; one more is closed at once (it never waits in the
// accept queue holding others back), so loomd keeps descriptors for its
// switches and for /healthz. Refused counts them.
func LimitListener(l net.Listener, o ServerOptions) *ConnLimiter {
	o.defaults()
	return &ConnLimiter{Listener: l, max: int64(o.MaxConns), log: o.Log}
}

// ConnLimiter is a listener with a cap on open connections.
type ConnLimiter struct {
	net.Listener
	max     int64
	open    atomic.Int64
	refused atomic.Uint64
	log     *slog.Logger
	lastLog atomic.Int64
}

// Open is the number of connections open now.
func (l *ConnLimiter) Open() int64 { return l.open.Load() }

// Refused is the number of connections closed because of the cap.
func (l *ConnLimiter) Refused() uint64 { return l.refused.Load() }

// Accept returns the next connection under the cap.
func (l *ConnLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.max < 0 || l.open.Add(1) <= l.max {
			return &limitedConn{Conn: c, l: l}, nil
		}
		l.open.Add(-1)
		l.refused.Add(1)
		if now := time.Now().UnixNano(); now-l.lastLog.Load() > int64(10*time.Second) {
			l.lastLog.Store(now)
			l.log.Warn("api: too many connections; closing new ones", "max", l.max, "refused_total", l.refused.Load())
		}
		c.Close()
	}
}

type limitedConn struct {
	net.Conn
	l    *ConnLimiter
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.open.Add(-1) })
	return err
}
