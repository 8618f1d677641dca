package ovsdb

import (
	"context"
	"log/slog"

	"github.com/go-logr/logr"
)

// libovsdbLogger returns a logr.Logger for libovsdb that writes to l.
//
// libovsdb logs every transaction and cache update at V(4) and V(5), and
// connection progress at V(3). Its Info messages at level V(n) go to slog at
// LevelDebug-n, so they are hidden unless l's handler enables levels below
// Debug. Its errors (logr does not pass their V level to the sink) go to
// LevelWarn; libovsdb logs errors only when its cache cannot be updated.
func libovsdbLogger(l *slog.Logger) logr.Logger {
	return logr.New(&slogSink{l: l.With("component", "libovsdb")})
}

// slogSink is a logr.LogSink writing to a slog.Logger.
type slogSink struct {
	l    *slog.Logger
	name string
}

var _ logr.LogSink = (*slogSink)(nil)

func (s *slogSink) Init(logr.RuntimeInfo) {}

func (s *slogSink) level(v int) slog.Level { return slog.LevelDebug - slog.Level(v) }

func (s *slogSink) Enabled(v int) bool {
	return s.l.Enabled(context.Background(), s.level(v))
}

func (s *slogSink) Info(v int, msg string, kv ...any) {
	s.l.Log(context.Background(), s.level(v), s.msg(msg), kv...)
}

func (s *slogSink) Error(err error, msg string, kv ...any) {
	s.l.Log(context.Background(), slog.LevelWarn, s.msg(msg), append(kv, "err", err)...)
}

func (s *slogSink) WithValues(kv ...any) logr.LogSink {
	return &slogSink{l: s.l.With(kv...), name: s.name}
}

func (s *slogSink) WithName(name string) logr.LogSink {
	if s.name != "" {
		name = s.name + "/" + name
	}
	return &slogSink{l: s.l, name: name}
}

func (s *slogSink) msg(m string) string {
	if s.name == "" {
		return m
	}
	return s.name + ": " + m
}
