package model

// Port groups: one policy for many ports.

func validatePortGroup(c *check, g *PortGroup) *Error {
	if err := optRange("bandwidth_kbps", g.BandwidthKbps, 1, 100000000); err != nil {
		return err
	}
	if err := optRange("burst_kb", g.BurstKB, 1, 100000000); err != nil {
		return err
	}
	if g.BurstKB != 0 && g.BandwidthKbps == 0 {
		return invalidf("burst_kb", "burst_kb needs bandwidth_kbps")
	}
	if g.Priority != nil {
		if err := intRange("priority", *g.Priority, 0, 7); err != nil {
			return err
		}
	}
	return optRange("vlan", g.VLAN, 1, 4094)
}
