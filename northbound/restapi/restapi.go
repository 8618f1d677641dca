// Package restapi holds the REST API's wire types that clients share with
// the server: loomctl (a pure HTTP client) decodes the answers with
// them and links nothing of the controller.
package restapi

// Error is the body of every error response.
type Error struct {
	Code    string `json:"error"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// Switch is the REST view of a connected switch.
type Switch struct {
	DatapathID string `json:"datapath_id"`
	Remote     string `json:"remote"`
	Software   string `json:"software,omitempty"`
	Tables     uint8  `json:"tables"`
	// Role is this loomd's OpenFlow role for the switch: "master" or
	// "slave" among replicas (--store etcd), "equal" for a loomd alone.
	// Generation is the role generation id the switch accepted last,
	// Master the replica the elections made its master.
	Role       string `json:"role"`
	Generation uint64 `json:"generation,omitempty"`
	Master     string `json:"master,omitempty"`
}

// Replica is a loomd of a cluster sharing an etcd store (GET /cluster).
type Replica struct {
	ID      string `json:"id"`
	Address string `json:"address,omitempty"`
	Lease   string `json:"lease"`
	// Switches is how many switches it is a candidate for (connected to)
	// and Masters how many it is the master of; Hosts how many hosts'
	// OVSDB it manages.
	Switches int `json:"switches"`
	Masters  int `json:"masters"`
	Hosts    int `json:"hosts"`
}

// Cluster is GET /cluster: this loomd and its replicas.
type Cluster struct {
	Self     string    `json:"self"`
	Replicas []Replica `json:"replicas"`
}

// Port is the REST view of a switch port.
type Port struct {
	Number uint32 `json:"number"`
	Name   string `json:"name"`
	MAC    string `json:"mac"`
	Up     bool   `json:"up"`
}

// OwnedFlow is a desired flow with the app that owns it.
type OwnedFlow struct {
	Owner string `json:"owner"`
	Flow  string `json:"flow"`
}

// SwitchDetail is a switch with its ports and desired state.
type SwitchDetail struct {
	Switch
	Ports  []Port      `json:"ports"`
	Flows  []OwnedFlow `json:"flows"`
	Groups []string    `json:"groups"`
	Meters []string    `json:"meters"`
}

// FlowView compares one flow of a switch's desired state with what the
// switch has installed.
type FlowView struct {
	Flow  string `json:"flow"`
	Owner string `json:"owner"`
	// State is "ok" (installed as desired), "missing" (desired, not
	// installed), "differs" (installed with other actions, cookie or
	// timeouts; Installed shows it), "learned" (written by the switch in
	// a learned table: kept) or "unexpected" (installed, not desired: the
	// next audit removes it).
	State     string `json:"state"`
	Installed string `json:"installed,omitempty"`
	Packets   uint64 `json:"packets"`
	Bytes     uint64 `json:"bytes"`
}
