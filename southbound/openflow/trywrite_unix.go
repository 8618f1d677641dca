//go:build unix

package openflow

import (
	"net"
	"syscall"
)

// rawWriter writes to a socket without ever waiting for it to drain. One
// goroutine at a time uses it (the session's busy flag); it is built once
// per session so that a write allocates nothing.
type rawWriter struct {
	rc  syscall.RawConn
	fn  func(fd uintptr) bool
	b   []byte
	n   int
	err error
}

// newRawWriter returns a rawWriter for connections with a file descriptor
// (TCP and unix sockets), nil for the others (TLS).
func newRawWriter(c net.Conn) *rawWriter {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	w := &rawWriter{rc: rc}
	w.fn = w.do
	return w
}

// write writes what the socket takes now: it returns how many bytes of b
// were written (maybe none) and an error only when the connection failed.
func (w *rawWriter) write(b []byte) (int, error) {
	w.b, w.n, w.err = b, 0, nil
	err := w.rc.Write(w.fn)
	if err == nil {
		err = w.err
	}
	n := w.n
	w.b, w.err = nil, nil
	return n, err
}

func (w *rawWriter) do(fd uintptr) bool {
	for w.n < len(w.b) {
		m, e := syscall.Write(int(fd), w.b[w.n:])
		if m > 0 {
			w.n += m
		}
		if e == syscall.EINTR {
			continue
		}
		if e != nil && e != syscall.EAGAIN {
			w.err = e
		}
		if e != nil || m <= 0 {
			break
		}
	}
	return true // never wait for the socket: the writer goroutine does
}
