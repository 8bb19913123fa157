package v1

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

// GroupVersion is the API group and version of every gingham resource.
var GroupVersion = schema.GroupVersion{Group: "gingham.dev", Version: "v1"}

// AddToScheme adds the gingham.dev/v1 types to a scheme.
func AddToScheme(s *runtime.Scheme) error {
	b := &scheme.Builder{GroupVersion: GroupVersion}
	b.Register(
		&IPPool{}, &IPPoolList{},
		&BGPConfiguration{}, &BGPConfigurationList{},
		&BGPPeer{}, &BGPPeerList{},
		&IPAMBlock{}, &IPAMBlockList{},
		&BlockAffinity{}, &BlockAffinityList{},
		&IPAMHandle{}, &IPAMHandleList{},
		&IPAMConfiguration{}, &IPAMConfigurationList{},
		&GinghamNodeStatus{}, &GinghamNodeStatusList{},
	)
	return b.AddToScheme(s)
}
