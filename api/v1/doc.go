// Package v1 holds the gingham.dev/v1 API: the custom resources gingham keeps
// in the Kubernetes API (IP pools, IPAM blocks, affinities and handles, BGP
// configuration and peers, per-node status).
//
// Field names, defaults and meanings follow Calico's projectcalico.org/v3 so
// a Calico manifest ports by changing only apiVersion. Single-object rules are
// CRD OpenAPI schema and CEL rules generated from the markers here, enforced
// by the API server itself; rules that need other objects live in
// api/validation.
//
// +kubebuilder:object:generate=true
// +groupName=gingham.dev
package v1
