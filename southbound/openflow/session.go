// Package openflow runs OpenFlow 1.3 sessions with switches: listening on
// TCP, unix sockets and TLS, the handshake, keepalive, one reader and one
// batching writer per switch, and matching of replies and errors to the
// requests that caused them. It knows nothing of flows or apps; the
// controller package drives it through Handler.
package openflow

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loom-sdn/loom/southbound/openflow/wire"
)

// Config tunes sessions. Zero values take the defaults.
type Config struct {
	// EchoInterval is how long a session may be silent before Loom sends
	// an ECHO_REQUEST; after EchoTimeout of silence it is dropped.
	EchoInterval time.Duration
	EchoTimeout  time.Duration
	// HandshakeTimeout bounds HELLO through PORT_DESC.
	HandshakeTimeout time.Duration
	// WriteTimeout bounds one write; a switch that does not drain its
	// socket for that long is dropped.
	WriteTimeout time.Duration
	// MaxQueue is the most bytes queued for one switch before senders
	// wait for the writer.
	MaxQueue int
	// MaxConns bounds the OpenFlow connections of a Server (default
	// 4096), and MaxConnsPerSource those from one remote IP address
	// (default 64; every unix socket client is one source). A connection
	// over either limit is closed at once. Negative: no limit.
	MaxConns          int
	MaxConnsPerSource int
	// DuplicateProbe bounds the check of a session whose datapath id a new
	// connection claims (default 1.5 s): the old session is alive if it
	// answers an echo within it; then the new connection is refused, else
	// the old one is closed and the new one takes its place.
	DuplicateProbe time.Duration
	// RequireCertDPID makes TLS sessions prove their datapath id: the
	// switch's certificate must name it (subject CN or a DNS SAN: 16 hex
	// digits, with or without colons or 0x, any case), else the session
	// is refused after FEATURES_REPLY.
	RequireCertDPID bool
}

// Echo replies are not queued behind a peer that does not read: a session
// holds at most one unsent echo reply, and none while more than
// echoQueueLimit bytes wait for the socket.
const echoQueueLimit = 64 << 10

// Read buffers: small until the handshake is complete, so that a
// connection that never completes it costs little.
const (
	handshakeReadBuffer = 1 << 10
	sessionReadBuffer   = 16 << 10
)

