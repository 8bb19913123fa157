#!/bin/sh
# install-cni: run by the gingham-node DaemonSet's init container. Copies the
# CNI binaries onto the host, writes a kubeconfig for the CNI plugin from the
# pod's service account, and renders the conflist from $CNI_NETWORK_CONFIG.
set -eu

BIN_SRC=${BIN_SRC:-/opt/cni/bin}
HOST_BIN=${HOST_BIN:-/host/opt/cni/bin}
HOST_NET=${HOST_NET:-/host/etc/cni/net.d}
CNI_CONF_NAME=${CNI_CONF_NAME:-10-gingham.conflist}
CNI_MTU=${CNI_MTU:-0}
# The pod's service account (overridable for deploy_test.go).
SA=${SA_DIR:-/var/run/secrets/kubernetes.io/serviceaccount}
KUBECONFIG_NAME=gingham-kubeconfig

: "${CNI_NETWORK_CONFIG:?set from the gingham-config ConfigMap}"
: "${KUBERNETES_NODE_NAME:?set from spec.nodeName}"

mkdir -p "$HOST_BIN" "$HOST_NET"

# Copy to a temporary name, then rename: a container runtime calling the
# plugin never sees a half-written binary.
for b in gingham gingham-ipam portmap; do
  cp "$BIN_SRC/$b" "$HOST_BIN/.$b.tmp"
  chmod 0755 "$HOST_BIN/.$b.tmp"
  mv -f "$HOST_BIN/.$b.tmp" "$HOST_BIN/$b"
done

# The plugin's kubeconfig: the service account's token and CA. The token is
# time-bound; gingham-node rewrites this file when the kubelet rotates the
# mounted token (GINGHAM_CNI_KUBECONFIG).
umask 077
cat > "$HOST_NET/.$KUBECONFIG_NAME.tmp" <<KC
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: https://${KUBERNETES_SERVICE_HOST}:${KUBERNETES_SERVICE_PORT}
    certificate-authority-data: $(base64 < "$SA/ca.crt" | tr -d '\n')
users:
- name: gingham-cni
  user:
    token: $(cat "$SA/token")
contexts:
- name: gingham-cni
  context:
    cluster: local
    user: gingham-cni
current-context: gingham-cni
KC
mv -f "$HOST_NET/.$KUBECONFIG_NAME.tmp" "$HOST_NET/$KUBECONFIG_NAME"

umask 022
printf '%s\n' "$CNI_NETWORK_CONFIG" \
  | sed -e "s|__KUBERNETES_NODE_NAME__|${KUBERNETES_NODE_NAME}|g" \
        -e "s|__CNI_MTU__|${CNI_MTU}|g" \
        -e "s|__KUBECONFIG_FILEPATH__|/etc/cni/net.d/${KUBECONFIG_NAME}|g" \
  > "$HOST_NET/.$CNI_CONF_NAME.tmp"
mv -f "$HOST_NET/.$CNI_CONF_NAME.tmp" "$HOST_NET/$CNI_CONF_NAME"
echo "install-cni: installed gingham CNI for node ${KUBERNETES_NODE_NAME} (${HOST_NET}/${CNI_CONF_NAME})"
