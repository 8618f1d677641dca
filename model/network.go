package model

// Networks: VXLAN, VLAN or flat, each with its unique key.

func validateNetwork(c *check, n *Network) *Error {
	if err := enum("type", n.Type, "vxlan", "vlan", "flat"); err != nil {
		return err
	}
	if n.Type != "vxlan" && n.VNI != 0 {
		return invalidf("vni", "vni is only for vxlan networks")
	}
	if n.Type != "vlan" && n.VLAN != 0 {
		return invalidf("vlan", "vlan is only for vlan networks")
	}
	switch n.Type {
	case "vxlan":
		if n.VNI == 0 {
			return invalidf("vni", "vni is required for a vxlan network (1-%d)", MaxVNI)
		}
		if err := intRange("vni", n.VNI, 1, MaxVNI); err != nil {
			return err
		}
	case "vlan":
		if n.VLAN == 0 {
			return invalidf("vlan", "vlan is required for a vlan network (1-4094)")
		}
		if err := intRange("vlan", n.VLAN, 1, 4094); err != nil {
			return err
		}
	}
	x := c.cur.index()
	if o := x.vnis[n.VNI]; n.Type == "vxlan" && o != nil && o.ID != n.ID {
		return conflictf("vni", "network %s already has vni %d", o.Name, n.VNI)
	}
	if o := x.vlans[n.VLAN]; n.Type == "vlan" && o != nil && o.ID != n.ID {
		return conflictf("vlan", "network %s already has vlan %d", o.Name, n.VLAN)
	}
	return nil
}