func (c *Config) defaults() {
	if c.EchoInterval == 0 {
		c.EchoInterval = 5 * time.Second
	}
	if c.EchoTimeout == 0 {
		c.EchoTimeout = 3 * c.EchoInterval
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = 10 * time.Second
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.MaxQueue == 0 {
		c.MaxQueue = 8 << 20
	}
	if c.MaxConns == 0 {
		c.MaxConns = 4096
	}
	if c.MaxConnsPerSource == 0 {
		c.MaxConnsPerSource = 64
	}
	if c.DuplicateProbe == 0 {
		c.DuplicateProbe = 1500 * time.Millisecond
	}
}

// Handler receives what sessions report. Connected runs once the
// handshake is complete; Message runs on the session's reader goroutine for
// every asynchronous message (PACKET_IN, PORT_STATUS, FLOW_REMOVED,
// unmatched ERROR and BARRIER_REPLY, ...), in the order the switch sent
// them, one call at a time; msg is valid only during the call (it is in
// the reader's buffer): copy what must outlive it. Message should not
// block for long: while it runs, the reader reads nothing; within
// handoffAfter another goroutine takes over reading (and delivering
// replies to Request), and the next Message may then start before the
// slow one returns. Disconnected runs once, last, after every Message has
// returned or been handed off.
type Handler interface {
	Connected(s *Session)
	Message(s *Session, h wire.Header, msg []byte)
	Disconnected(s *Session, err error)
}

// ReadIdler is an optional interface of a Handler: ReadIdle runs on the
// reader, like Message, whenever it has passed on every complete message
// it has read and is about to wait for the socket: the moment to send what
// handling a burst of messages produced, in one write. It runs once more
// on a goroutine whose call was handed off, when that call returns (then
// possibly while the next reader's calls run).
type ReadIdler interface {
	ReadIdle(s *Session)
}

// handoffAfter is the longest a Handler call may hold the reader before
// another goroutine takes over reading. It is not shorter because the
// watchdog that enforces it keeps a timer due within watchPeriod pending
// for as long as messages come in, and on a virtual machine a runtime
// timer due that soon slows every wake-up of the reader: with a 1 ms
// period loomd answered a lone packet-in some 7 µs later (p50, loombench
// latency, about 20 µs instead of the 12-13 µs it takes with no watchdog
// at all); with 10 ms, about as fast as without.
const handoffAfter = 20 * time.Millisecond

// PolicyObserver is an optional interface of a Handler: the Server tells it
// of every connection it refuses or closes by policy (reason is one of the
// Reason* labels) and of every echo reply it drops because the peer does
// not read, for metrics. Calls must not block.
type PolicyObserver interface {
	SessionRefused(reason string)
	EchoReplyDropped()
}

// Reasons a connection is refused or closed by policy.
const (
	ReasonMaxConns          = "max_conns"
	ReasonMaxConnsPerSource = "max_conns_per_source"
	ReasonDuplicateDPID     = "duplicate_dpid"
	ReasonCertDPID          = "cert_dpid_mismatch"
)

// ProtocolError is a violation of the protocol by the switch. The session
// that sees one is closed.
type ProtocolError struct {
	Err error
	Msg []byte // the offending bytes, at most 256
}

func (e *ProtocolError) Error() string {
	return fmt.Sprintf("%v (message %s)", e.Err, hex.EncodeToString(e.Msg))
}

func (e *ProtocolError) Unwrap() error { return e.Err }

func protoErr(err error, msg []byte) error {
	if len(msg) > 256 {
		msg = msg[:256]
	}
	return &ProtocolError{Err: err, Msg: append([]byte(nil), msg...)}
}

// Session is one switch connection.
type Session struct {
	conn    net.Conn
	cfg     Config
	log     *slog.Logger
	handler Handler
	srv     *Server // nil: no duplicate check

	// Value is the handler's own state for the session, set in Connected.
	Value any

	// Set by the handshake, read-only afterwards.
	Features wire.Features
	Ports    []wire.Port
	Desc     wire.Desc

	xid      atomic.Uint32
	activity atomic.Bool

	wmu     sync.Mutex
	wcond   *sync.Cond
	pending []byte
	spare   []byte
	raw     *rawWriter // nil: every write goes through the writer goroutine (TLS)
	busy    bool       // a goroutine (the writer or a sender) is writing to the socket
	writing int        // bytes being written now
	echoOut bool       // an echo reply is queued or being written
	wsignal chan struct{}

	rmu     sync.Mutex
	waiters map[uint32]*waiter

	// The reader: whichever goroutine holds turn (see enter). A call
	// that outlasts handoffAfter lets watchdog start the next generation
	// on another goroutine.
	br       *bufio.Reader
	src      io.Reader // what br reads
	idler    ReadIdler // the handler's, or nil
	turn     atomic.Uint64
	watchdog *time.Timer
	armed    atomic.Bool   // watchdog will fire
	watched  atomic.Uint64 // the turn watchdog saw when it last fired
	readDone chan struct{} // closed when the last reader is done
	handoffs atomic.Int64

	closeOnce sync.Once
	closed    chan struct{}
	closeErr  error
}

// waiter collects the reply (all parts of a multipart reply) or the error
// for one request.
type waiter struct {
	parts [][]byte
	err   error
	done  chan struct{}
}

func newSession(conn net.Conn, cfg Config, log *slog.Logger, h Handler) *Session {
	cfg.defaults()
	s := &Session{
		conn: conn, cfg: cfg, log: log, handler: h,
		wsignal:  make(chan struct{}, 1),
		waiters:  make(map[uint32]*waiter),
		closed:   make(chan struct{}),
		readDone: make(chan struct{}),
	}
	s.idler, _ = h.(ReadIdler)
	s.wcond = sync.NewCond(&s.wmu)
	s.raw = newRawWriter(conn)
	return s
}

// DatapathID is the switch's datapath id.
func (s *Session) DatapathID() uint64 { return s.Features.DatapathID }

// RemoteAddr is the switch's address.
func (s *Session) RemoteAddr() string { return s.conn.RemoteAddr().String() }

// Logger returns the session's logger (tagged with the datapath id).
func (s *Session) Logger() *slog.Logger { return s.log }

// NextXid allocates a transaction id.
func (s *Session) NextXid() uint32 { return s.xid.Add(1) }

// Done is closed when the session ends.
func (s *Session) Done() <-chan struct{} { return s.closed }

// Err is why the session ended (valid after Done).
func (s *Session) Err() error { <-s.closed; return s.closeErr }

// ErrClosed is returned for sends on a closed session.
var ErrClosed = errors.New("openflow: session closed")

// Write queues encoded messages by calling fn with the pending buffer; fn
// appends to it and returns it. When nothing is being written, the caller
// writes what is queued itself, as much as the socket takes without
// waiting (one syscall, no goroutine woken); the writer goroutine sends
// the rest, and everything queued while a write is in progress, in one
// write. Write waits while more than MaxQueue bytes are queued, so a slow
// switch slows only its own senders.
func (s *Session) Write(fn func(dst []byte) []byte) error {
	s.wmu.Lock()
	for len(s.pending) > s.cfg.MaxQueue && !s.isClosed() {
		s.wcond.Wait()
	}
	if s.isClosed() {
		s.wmu.Unlock()
		return ErrClosed
	}
	s.pending = fn(s.pending)
	s.kickLocked()
	return nil
}

// kickLocked gets what is pending written; it is called with wmu held and
// unlocks it. If a write is in progress, its goroutine picks the bytes up
// when it is done. Otherwise, with a socket that can be written without
// blocking, the caller writes them now, handing what the socket does not
// take to the writer goroutine; else the writer goroutine is woken.
func (s *Session) kickLocked() {
	if s.busy || len(s.pending) == 0 {
		s.wmu.Unlock()
		return
	}
	if s.raw == nil {
		s.wmu.Unlock()
		s.wake()
		return
	}
	buf, echo := s.takeLocked()
	s.wmu.Unlock()
	n, err := s.raw.write(buf)
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		s.Close(fmt.Errorf("write: %w", err))
		n = len(buf)
	}
	s.wmu.Lock()
	more := s.doneLocked(buf, n, echo)
	s.wmu.Unlock()
	if more {
		s.wake()
	}
}

