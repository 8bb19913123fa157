// Package autodetect finds this node's BGP address (with its prefix
// length) the ways Calico's IP_AUTODETECTION_METHOD does, for
// GINGHAM_IP_AUTODETECTION_METHOD:
//
//	first-found              the first global IPv4 address of an interface
//	                         not excluded by DefaultExclusions
//	interface=<re>[,<re>...] the first on an interface whose name matches
//	skip-interface=<re>,...  first-found, also skipping these names
//	cidr=<cidr>[,<cidr>...]  the first address inside one of the CIDRs
//	can-reach=<ip or name>   the source address the kernel picks for a
//	                         route to the target (a UDP connect: no packet
//	                         is sent)
//	kubernetes-internal-ip   the Node's InternalIP (from the API)
//
// As in Calico, interfaces are examined from the highest index down,
// regular expressions are unanchored (interface=eth0 also matches veth0;
// write ^eth0$ for exactly eth0), and only global unicast addresses count.
// Unlike Calico, interfaces that are down are skipped: an address there
// cannot carry BGP. The prefix length is always the one configured on the
// interface holding the address (CrossSubnet needs it); an address found by
// can-reach or kubernetes-internal-ip that no interface holds is an error.
//
// Selection (Select) is pure and works on a list of Interfaces; reading the
// host (System) is a thin layer over the standard library.
package autodetect
