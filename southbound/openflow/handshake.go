package openflow

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/loom-sdn/loom/southbound/openflow/wire"
)

// ErrIncompatible is the handshake failure of a switch that cannot speak
// OpenFlow 1.3.
var ErrIncompatible = errors.New("openflow: switch does not support OpenFlow 1.3")

// asyncConfig asks for every packet-in reason (including invalid TTL, which
// OVS withholds by default), port status and flow-removed reason while
// master or equal, and only port status while slave.
var asyncConfig = wire.AsyncConfig{
	PacketIn:    [2]uint32{0x7, 0},
	PortStatus:  [2]uint32{0x7, 0x7},
	FlowRemoved: [2]uint32{0xf, 0},
}

// handshake runs HELLO, FEATURES_REQUEST, SET_CONFIG, SET_ASYNC, PORT_DESC
// and DESC on the reader goroutine, before the read loop starts.
func (s *Session) handshake(ctx context.Context, br *bufio.Reader) error {
	deadline := time.Now().Add(s.cfg.HandshakeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	s.conn.SetReadDeadline(deadline)
	defer s.conn.SetReadDeadline(time.Time{})

	if err := s.Send(wire.AppendHello(nil, s.NextXid())); err != nil {
		return err
	}
	h, msg, err := wire.ReadMessage(br)
	if err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	if h.Type != wire.TypeHello {
		return protoErr(fmt.Errorf("handshake: expected HELLO, got %s", wire.TypeName(h.Type)), msg)
	}
	hello, err := wire.DecodeHello(msg)
	if err != nil {
		return protoErr(fmt.Errorf("handshake: %w", err), msg)
	}
	if !hello.Supports(wire.Version) {
		// Written directly: the session closes right after.
		s.conn.SetWriteDeadline(time.Now().Add(time.Second))
		s.conn.Write(wire.AppendError(nil, h.Xid, wire.ErrHelloFailed, wire.HelloFailedIncompatible,
			[]byte("Loom speaks OpenFlow 1.3 only")))
		return fmt.Errorf("%w (peer version 0x%02x, bitmap 0x%x)", ErrIncompatible, hello.Version, hello.Bitmap)
	}

	fxid, pxid, dxid := s.NextXid(), s.NextXid(), s.NextXid()
	err = s.Write(func(b []byte) []byte {
		b = wire.AppendEmpty(b, wire.TypeFeaturesRequest, fxid)
		b = wire.AppendSetConfig(b, s.NextXid(), wire.NoBuffer)
		b = wire.AppendSetAsync(b, s.NextXid(), asyncConfig)
		b = wire.AppendMultipartRequest(b, pxid, wire.MultipartPortDesc, nil)
		return wire.AppendMultipartRequest(b, dxid, wire.MultipartDesc, nil)
	})
	if err != nil {
		return err
	}
	var gotFeatures, gotPorts, gotDesc bool
	for !gotFeatures || !gotPorts || !gotDesc {
		h, msg, err := wire.ReadMessage(br)
		if err != nil {
			return fmt.Errorf("handshake: %w", err)
		}
		switch {
		case h.Type == wire.TypeEchoRequest:
			err = s.sendEchoReply(h.Xid, msg[wire.HeaderLen:])
		case h.Type == wire.TypeFeaturesReply && h.Xid == fxid:
			if s.Features, err = wire.DecodeFeatures(msg); err == nil && s.Features.AuxiliaryID != 0 {
				return fmt.Errorf("handshake: auxiliary connection %d of %016x: Loom uses main connections only",
					s.Features.AuxiliaryID, s.Features.DatapathID)
			}
			if err == nil && s.cfg.RequireCertDPID {
				if err := s.checkCertDPID(); err != nil {
					if o, ok := s.handler.(PolicyObserver); ok {
						o.SessionRefused(ReasonCertDPID)
					}
					return fmt.Errorf("handshake: %s: %w", ReasonCertDPID, err)
				}
			}
			gotFeatures = true
		case h.Type == wire.TypeMultipartReply && (h.Xid == pxid || h.Xid == dxid):
			var mp wire.MultipartReply
			if mp, err = wire.DecodeMultipartReply(msg); err != nil {
				break
			}
			if h.Xid == pxid {
				var ports []wire.Port
				ports, err = wire.DecodePortDesc(mp.Body)
				s.Ports = append(s.Ports, ports...)
				gotPorts = !mp.More()
			} else {
				s.Desc, err = wire.DecodeDesc(mp.Body)
				gotDesc = true
			}
		case h.Type == wire.TypeError:
			var e *wire.Error
			if e, err = wire.DecodeError(msg); err != nil {
				break
			}
			switch e.Xid {
			case dxid:
				gotDesc = true // a switch without DESC is still usable
			case fxid, pxid:
				return fmt.Errorf("handshake: %w", e)
			default:
				s.log.Warn("switch rejected a handshake message", "error", e.Error())
			}
		}
		// Anything else (an early PACKET_IN or PORT_STATUS) predates the
		// state the controller is about to read and is dropped.
		if err != nil {
			return protoErr(fmt.Errorf("handshake: %w", err), msg)
		}
	}
	return nil
}

// checkCertDPID checks that a TLS peer's certificate names the datapath id
// the switch claims (Config.RequireCertDPID). Connections without TLS
// (tcp:, unix:) are not checked.
func (s *Session) checkCertDPID() error {
	tc, ok := s.conn.(*tls.Conn)
	if !ok {
		return nil
	}
	certs := tc.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return errors.New("no client certificate")
	}
	if !CertNamesDPID(certs[0], s.Features.DatapathID) {
		return fmt.Errorf("the certificate (subject %q, DNS names %v) does not name datapath id %016x",
			certs[0].Subject.String(), certs[0].DNSNames, s.Features.DatapathID)
	}
	return nil
}

// CertNamesDPID reports whether a switch certificate names dpid: its
// subject CN or one of its DNS SANs is the datapath id in 16 hex digits,
// with or without colons or a 0x prefix, in any case
// ("0000000000000042", "00:00:00:00:00:00:00:42", "0x000000000000002A").
func CertNamesDPID(cert *x509.Certificate, dpid uint64) bool {
	for _, name := range append([]string{cert.Subject.CommonName}, cert.DNSNames...) {
		if v, ok := parseDPID(name); ok && v == dpid {
			return true
		}
	}
	return false
}

func parseDPID(s string) (uint64, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.TrimPrefix(s, "0x")
	s = strings.ReplaceAll(s, ":", "")
	if len(s) != 16 {
		return 0, false
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v, true
}