// takeLocked takes everything pending for a write (wmu held): the caller
// is the one goroutine writing until doneLocked.
func (s *Session) takeLocked() (buf []byte, echo bool) {
	buf = s.pending
	s.pending = s.spare[:0]
	s.spare = nil
	s.busy = true
	s.writing = len(buf)
	echo = s.echoOut // no other echo reply is queued until this one is written
	s.wcond.Broadcast()
	return buf, echo
}

// doneLocked ends a write of buf of which n bytes went out (wmu held):
// the rest goes back to the head of the queue. It reports whether bytes
// wait for the writer goroutine.
func (s *Session) doneLocked(buf []byte, n int, echo bool) bool {
	if n < len(buf) {
		k := copy(buf, buf[n:])
		buf = append(buf[:k], s.pending...)
		s.spare = s.pending[:0]
		s.pending = buf
	} else {
		if cap(buf) > 1<<20 {
			buf = nil // do not keep a huge reconcile buffer around
		}
		s.spare = buf[:0]
		if echo {
			s.echoOut = false
		}
	}
	s.busy = false
	s.writing = 0
	s.wcond.Broadcast()
	return len(s.pending) > 0
}

// wake tells the writer goroutine that bytes wait.
func (s *Session) wake() {
	select {
	case s.wsignal <- struct{}{}:
	default:
	}
}

// sendEchoReply queues the reply to an echo request, unless the peer is
// not reading: an echo reply already waits, or the queue holds more than
// echoQueueLimit bytes. A peer that sends echo requests and never reads
// thus costs at most one reply.
func (s *Session) sendEchoReply(xid uint32, data []byte) error {
	s.wmu.Lock()
	if s.isClosed() {
		s.wmu.Unlock()
		return ErrClosed
	}
	if s.echoOut || len(s.pending)+s.writing > echoQueueLimit {
		s.wmu.Unlock()
		if o, ok := s.handler.(PolicyObserver); ok {
			o.EchoReplyDropped()
		}
		return nil
	}
	s.pending = wire.AppendEcho(s.pending, wire.TypeEchoReply, xid, data)
	s.echoOut = true
	s.kickLocked()
	return nil
}

