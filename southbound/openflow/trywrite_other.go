//go:build !unix

package openflow

import (
	"errors"
	"net"
)

// rawWriter: no writes that never block on this platform; the writer
// goroutine sends everything.
type rawWriter struct{}

func newRawWriter(net.Conn) *rawWriter { return nil }

func (*rawWriter) write([]byte) (int, error) {
	return 0, errors.New("openflow: no non-blocking writes on this platform")
}
