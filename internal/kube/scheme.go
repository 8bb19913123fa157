// Package kube holds what every gingham binary needs to talk to the
// Kubernetes API: the scheme of the types it reads and writes.
package kube

import (
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	v1 "github.com/gingham-net/gingham/api/v1"
)

// Scheme knows the core, coordination and gingham.dev/v1 types.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, coordinationv1.AddToScheme, v1.AddToScheme} {
		if err := add(s); err != nil {
			panic(err) // only on conflicting registrations, a programming error
		}
	}
	return s
}
