package main

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"

	"github.com/loom-sdn/loom/controller/events"
	"github.com/loom-sdn/loom/model"
	"github.com/loom-sdn/loom/topology"
)

// declareEndpoints keeps the topology's declared endpoints (source
// "model") equal to the model's ports, MACs and IPs: level-triggered, so a
// lost event (a gap) costs nothing but a re-read.
func declareEndpoints(ctx context.Context, svc *model.Service, topo *topology.Graph, log *slog.Logger) {
	sub := svc.Subscribe(1024)
	defer sub.Close()
	declared := map[topology.MAC][]netip.Addr{}
	sync := func() {
		want := map[topology.MAC][]netip.Addr{}
		for _, p := range svc.Snapshot().Ports.All() {
			mac, err := topology.ParseMAC(p.MAC)
			if err != nil {
				continue
			}
			var ips []netip.Addr
			for _, s := range p.IPs {
				if ip, err := netip.ParseAddr(s); err == nil {
					ips = append(ips, ip)
				}
			}
			want[mac] = ips
		}
		for mac, ips := range want {
			if old, ok := declared[mac]; ok && slices.Equal(old, ips) {
				continue
			}
			if err := topo.SetEndpoint(topology.Endpoint{MAC: mac, IPs: ips, Source: "model"}); err != nil {
				log.Warn("cannot declare endpoint", "mac", mac, "error", err)
			}
		}
		for mac := range declared {
			if _, ok := want[mac]; !ok {
				topo.DeleteEndpoint(mac, "model")
			}
		}
		declared = want
	}
	sync()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-sub.C:
			if !ok {
				return
			}
			if e.Kind == string(model.KindPort) || e.Type == events.Gap {
				sync()
			}
		}
	}
}
