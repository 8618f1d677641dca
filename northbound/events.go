package northbound

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"
	"github.com/loom-sdn/loom/events"
)

// EventBuffer is how many events one /events client may fall behind
// before it is sent a gap marker instead.
const EventBuffer = 1024

// EventOptions tune the event streams.
type EventOptions struct {
	// Heartbeat is how often an idle stream gets a comment line.
	Heartbeat time.Duration
	// MaxStreams is the most streams open at once; one more is answered
	// 503 with Retry-After (negative: no limit).
	MaxStreams int
	// WriteTimeout bounds each write to a stream: a client that stops
	// reading is dropped after it.
	WriteTimeout time.Duration
}

// Defaults of EventOptions.
const (
	DefaultHeartbeat         = 15 * time.Second
	DefaultMaxStreams        = 256
	DefaultEventWriteTimeout = 10 * time.Second
)

// EventRoutes is EventRoutesWith the default options and this heartbeat.
func EventRoutes(bus *events.Bus, heartbeat time.Duration) Mount {
	return EventRoutesWith(bus, EventOptions{Heartbeat: heartbeat})
}

// EventRoutes streams the change feed as Server-Sent Events:
// GET /events[?topic=model,topology,switch,port]. Each event is
//
//	id: <seq>
//	event: <topic>.<type>
//	data: <the event as JSON>
//
// A client that falls behind gets an event of type "gap" and should
// re-read what it watches. A comment line keeps idle connections alive.
// A stream is exempt from the server's read and write timeouts: each
// write has its own deadline instead.
func EventRoutesWith(bus *events.Bus, o EventOptions) Mount {
	if o.Heartbeat <= 0 {
		o.Heartbeat = DefaultHeartbeat
	}
	if o.MaxStreams == 0 {
		o.MaxStreams = DefaultMaxStreams
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultEventWriteTimeout
	}
	var open atomic.Int64
	return func(api *mux.Router) {
		api.HandleFunc("/events", func(w http.ResponseWriter, r *http.Request) {
			if n := open.Add(1); o.MaxStreams > 0 && n > int64(o.MaxStreams) {
				open.Add(-1)
				w.Header().Set("Retry-After", "5")
				WriteError(w, Errorf(http.StatusServiceUnavailable, CodeUnavailable, "", "%d event streams are open, the most this loomd serves (--api-max-streams)", o.MaxStreams))
				return
			}
			defer open.Add(-1)
			var topics []string
			if q := r.URL.Query().Get("topic"); q != "" {
				topics = strings.Split(q, ",")
			}
			rc := http.NewResponseController(w)
			// The server's ReadTimeout would end the stream (net/http
			// cancels a request whose connection's read times out).
			rc.SetReadDeadline(time.Time{})
			rc.SetWriteDeadline(time.Now().Add(o.WriteTimeout))
			sub := bus.Subscribe(EventBuffer, func(e events.Event) bool {
				return topics == nil || slices.Contains(topics, e.Topic)
			})
			defer sub.Close()
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Set("Cache-Control", "no-cache")
			w.WriteHeader(http.StatusOK)
			fmt.Fprint(w, ": loom events\n\n")
			if err := rc.Flush(); err != nil {
				return
			}
			tick := time.NewTicker(o.Heartbeat)
			defer tick.Stop()
			for {
				select {
				case <-r.Context().Done():
					return
				case <-tick.C:
					rc.SetWriteDeadline(time.Now().Add(o.WriteTimeout))
					fmt.Fprint(w, ": ping\n\n")
				case e, ok := <-sub.C:
					if !ok {
						return
					}
					b, err := json.Marshal(e)
					if err != nil {
						b, _ = json.Marshal(events.Event{Seq: e.Seq, Time: e.Time, Topic: e.Topic, Type: e.Type, Kind: e.Kind, ID: e.ID})
					}
					rc.SetWriteDeadline(time.Now().Add(o.WriteTimeout))
					fmt.Fprintf(w, "id: %d\nevent: %s.%s\ndata: %s\n\n", e.Seq, e.Topic, e.Type, b)
				}
				if err := rc.Flush(); err != nil {
					return
				}
			}
		}).Methods(http.MethodGet)
	}
}