// QueuedBytes is what waits to be written to the switch: queued, and
// being written.
func (s *Session) QueuedBytes() int {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return len(s.pending) + s.writing
}

// Send queues one encoded message.
func (s *Session) Send(msg []byte) error {
	return s.Write(func(dst []byte) []byte { return append(dst, msg...) })
}

// SendBuffer queues the encoded messages in buf as Send does, but hands
// buf itself to the session when nothing else waits (no copy), and
// returns an empty buffer for the caller's next messages: buf's own
// (when it was copied) or one the session is done with. The caller must
// not use buf afterwards.
func (s *Session) SendBuffer(buf []byte) ([]byte, error) {
	s.wmu.Lock()
	for len(s.pending) > s.cfg.MaxQueue && !s.isClosed() {
		s.wcond.Wait()
	}
	if s.isClosed() {
		s.wmu.Unlock()
		return buf[:0], ErrClosed
	}
	var next []byte
	if len(s.pending) == 0 {
		next, s.pending = s.pending[:0], buf
	} else {
		next, s.pending = buf[:0], append(s.pending, buf...)
	}
	s.kickLocked()
	return next, nil
}

func (s *Session) isClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}

// Close ends the session with err (nil for a normal close).
func (s *Session) Close(err error) {
	s.closeOnce.Do(func() {
		s.closeErr = err
		close(s.closed)
		s.conn.Close()
		s.wmu.Lock()
		s.wcond.Broadcast()
		s.wmu.Unlock()
		s.rmu.Lock()
		for xid, w := range s.waiters {
			w.err = ErrClosed
			close(w.done)
			delete(s.waiters, xid)
		}
		s.rmu.Unlock()
	})
}

// writer sends what senders could not write without blocking, and what
// they queued meanwhile, swapping buffers so senders never wait for the
// socket.
func (s *Session) writer() {
	for {
		select {
		case <-s.closed:
			return
		case <-s.wsignal:
		}
		for {
			s.wmu.Lock()
			if s.busy || len(s.pending) == 0 {
				// A sender writing now hands what is left to us when done.
				s.wmu.Unlock()
				break
			}
			buf, echo := s.takeLocked()
			s.wmu.Unlock()
			if err := s.writeAll(buf); err != nil {
				s.Close(fmt.Errorf("write: %w", err))
				s.wmu.Lock()
				s.busy, s.writing = false, 0
				s.wmu.Unlock()
				return
			}
			s.wmu.Lock()
			s.doneLocked(buf, len(buf), echo)
			s.wmu.Unlock()
		}
	}
}

// writeAll writes buf, waiting for the socket at most WriteTimeout. The
// deadline is cleared afterwards: a sender's write that must not block
// finds none.
func (s *Session) writeAll(buf []byte) error {
	if s.raw != nil {
		n, err := s.raw.write(buf)
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
		if buf = buf[n:]; len(buf) == 0 {
			return nil
		}
	}
	s.conn.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	_, err := s.conn.Write(buf)
	s.conn.SetWriteDeadline(time.Time{})
	return err
}

// Request sends a request built by build (which appends one message with
// the given xid) and waits for its reply: the whole reply for multipart
// requests (every part, in order), the BARRIER_REPLY, ROLE_REPLY or bundle
// reply; or the OFPT_ERROR answering it, returned as *wire.Error.
func (s *Session) Request(ctx context.Context, build func(dst []byte, xid uint32) []byte) ([][]byte, error) {
	xid := s.NextXid()
	w := &waiter{done: make(chan struct{})}
	s.rmu.Lock()
	s.waiters[xid] = w
	s.rmu.Unlock()
	if err := s.Write(func(dst []byte) []byte { return build(dst, xid) }); err != nil {
		s.forget(xid)
		return nil, err
	}
	select {
	case <-w.done:
		return w.parts, w.err
	case <-ctx.Done():
		s.forget(xid)
		return nil, ctx.Err()
	case <-s.closed:
		return nil, ErrClosed
	}
}

