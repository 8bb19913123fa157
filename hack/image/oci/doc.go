// Package oci writes container images as OCI image-layout tar archives,
// without a registry, a container engine or a base image.
//
// An image is one layer built from a Tree (the file system, each file read
// from the host at write time) plus an image config. The archive holds
// oci-layout, index.json (one manifest descriptor per reference, named by
// both the io.containerd.image.name and org.opencontainers.image.ref.name
// annotations, so `ctr images import` names the image by its full
// reference), a Docker-style manifest.json with RepoTags (for `docker
// load`), and the blobs.
//
// Invariants:
//   - Output is a function of the Tree's contents and the Image alone:
//     entries are sorted, every mtime is EpochSeconds, owners are 0:0 with no
//     names, gzip headers carry no name or time. Two builds of the same
//     inputs give the same manifest digest (tested).
//   - Every parent directory of an entry is in the layer (0755 unless the
//     Tree sets it), so unpacking never invents directories with another
//     mode.
//   - An archive is written to a temporary file and renamed: a reader never
//     sees a half-written archive.
package oci
