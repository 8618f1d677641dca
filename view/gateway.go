package view

import "hash/fnv"

// GatewayMAC is the MAC address of a subnet's gateway: the router port
// that routes it, and the DHCP server that serves it. It is derived from
// the subnet's id, so it is the same on every host and across restarts:
// 02:4c:4d (locally administered, "LM") and 24 bits of FNV-1a hash.
func GatewayMAC(subnetID string) [6]byte {
	f := fnv.New32a()
	f.Write([]byte(subnetID))
	h := f.Sum32()
	return [6]byte{0x02, 0x4c, 0x4d, byte(h >> 16), byte(h >> 8), byte(h)}
}