func (s *Session) forget(xid uint32) {
	s.rmu.Lock()
	delete(s.waiters, xid)
	s.rmu.Unlock()
}

// deliver routes a reply or error to its waiter. It reports whether the
// message was consumed.
func (s *Session) deliver(h wire.Header, msg []byte) (bool, error) {
	s.rmu.Lock()
	w := s.waiters[h.Xid]
	if w == nil {
		s.rmu.Unlock()
		return false, nil
	}
	finished := true
	switch h.Type {
	case wire.TypeError:
		e, err := wire.DecodeError(msg)
		if err != nil {
			s.rmu.Unlock()
			return true, err
		}
		w.err = e
	case wire.TypeMultipartReply:
		mp, err := wire.DecodeMultipartReply(msg)
		if err != nil {
			s.rmu.Unlock()
			return true, err
		}
		w.parts = append(w.parts, bytes.Clone(msg)) // msg is the reader's buffer
		finished = !mp.More()
	default:
		w.parts = append(w.parts, bytes.Clone(msg))
	}
	if finished {
		delete(s.waiters, h.Xid)
		close(w.done)
	}
	s.rmu.Unlock()
	return true, nil
}

// serve runs the session: handshake, then the read loop. It returns when
// the session ends.
func (s *Session) serve(ctx context.Context) {
	go s.writer()
	stop := context.AfterFunc(ctx, func() { s.Close(nil) })
	defer stop()
	br := bufio.NewReaderSize(s.conn, handshakeReadBuffer)
	err := s.handshake(ctx, br)
	if err != nil {
		s.log.Warn("openflow handshake failed; closing", "error", err)
		s.Close(err)
		return
	}
	// A larger buffer from now on (fewer reads under a packet-in load),
	// starting with what the small one holds.
	rest, _ := br.Peek(br.Buffered())
	s.src = io.MultiReader(bytes.NewReader(bytes.Clone(rest)), s.conn)
	br = bufio.NewReaderSize(s.src, sessionReadBuffer)
	s.log = s.log.With("dpid", fmt.Sprintf("%016x", s.Features.DatapathID))
	if err := s.srv.claim(ctx, s); err != nil {
		s.log.Warn("openflow session refused", "reason", ReasonDuplicateDPID, "error", err)
		if o, ok := s.handler.(PolicyObserver); ok {
			o.SessionRefused(ReasonDuplicateDPID)
		}
		s.Close(err)
		return
	}
	go s.keepalive()
	s.handler.Connected(s)
	s.br = br
	s.watchdog = time.AfterFunc(time.Hour, s.watch)
	s.watchdog.Stop()
	if !s.read(0) {
		<-s.readDone // another goroutine reads; the session lasts until it is done
	}
}

// read is the reader of generation gen: it reads and dispatches until the
// session ends, then closes it and tells the handler, and reports true; or
// it reports false as soon as a Handler call it made was handed off to the
// next generation (takeOver).
func (s *Session) read(gen uint64) bool {
	err := s.readLoop(gen)
	if err == errHandedOff {
		if s.idler != nil {
			s.idler.ReadIdle(s) // what the slow call produced
		}
		return false
	}
	// A call that panicked out of readLoop still holds the turn: take it
	// back, unless the watchdog has already given it to the next reader,
	// which then finds the connection closed and ends the session.
	if t := s.turn.Load(); t>>genShift != gen || !s.turn.CompareAndSwap(t, t&^1) {
		s.Close(err)
		return false
	}
	s.Close(err)
	s.watchdog.Stop()
	s.handler.Disconnected(s, s.closeErr)
	close(s.readDone)
	return true
}

// errHandedOff ends a reader whose Handler call outlasted handoffAfter.
var errHandedOff = errors.New("openflow: reader handed off")

// turn is gen<<genShift | seq<<1 | busy: the reader's generation, the
// number of its Handler calls (wrapping) and whether it is in one now. A
// call is thus told from the next one, which the watchdog needs.
const (
	genShift = 40
	seqMask  = 1<<genShift - 1
)

