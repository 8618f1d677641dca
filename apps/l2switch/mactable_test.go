package l2switch

import (
	"math/rand/v2"
	"testing"

	"github.com/loom-sdn/loom/southbound/openflow/flow"
)

// macTable against a Go map: random sets, deletes and lookups over few
// keys (long runs, deletions inside them) and over many (growth).
func TestMACTableIsAMap(t *testing.T) {
	for _, keys := range []int{40, 5000} {
		r := rand.New(rand.NewPCG(7, uint64(keys)))
		var tab macTable
		ref := map[flow.MAC]uint32{}
		for i := 0; i < 200000; i++ {
			mac := flow.MAC(r.IntN(keys)) | 0x020000000000
			if r.IntN(2) == 0 {
				mac = flow.MAC(r.Uint64() & 0xffffffffffff) // anywhere in 48 bits
			}
			switch r.IntN(4) {
			case 0, 1:
				port := r.Uint32()
				tab.set(mac, port)
				ref[mac] = port
			case 2:
				tab.delete(mac)
				delete(ref, mac)
			}
			got, ok := tab.get(mac)
			want, wok := ref[mac]
			if ok != wok || got != want {
				t.Fatalf("keys %d op %d: get(%v) = %d, %v; want %d, %v", keys, i, mac, got, ok, want, wok)
			}
			if tab.len() != len(ref) {
				t.Fatalf("keys %d op %d: %d entries, want %d", keys, i, tab.len(), len(ref))
			}
		}
		for mac, want := range ref {
			if got, ok := tab.get(mac); !ok || got != want {
				t.Fatalf("keys %d: get(%v) = %d, %v; want %d", keys, mac, got, ok, want)
			}
		}
		// all visits every entry once, and may delete as it goes.
		seen := map[flow.MAC]bool{}
		tab.all(func(mac flow.MAC, port uint32) {
			if seen[mac] || ref[mac] != port {
				t.Fatalf("all: %v on %d (seen %v, want port %d)", mac, port, seen[mac], ref[mac])
			}
			seen[mac] = true
			if port%2 == 0 {
				tab.delete(mac)
				delete(ref, mac)
			}
		})
		if tab.len() != len(ref) {
			t.Fatalf("keys %d: %d entries after deleting in all, want %d", keys, tab.len(), len(ref))
		}
		for mac := range ref {
			if _, ok := tab.get(mac); !ok {
				t.Fatalf("keys %d: %v lost by deletions in all", keys, mac)
			}
		}
	}
}

// BenchmarkMACLookup: l2switch's two lookups per packet-in over 16
// switches' tables of 1000 hosts each, visited as loombench does (each
// switch in turn, its hosts cycling), in a Go map and in macTable.
func BenchmarkMACLookup(b *testing.B) {
	const switches, hosts = 16, 1000
	mac := func(s, h int) flow.MAC { return flow.MAC(0x020000000000 | s<<24 | h) }
	b.Run("map", func(b *testing.B) {
		tabs := make([]map[flow.MAC]uint32, switches)
		for s := range tabs {
			tabs[s] = map[flow.MAC]uint32{}
			for h := 0; h < hosts; h++ {
				tabs[s][mac(s, h)] = uint32(1 + h%16)
			}
		}
		b.ResetTimer()
		var sum uint32
		for i := 0; i < b.N; i++ {
			s, h := i%switches, (i/switches)%hosts
			p, _ := tabs[s][mac(s, h)]
			q, _ := tabs[s][mac(s, (h+7)%hosts)]
			sum += p + q
		}
		_ = sum
	})
	b.Run("macTable", func(b *testing.B) {
		tabs := make([]macTable, switches)
		for s := range tabs {
			for h := 0; h < hosts; h++ {
				tabs[s].set(mac(s, h), uint32(1+h%16))
			}
		}
		b.ResetTimer()
		var sum uint32
		for i := 0; i < b.N; i++ {
			s, h := i%switches, (i/switches)%hosts
			p, _ := tabs[s].get(mac(s, h))
			q, _ := tabs[s].get(mac(s, (h+7)%hosts))
			sum += p + q
		}
		_ = sum
	})
}
