package events

import (
	"sync"
	"testing"
)

func TestFanOutOrderAndFilter(t *testing.T) {
	b := NewBus()
	all := b.Subscribe(10, nil)
	model := b.Subscribe(10, func(e Event) bool { return e.Topic == "model" })
	b.Publish(Event{Topic: "model", Type: "created", Kind: "network", ID: "n1"})
	b.Publish(Event{Topic: "switch", Type: "up"})
	b.Publish(Event{Topic: "model", Type: "deleted", Kind: "network", ID: "n1"})
	for i, want := range []string{"created", "up", "deleted"} {
		e := <-all.C
		if e.Type != want || e.Seq != uint64(i+1) || e.Time.IsZero() {
			t.Errorf("all[%d] = %+v", i, e)
		}
	}
	if e := <-model.C; e.Type != "created" {
		t.Errorf("model[0] = %+v", e)
	}
	if e := <-model.C; e.Type != "deleted" || e.Seq != 3 {
		t.Errorf("model[1] = %+v", e)
	}
	all.Close()
	if _, ok := <-all.C; ok {
		t.Error("closed subscription still delivers")
	}
	all.Close() // idempotent
}

func TestSlowSubscriberGetsAGapAndNeverBlocks(t *testing.T) {
	b := NewBus()
	slow := b.Subscribe(2, nil)
	for i := 0; i < 100; i++ {
		b.Publish(Event{Topic: "t", Type: "x"})
	}
	var got []string
	for len(slow.C) > 0 {
		got = append(got, (<-slow.C).Type)
	}
	if len(got) != 3 || got[2] != Gap {
		t.Fatalf("got %v, want two events and a gap", got)
	}
	b.Publish(Event{Topic: "t", Type: "after"})
	if e := <-slow.C; e.Type != "after" || e.Seq != 101 {
		t.Errorf("after draining: %+v", e)
	}
}

func TestConcurrentPublish(t *testing.T) {
	b := NewBus()
	s := b.Subscribe(4000, nil)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Go(func() {
			for i := 0; i < 1000; i++ {
				b.Publish(Event{Topic: "t"})
			}
		})
	}
	wg.Wait()
	var last uint64
	for i := 0; i < 4000; i++ {
		e := <-s.C
		if e.Seq <= last {
			t.Fatalf("out of order: %d after %d", e.Seq, last)
		}
		last = e.Seq
	}
}