// watchPeriod is how often the watchdog looks at the reader while it is
// busy: a call it sees twice, one period apart, has held the reader for at
// least watchPeriod and at most handoffAfter, and is handed off.
const watchPeriod = handoffAfter / 2

// enter and leave bracket a Handler call on the reader of generation gen:
// enter returns the call's turn, which leave takes; leave reports false
// when the reader was handed off meanwhile. Neither touches the timer
// while it is armed: the watchdog stays armed as long as calls go on, and
// disarms itself at a firing that finds the reader between calls, so a
// burst of messages (or a steady flow of them) costs no timer operation
// per call.
func (s *Session) enter(gen uint64) uint64 {
	seq := (s.turn.Load()>>1 + 1) & (seqMask >> 1)
	t := gen<<genShift | seq<<1 | 1
	s.turn.Store(t)
	if !s.armed.Load() && s.armed.CompareAndSwap(false, true) {
		s.watchdog.Reset(watchPeriod)
	}
	return t
}

func (s *Session) leave(t uint64) bool {
	return s.turn.CompareAndSwap(t, t&^1)
}

// watch is the watchdog, firing every watchPeriod while the reader is in
// Handler calls: a call it finds again, as it was one period ago, has held
// the reader too long and is handed off (takeOver). Finding the reader
// between calls, it disarms; the reader's next call arms it again (enter:
// the two stores and loads of turn and armed cross, so that one of them
// arms it).
func (s *Session) watch() {
	t := s.turn.Load()
	if t&1 != 0 {
		if t == s.watched.Load() && s.turn.CompareAndSwap(t, (t>>genShift+1)<<genShift) {
			s.takeOver(t>>genShift + 1)
			return
		}
		s.watched.Store(t)
		s.watchdog.Reset(watchPeriod)
		return
	}
	s.armed.Store(false)
	if s.turn.Load()&1 != 0 && s.armed.CompareAndSwap(false, true) {
		s.watchdog.Reset(watchPeriod)
	}
}

// takeOver runs when a Handler call has held the reader too long (watch):
// this goroutine becomes the reader of generation gen, so that replies,
// echoes and the queueing of messages go on while the call runs.
func (s *Session) takeOver(gen uint64) {
	s.armed.Store(false) // this goroutine was the watchdog's firing: its next call arms it again
	s.handoffs.Add(1)
	s.log.Debug("a handler call holds the reader; another goroutine reads meanwhile", "after", handoffAfter)
	// The call may still use its message, in the old reader's buffer:
	// read on from a new one.
	rest, _ := s.br.Peek(s.br.Buffered())
	s.src = io.MultiReader(bytes.NewReader(bytes.Clone(rest)), s.src)
	s.br = bufio.NewReaderSize(s.src, sessionReadBuffer)
	s.read(gen)
}

// Handoffs is how many times a Handler call held the reader long enough
// for another goroutine to take over reading.
func (s *Session) Handoffs() int64 { return s.handoffs.Load() }

// readLoop reads, checks and dispatches messages in order. A decoding
// panic ends only this session.
func (s *Session) readLoop(gen uint64) (err error) {
	var msg []byte
	defer func() {
		if r := recover(); r != nil {
			err = protoErr(fmt.Errorf("panic while handling message: %v", r), msg)
		}
	}()
	br := s.br
	for {
		var h wire.Header
		h, msg, err = nextMessage(br)
		if err != nil {
			if errors.Is(err, wire.ErrBadLength) || errors.Is(err, wire.ErrBadVersion) {
				return protoErr(err, msg)
			}
			if s.isClosed() {
				return s.closeErr
			}
			return err
		}
		if !s.activity.Load() { // a store (a locked instruction) only once per keepalive period
			s.activity.Store(true)
		}
		if err := s.dispatch(gen, h, msg); err != nil {
			if err == errHandedOff {
				return err
			}
			return protoErr(err, msg)
		}
		if s.idler != nil && !messageBuffered(br) {
			t := s.enter(gen)
			s.idler.ReadIdle(s)
			if !s.leave(t) {
				return errHandedOff
			}
		}
	}
}

