// Package version holds the build's version, set by the Makefile's ldflags.
package version

// Version of this build of gingham.
var Version = "dev"
