// Package images defines the images make image builds: what goes into each
// rootfs and under which references.
//
//   - gingham: the file layout of deploy/image-layout on a busybox base,
//     tagged ghcr.io/gingham-net/gingham:<version> (never latest);
//   - pause, agnhost and busybox: the references the pinned
//     k8s.io/kubernetes e2e suite asks for (test/utils/image/manifest.go),
//     built from its sources (pause.c, porter's certificates), make tools'
//     agnhost and Debian's packages;
//   - coredns, tagged with the version bin/coredns was built at.
//
// Nothing comes from a base image or a registry: every file is a binary of
// make build or make tools (bin/), a Kubernetes source file, or a file of a
// host Debian package (busybox-static, curl, netcat-openbsd, dash, bash, gcc
// for pause). Shared libraries of the dynamically linked ones are found with
// ldd.
package images
