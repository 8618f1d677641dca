package northbound

import (
	"net/http"

	"github.com/loom-sdn/loom/northbound/restapi"
)

// Descriptions of the routes that Handler always serves and of the mounts
// that do not describe themselves yet (events.go, topology.go).
func init() {
	get := http.MethodGet
	DescribeRoute(get, "/healthz", Description{Summary: "controller health: status and number of connected switches (no token needed)",
		Response: map[string]any{}})
	DescribeRoute(get, "/metrics", Description{Summary: "Prometheus metrics (loom_*)", ContentType: "text/plain",
		ResponseSchema: map[string]any{"type": "string"}})
	DescribeRoute(get, "/api/v1/openapi.json", Description{Summary: "this document", Response: map[string]any{}})
	page := Description{Summary: "the live fabric page: static HTML that draws /api/v1/fabric after every event (no token needed)",
		ContentType: "text/html", ResponseSchema: map[string]any{"type": "string"}}
	DescribeRoute(get, "/ui/", page)
	redirect := Description{Summary: "redirects to /ui/", ContentType: "text/html", ResponseSchema: map[string]any{"type": "string"}}
	DescribeRoute(get, "/ui", redirect)
	DescribeRoute(get, "/", redirect)
	DescribeRoute(get, "/api/v1/switches", Description{Summary: "connected switches, with this loomd's OpenFlow role for each and its master", Response: []Switch{}})
	DescribeRoute(get, "/api/v1/cluster", Description{Summary: "the loomd replicas sharing the etcd store: leases, switches connected and mastered, hosts managed (404 for a loomd alone)",
		Response: restapi.Cluster{}})
	DescribeRoute(get, "/api/v1/switches/{dpid}", Description{Summary: "one switch: ports, desired flows with owners, groups, meters",
		Response: SwitchDetail{}, Errors: []int{400, 404, 503}})
	DescribeRoute(get, "/api/v1/switches/{dpid}/flows", Description{Summary: "desired against installed flows: ok, missing, differs, learned, unexpected, with counters",
		Response: []restapi.FlowView{}, Errors: []int{400, 404, 503}})
	DescribeRoute(get, "/api/v1/events", Description{Summary: "Server-Sent Events of every change (id: seq, event: topic.type, data: the event)",
		Query:       []Param{{Name: "topic", Description: "comma-separated topics: model, topology, switch, port, ..."}},
		ContentType: "text/event-stream", ResponseSchema: map[string]any{"type": "string"}})
	DescribeRoute(get, "/api/v1/topology", Description{Summary: "switches, LLDP links and endpoints, shaped for drawing", Response: TopologyView{}})
	DescribeRoute(get, "/api/v1/topology/path", Description{Summary: "shortest path between two switches",
		Query:    []Param{{Name: "from", Description: "datapath id"}, {Name: "to", Description: "datapath id"}},
		Response: TopologyPath{}, Errors: []int{400, 404}})
}
