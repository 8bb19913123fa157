// Package layout reads deploy/image-layout, the one source of truth for the
// file layout of the gingham image, and compares it with the final stage of
// deploy/Dockerfile.
//
// make image builds the image from the layout (hack/image); users with a
// registry build deploy/Dockerfile. The two must give the same paths: the
// package's test fails when the Dockerfile's final stage copies another set
// of files, starts from another base, runs commands (a package install
// would bring files the layout does not list) or has another entrypoint.
package layout
