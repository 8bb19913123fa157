package felix

import (
	"crypto/sha1"
	"encoding/hex"
)

// HostVethName is the host side of a pod's veth: prefix + the first 11 hex
// characters of sha1("<namespace>.<pod>"). The CNI plugin creates it and the
// agent derives it from the Pod, so both must use this one function.
func HostVethName(prefix, namespace, pod string) string {
	h := sha1.Sum([]byte(namespace + "." + pod))
	return prefix + hex.EncodeToString(h[:])[:11]
}
