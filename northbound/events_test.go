package northbound_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/loom-sdn/loom/events"
	"github.com/loom-sdn/loom/northbound"
)

func TestEventStream(t *testing.T) {
	bus := events.NewBus()
	r := mux.NewRouter()
	northbound.EventRoutes(bus, 20*time.Millisecond)(r.PathPrefix("/api/v1").Subrouter())
	ts := httptest.NewServer(r)
	defer ts.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/api/v1/events?topic=model,switch", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	br := bufio.NewReader(resp.Body)
	if line, _ := br.ReadString('\n'); !strings.HasPrefix(line, ": loom events") {
		t.Fatalf("first line %q", line)
	}
	bus.Publish(events.Event{Topic: "topology", Type: "link-added"}) // filtered out
	bus.Publish(events.Event{Topic: "model", Type: "created", Kind: "network", ID: "n1", Object: map[string]int{"vni": 5001}})
	bus.Publish(events.Event{Topic: "switch", Type: "up", ID: "0000000000000001"})
	var got []events.Event
	var names []string
	sawPing := false
	for len(got) < 2 {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasPrefix(line, ": ping"):
			sawPing = true
		case strings.HasPrefix(line, "event: "):
			names = append(names, strings.TrimSpace(strings.TrimPrefix(line, "event: ")))
		case strings.HasPrefix(line, "data: "):
			var e events.Event
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &e); err != nil {
				t.Fatal(err)
			}
			got = append(got, e)
		}
	}
	if names[0] != "model.created" || names[1] != "switch.up" || got[0].ID != "n1" || got[0].Seq != 2 || got[1].Seq != 3 {
		t.Errorf("events %v %+v", names, got)
	}
	for !sawPing {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		sawPing = strings.HasPrefix(line, ": ping")
	}
}
