package northbound

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/loom-sdn/loom/controller/events"
)

// EventBuffer is how many events one /events client may fall behind
// before it is sent a gap marker instead.
const EventBuffer = 1024

// EventRoutes streams the change feed as Server-Sent Events:
// GET /events[?topic=model,topology,switch,port]. Each event is
//
//	id: <seq>
//	event: <topic>.<type>
//	data: <the event as JSON>
//
// A client that falls behind gets an event of type "gap" and should
// re-read what it watches. A comment line keeps idle connections alive.
func EventRoutes(bus *events.Bus, heartbeat time.Duration) Mount {
	return func(api *mux.Router) {
		api.HandleFunc("/events", func(w http.ResponseWriter, r *http.Request) {
			var topics []string
			if q := r.URL.Query().Get("topic"); q != "" {
				topics = strings.Split(q, ",")
			}
			rc := http.NewResponseController(w)
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
			tick := time.NewTicker(heartbeat)
			defer tick.Stop()
			for {
				select {
				case <-r.Context().Done():
					return
				case <-tick.C:
					fmt.Fprint(w, ": ping\n\n")
				case e, ok := <-sub.C:
					if !ok {
						return
					}
					b, err := json.Marshal(e)
					if err != nil {
						b, _ = json.Marshal(events.Event{Seq: e.Seq, Time: e.Time, Topic: e.Topic, Type: e.Type, Kind: e.Kind, ID: e.ID})
					}
					fmt.Fprintf(w, "id: %d\nevent: %s.%s\ndata: %s\n\n", e.Seq, e.Topic, e.Type, b)
				}
				if err := rc.Flush(); err != nil {
					return
				}
			}
		}).Methods(http.MethodGet)
	}
}
