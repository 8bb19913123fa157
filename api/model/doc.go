// Package model is the validated internal form of gingham's API objects. API
// objects (and the annotations on Kubernetes Nodes) are translated here once,
// by pure functions shared by the agent, the IPAM library and ginghamctl;
// nothing downstream parses strings from the API again. Translation errors
// name the field, in Calico's style: "error with field spec.cidr = 'x' (reason)".
package model
