package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"

	"github.com/vishvananda/netlink"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/gingham-net/gingham/api/v1"
)

// The router is the racks' ToR: BIRD (from the host, with its shared
// libraries, in the initramfs) peers iBGP, in the cluster AS, with every
// node, imports their blocks and programs them into the router's kernel;
// it exports nothing to the nodes. iBGP, because a node re-advertises to
// an eBGP peer the blocks it learned over the mesh, with itself as the next
// hop (as Calico does); the ToR would then pick one node for every block
// by router ID, and a block in the other rack would loop between that node
// and the ToR in Never. Over iBGP each node sends only its own blocks. That is the BGP path between the racks that Never needs: a
// node's route to a block in the other rack has a next hop off its subnet,
// which the agent leaves out, so the traffic follows the node's default
// route to the router, which knows the block from BGP.
const (
	torAS      = v1.DefaultASNumber
	torBinary  = "/bin/bird"
	torConfig  = "/run/bird/bird.conf"
	torSocket  = "/run/bird/bird.ctl"
	torLog     = "/tmp/bird.log"
	rtprotBIRD = 12 // RTPROT_BIRD: the protocol of BIRD's kernel routes
)

// torConf renders bird.conf: one eBGP session per node (BIRD 2 wants
// explicit filters on eBGP), short timers, kernel export of what it learns.
func torConf(w *world) string {
	var b strings.Builder
	fmt.Fprintf(&b, "log %q all;\nrouter id %s;\n", torLog, racks[0].gw.Addr())
	b.WriteString("protocol device { scan time 2; }\n")
	b.WriteString("protocol kernel { ipv4 { import none; export all; }; }\n")
	fmt.Fprintf(&b, "template bgp node { local as %d; direct; hold time 9; keepalive time 3; connect retry time 2; ipv4 { import all; export none; gateway direct; }; }\n", torAS)
	for _, n := range w.nodes {
		fmt.Fprintf(&b, "protocol bgp n_%s from node { neighbor %s as %d; }\n", n.name, n.addr.Addr(), torAS)
	}
	return b.String()
}

// torGateway is the router's address on n's rack.
func torGateway(n *node) netip.Addr { return racks[n.rack].gw.Addr() }

// startToR writes the configuration and starts BIRD in the router's
// namespace (the guest's initial one), in the foreground so the guest
// owns the process.
func startToR(w *world) (*exec.Cmd, error) {
	if err := os.MkdirAll("/run/bird", 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(torConfig, []byte(torConf(w)), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command(torBinary, "-f", "-c", torConfig, "-s", torSocket)
	cmd.Env = []string{"PATH=/bin"}
	out, err := os.Create(torLog + ".stderr")
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := w.router.Do(cmd.Start); err != nil {
		out.Close()
		return nil, fmt.Errorf("start bird: %w", err)
	}
	go func() { _ = cmd.Wait(); out.Close() }()
	return cmd, nil
}

// torPeers are the BGPPeers that make every node peer with its rack's
// router address (as a ToR is configured per rack).
func torPeers(w *world) []*v1.BGPPeer {
	as := int64(torAS)
	var out []*v1.BGPPeer
	for _, n := range w.nodes {
		out = append(out, &v1.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "tor-" + n.name},
			Spec: v1.BGPPeerSpec{Node: n.name, PeerIP: torGateway(n).String(), ASNumber: &as}})
	}
	return out
}

// torLearned checks that the router's kernel routes every block via its
// node, with BIRD's protocol: learned over BGP, not configured.
func (aw *agentsWorld) torLearned(ctx context.Context) error {
	return poll(ctx, convergeTimeout, func() error {
		rh, err := handle(aw.router)
		if err != nil {
			return err
		}
		defer rh.Close()
		for _, n := range aw.nodes {
			for _, b := range aw.blocks[n.name] {
				rs, err := rh.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Dst: ipnet(b), Table: 254}, netlink.RT_FILTER_DST|netlink.RT_FILTER_TABLE)
				if err != nil {
					return err
				}
				if len(rs) != 1 || int(rs[0].Protocol) != rtprotBIRD || !rs[0].Gw.Equal(n.addr.Addr().AsSlice()) {
					return fmt.Errorf("router route to %s (%s's block): %v, want via %s proto bird", b, n.name, rs, n.addr.Addr())
				}
			}
		}
		return nil
	})
}
