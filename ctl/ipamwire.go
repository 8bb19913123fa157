package ctl

import (
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/gingham-net/gingham/ipam"
	"github.com/gingham-net/gingham/ipam/k8sstore"
)

// AllocatorIPAM gives ginghamctl the ipam package's release operations
// (ipam release --ip, and releasing a deleted pool's block affinities) over
// the CRD store; ginghamctl never edits blocks itself.
func AllocatorIPAM(c client.Client) IPAMOps {
	return ipam.New(k8sstore.New(c), ipam.Options{})
}

var _ IPAMOps = (*ipam.Allocator)(nil)
