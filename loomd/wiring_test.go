package loomd

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loom-sdn/loom/events"
	"github.com/loom-sdn/loom/model"
)

// TestFollowModelCoalesces: events queued while a sync runs are taken
// together (one more sync, not one per event), events of other kinds
// wake nothing, and the last event is always followed by a sync.
func TestFollowModelCoalesces(t *testing.T) {
	bus := events.NewBus()
	sub := bus.Subscribe(20000, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var syncs, seen atomic.Int64
	var published atomic.Int64
	release := make(chan struct{})
	go followModel(ctx, sub, model.KindPort, func() {
		if syncs.Add(1) == 2 {
			<-release // the first sync after the start is slow: events pile up
		}
		seen.Store(published.Load())
	})
	bus.Publish(events.Event{Topic: model.Topic, Kind: string(model.KindNetwork)}) // another kind
	time.Sleep(50 * time.Millisecond)
	if n := syncs.Load(); n != 1 {
		t.Fatalf("%d syncs after a network event, want only the initial one", n)
	}
	published.Store(1)
	bus.Publish(events.Event{Topic: model.Topic, Kind: string(model.KindPort)})
	for syncs.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	for i := range 10000 {
		published.Store(int64(i + 2))
		bus.Publish(events.Event{Topic: model.Topic, Kind: string(model.KindPort)})
	}
	close(release)
	deadline := time.Now().Add(5 * time.Second)
	for seen.Load() != 10001 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if seen.Load() != 10001 {
		t.Fatalf("the last sync saw %d of 10001 events", seen.Load())
	}
	if n := syncs.Load(); n > 4 {
		t.Errorf("%d syncs for 10,001 queued port events, want a few", n)
	}
}