// nextMessage reads the next message. One that fits br's buffer is not
// copied: msg is valid until the next read from br.
func nextMessage(br *bufio.Reader) (wire.Header, []byte, error) {
	// The common case, a whole well-formed message already buffered: one
	// Peek of everything buffered, no read.
	if n := br.Buffered(); n >= wire.HeaderLen {
		b, _ := br.Peek(n)
		h, _ := wire.ParseHeader(b)
		if l := int(h.Length); l <= n && wire.CheckHeader(h) == nil {
			br.Discard(l)
			return h, b[:l:l], nil
		}
	}
	b, err := br.Peek(wire.HeaderLen)
	if err != nil {
		if err == io.EOF && len(b) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return wire.Header{}, nil, err
	}
	h, _ := wire.ParseHeader(b)
	n := int(h.Length)
	if wire.CheckHeader(h) != nil || n > br.Size() {
		return wire.ReadMessage(br) // the error, or a message larger than the buffer
	}
	msg, err := br.Peek(n)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return h, msg, err
	}
	br.Discard(n) // msg stays in the buffer until the next read
	return h, msg, nil
}

// messageBuffered reports whether br holds a whole message: reading it
// will not wait for the socket.
func messageBuffered(br *bufio.Reader) bool {
	n := br.Buffered()
	if n < wire.HeaderLen {
		return false
	}
	b, _ := br.Peek(wire.HeaderLen)
	return n >= int(b[2])<<8|int(b[3])
}

func (s *Session) dispatch(gen uint64, h wire.Header, msg []byte) error {
	switch h.Type {
	case wire.TypeEchoRequest:
		return s.sendEchoReply(h.Xid, msg[wire.HeaderLen:])
	case wire.TypeEchoReply:
		_, err := s.deliver(h, msg) // a liveness probe's, or a keepalive's
		return err
	case wire.TypeHello:
		_, err := wire.DecodeHello(msg)
		return err
	case wire.TypeError, wire.TypeMultipartReply, wire.TypeBarrierReply, wire.TypeRoleReply,
		wire.TypeExperimenter, wire.TypeGetConfigReply, wire.TypeGetAsyncReply:
		consumed, err := s.deliver(h, msg)
		if err != nil || consumed {
			return err
		}
	}
	t := s.enter(gen)
	s.handler.Message(s, h, msg)
	if !s.leave(t) {
		return errHandedOff
	}
	return nil
}

// keepalive sends ECHO_REQUEST after EchoInterval of silence and drops a
// switch silent for EchoTimeout.
func (s *Session) keepalive() {
	t := time.NewTicker(s.cfg.EchoInterval)
	defer t.Stop()
	var silent time.Duration
	for {
		select {
		case <-s.closed:
			return
		case <-t.C:
		}
		if s.activity.Swap(false) {
			silent = 0
			continue
		}
		silent += s.cfg.EchoInterval
		if silent >= s.cfg.EchoTimeout {
			s.Close(fmt.Errorf("no message for %v: echo timeout", silent))
			return
		}
		_ = s.Send(wire.AppendEcho(nil, wire.TypeEchoRequest, s.NextXid(), nil))
	}
}

// alive reports whether the session's peer is there: it answers an echo
// request within timeout. Recent traffic is no proof: a switch that
// reconnects has often just sent its last message on the old connection,
// whose close the reader may not have seen yet. The echo goes ahead of
// the write queue's limit (a full queue must not stall the probe); the
// wait is bounded by timeout and ends early when the session closes.
func (s *Session) alive(ctx context.Context, timeout time.Duration) bool {
	if s.isClosed() {
		return false
	}
	xid := s.NextXid()
	w := &waiter{done: make(chan struct{})}
	s.rmu.Lock()
	s.waiters[xid] = w
	s.rmu.Unlock()
	defer s.forget(xid)
	s.wmu.Lock()
	if s.isClosed() {
		s.wmu.Unlock()
		return false
	}
	s.pending = wire.AppendEcho(s.pending, wire.TypeEchoRequest, xid, nil)
	s.kickLocked()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-w.done:
		return w.err == nil
	case <-t.C:
	case <-ctx.Done():
	case <-s.closed:
	}
	return false
}
