// Package ctl is ginghamctl: a calicoctl-like command line for gingham's
// resources, built with cobra.
//
// Commands are built by NewRootCommand from Deps (streams, a client factory,
// a node-status source, IPAM operations), never from package variables, so
// tests run the whole command tree in-process against a real API server with
// captured output.
//
// Writes go through one path (writer.go): decode every object, check it
// locally (api/model for one object, api/validation for the pool overlap and
// immutability rules the API server cannot know), write nothing when any
// check fails, then write objects one by one and report which succeeded and
// which failed. The API server's own messages already name fields; they are
// passed through with calicoctl-style context ("failed to create 'IPPool'
// resource: …").
//
// Rendered output (tables, YAML, JSON) is golden-tested (testdata/*.golden,
// go test -update).
package ctl
