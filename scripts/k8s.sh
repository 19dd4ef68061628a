#!/usr/bin/env bash
# A real one-node Kubernetes cluster for the clean room's Kubernetes backend tests
# (docs/kubernetes.md). Kubernetes 1.20.2 is built from Debian's own source package with
# Debian's Go (no k3s, kind or minikube can be had here), then run with Debian's etcd, a
# private containerd, the standard CNI plugins and a locally built pause image.
#
#   scripts/k8s.sh build   build the binaries once (cached under build/k8s, keyed by inputs)
#   scripts/k8s.sh up      build if needed, start the cluster, print the kubeconfig's path
#   scripts/k8s.sh down    stop everything this script started, by PID, and undo its changes
#   scripts/k8s.sh status  say whether the cluster is up
#   scripts/k8s.sh images  import the workspace images again (after a rebuild)
#
# Everything the cluster writes lives under state/k8s (CLEANROOM_K8S_STATE_DIR) except the
# few fixed paths Kubernetes 1.20 and containerd 1.6 insist on, which `down` removes. The
# Docker engine's own rules, chains and containers are never touched: this script adds one
# chain of its own (CLEANROOM-K8S-FWD) and one jump to it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

K8S_VERSION="1.20.5+really1.20.2-1.1+deb12u1"
K8S_WHAT="cmd/kube-apiserver cmd/kube-controller-manager cmd/kube-scheduler cmd/kubelet"
BUILD_ROOT="${CLEANROOM_K8S_BUILD_DIR:-$ROOT/build/k8s}"
STATE="${CLEANROOM_K8S_STATE_DIR:-$ROOT/state/k8s}"
# Addresses of the test cluster: a bridge of our own, pods and services in private ranges
# that Docker's default pools do not use. Overridable so two clusters never collide.
BRIDGE="${CLEANROOM_K8S_BRIDGE:-crk8s0}"
NODE_IP="${CLEANROOM_K8S_NODE_IP:-10.77.0.1}"
POD_CIDR="${CLEANROOM_K8S_POD_CIDR:-10.77.0.0/24}"
SERVICE_CIDR="${CLEANROOM_K8S_SERVICE_CIDR:-10.96.0.0/16}"
API_PORT="${CLEANROOM_K8S_API_PORT:-16443}"
ETCD_PORT="${CLEANROOM_K8S_ETCD_PORT:-23790}"
NODE_NAME="cleanroom-k8s"
CGROUP_NAME="cleanroom-k8s"
FWD_CHAIN="CLEANROOM-K8S-FWD"
PAUSE_IMAGE="cleanroom.local/pause:1"

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'cleanroom k8s: %s\n' "$*" >&2; exit 1; }

need_root() { [ "$(id -u)" -eq 0 ] || die "the test cluster needs root (it runs a kubelet and containerd)"; }

ensure_packages() {
  local want=()
  command -v go >/dev/null || want+=(golang-go)
  command -v etcd >/dev/null || want+=(etcd-server)
  [ -x /usr/lib/cni/bridge ] || want+=(containernetworking-plugins)
  command -v containerd >/dev/null || want+=(containerd)
  command -v runc >/dev/null || want+=(runc)
  command -v rsync >/dev/null || want+=(rsync) # the Kubernetes Makefile needs it
  command -v jq >/dev/null || want+=(jq)
  command -v gcc >/dev/null || want+=(gcc libc6-dev)
  command -v conntrack >/dev/null || want+=(conntrack)
  command -v socat >/dev/null || want+=(socat)
  command -v openssl >/dev/null || want+=(openssl)
  command -v patch >/dev/null || want+=(patch)
  command -v kubectl >/dev/null || want+=(kubernetes-client)
  [ ${#want[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || die "missing: ${want[*]} (install them; on Debian: apt-get install -y ${want[*]})"
  say "installing ${want[*]}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${want[@]}" >/dev/null
}

# The build is keyed by everything that goes into it: the source package, Go's version,
# the list of binaries and this script's build recipe. A changed input builds afresh.
build_key() {
  {
    echo "$K8S_VERSION"
    echo "$K8S_WHAT"
    go version 2>/dev/null || echo "no-go"
    sed -n '/^# >>> build recipe/,/^# <<< build recipe/p' "${BASH_SOURCE[0]}"
  } | sha256sum | cut -c1-16
}

bin_dir() { echo "$BUILD_ROOT/$(build_key)/bin"; }

# >>> build recipe
cmd_build() {
  need_root
  ensure_packages
  local key out work
  key="$(build_key)"
  out="$BUILD_ROOT/$key"
  if [ -x "$out/bin/kubelet" ] && [ -x "$out/bin/pause" ]; then
    say "kubernetes binaries cached in $out"
    return 0
  fi
  work="$BUILD_ROOT/work"
  rm -rf "$work" && mkdir -p "$work/apt/lists/partial" "$work/src"
  # Debian's source package, fetched with a private apt configuration so that the
  # machine's own apt sources are left as they are.
  local mirror sec
  mirror="$(sed -n 's/^URIs: //p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)"
  sec="$(sed -n 's/^URIs: //p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | sed -n 2p)"
  mirror="${mirror:-http://deb.debian.org/debian}"
  {
    echo "deb-src $mirror bookworm main"
    echo "deb-src $mirror bookworm-updates main"
    [ -n "$sec" ] && echo "deb-src $sec bookworm-security main"
  } >"$work/apt/sources.list"
  local apto=(-o "Dir::Etc::SourceList=$work/apt/sources.list" -o Dir::Etc::SourceParts=/nonexistent
    -o "Dir::State::Lists=$work/apt/lists")
  say "fetching Debian's kubernetes $K8S_VERSION source"
  apt-get "${apto[@]}" update -q >/dev/null
  (cd "$work/src" && apt-get "${apto[@]}" source -q --download-only "kubernetes=$K8S_VERSION" >/dev/null)
  mkdir -p "$work/src/k8s"
  tar xzf "$work"/src/kubernetes_*.orig.tar.gz -C "$work/src/k8s" --strip-components=1
  tar xJf "$work"/src/kubernetes_*.debian.tar.xz -C "$work/src"
  if [ -f "$work/src/debian/patches/series" ]; then
    local p
    while read -r p; do
      case "$p" in '' | '#'*) continue ;; esac
      patch -d "$work/src/k8s" -p1 -s <"$work/src/debian/patches/$p"
    done <"$work/src/debian/patches/series"
  fi
  say "building $K8S_WHAT (about 8.5 minutes on 2 cores)"
  mkdir -p "$BUILD_ROOT/gocache" "$work/home"
  (cd "$work/src/k8s" && GOPROXY=off GOFLAGS=-mod=vendor CGO_ENABLED=0 KUBE_BUILD_PLATFORMS=linux/amd64 \
    GOCACHE="$BUILD_ROOT/gocache" HOME="$work/home" nice make WHAT="$K8S_WHAT" >"$work/build.log" 2>&1) ||
    { tail -20 "$work/build.log" >&2; die "kubernetes build failed (log: $work/build.log)"; }
  mkdir -p "$out.tmp/bin"
  local b
  for b in $K8S_WHAT; do cp "$work/src/k8s/_output/bin/${b#cmd/}" "$out.tmp/bin/"; done
  # The sandbox ("pause") image: a few lines of C, so no registry is needed.
  gcc -Os -static -o "$out.tmp/bin/pause" "$ROOT/scripts/k8s/pause.c"
  rm -rf "$out" && mv "$out.tmp" "$out"
  rm -rf "$work"
  say "kubernetes binaries in $out"
}
# <<< build recipe


kubectl_() { kubectl --kubeconfig "$STATE/admin.kubeconfig" "$@"; }

# -- PKI: a CA, the apiserver's serving cert, admin and node client certs, SA keys ----
make_pki() {
  local pki="$STATE/pki"
  [ -f "$pki/done" ] && return 0
  mkdir -p "$pki" && chmod 700 "$pki"
  (
    cd "$pki"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 30 \
      -subj "/CN=cleanroom-k8s-ca" 2>/dev/null
    cert() { # name subject san
      openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
      local ext="$1.ext"
      {
        echo "basicConstraints=CA:FALSE"
        echo "keyUsage=digitalSignature,keyEncipherment"
        echo "extendedKeyUsage=serverAuth,clientAuth"
        [ -n "$3" ] && echo "subjectAltName=$3"
      } >"$ext"
      openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$1.crt" \
        -days 30 -extfile "$ext" 2>/dev/null
    }
    local svc_ip
    svc_ip="$(python3 -c "import ipaddress,sys; print(ipaddress.ip_network(sys.argv[1])[1])" "$SERVICE_CIDR")"
    cert apiserver "/CN=kube-apiserver" "IP:$NODE_IP,IP:127.0.0.1,IP:$svc_ip,DNS:kubernetes,DNS:kubernetes.default"
    cert admin "/O=system:masters/CN=cleanroom-admin" ""
    cert node "/O=system:nodes/CN=system:node:$NODE_NAME" "IP:$NODE_IP,DNS:$NODE_NAME"
    cert controller "/CN=system:kube-controller-manager" ""
    cert scheduler "/CN=system:kube-scheduler" ""
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    touch done
  )
}

kubeconfig() { # name cert
  cat >"$STATE/$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: cleanroom
  cluster:
    server: https://$NODE_IP:$API_PORT
    certificate-authority: $STATE/pki/ca.crt
users:
- name: $2
  user:
    client-certificate: $STATE/pki/$2.crt
    client-key: $STATE/pki/$2.key
contexts:
- name: cleanroom
  context: {cluster: cleanroom, user: $2}
current-context: cleanroom
EOF
  chmod 600 "$STATE/$1.kubeconfig"
}

# Start a daemon in its own session; its PID goes to $STATE/pids/<name> (inside this
# non-interactive script `$!` is the daemon's own PID, not setsid's).
start_daemon() {
  local name="$1"
  shift
  setsid "$@" >"$STATE/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$STATE/pids/$name"
}

alive() { [ -f "$STATE/pids/$1" ] && kill -0 "$(cat "$STATE/pids/$1")" 2>/dev/null; }

wait_for() { # seconds description command...
  local deadline=$((SECONDS + $1)) what="$2"
  shift 2
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "timed out waiting for $what (logs: $STATE/logs)"
    sleep 0.5
  done
}

cgroup_dirs() {
  local c
  for c in /sys/fs/cgroup/*/; do
    c="${c%/}"
    case "$(basename "$c")" in unified) continue ;; esac
    [ -f "$c/cgroup.procs" ] && echo "$c/$CGROUP_NAME"
  done
}

SYSCTLS="vm.overcommit_memory kernel.panic kernel.panic_on_oops"

cmd_up() {
  need_root
  cmd_build
  local bin
  bin="$(bin_dir)"
  if alive apiserver && alive kubelet; then
    say "cluster already up"
    echo "$STATE/admin.kubeconfig"
    return 0
  fi
  mkdir -p "$STATE"/{pids,logs,etcd,cni/net.d,cni/data,kubelet/root,kubelet/certs,containerd,images}
  make_pki
  kubeconfig admin admin
  kubeconfig node node
  kubeconfig controller controller
  kubeconfig scheduler scheduler
  # What we change on the host, saved first so that `down` restores it.
  [ -f "$STATE/sysctl.saved" ] || for k in $SYSCTLS; do echo "$k=$(sysctl -n "$k")"; done >"$STATE/sysctl.saved"
  for d in /var/log/pods /var/log/containers /var/lib/kubelet /var/lib/cni /run/containerd/runc/k8s.io /run/containerd/fifo; do
    [ -e "$d" ] || echo "$d"
  done >>"$STATE/created-paths"
  # Our bridge, before the apiserver (which binds to its address).
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
    ip addr add "$NODE_IP/${POD_CIDR#*/}" dev "$BRIDGE"
  fi
  ip link set "$BRIDGE" up
  # Docker sets FORWARD's policy to DROP; pod-to-pod traffic on our bridge goes through
  # our own chain (appended: no Docker rule matches our bridge).
  iptables -N "$FWD_CHAIN" 2>/dev/null || true
  iptables -C "$FWD_CHAIN" -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT 2>/dev/null ||
    iptables -A "$FWD_CHAIN" -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT
  iptables -C FORWARD -m comment --comment cleanroom-k8s -j "$FWD_CHAIN" 2>/dev/null ||
    iptables -A FORWARD -m comment --comment cleanroom-k8s -j "$FWD_CHAIN"
  # kubelet's cgroup root, in every v1 hierarchy (no systemd here: cgroupfs driver).
  local c
  for c in $(cgroup_dirs); do
    mkdir -p "$c"
    case "$c" in
      */cpuset/*)
        cat "$(dirname "$c")/cpuset.cpus" >"$c/cpuset.cpus"
        cat "$(dirname "$c")/cpuset.mems" >"$c/cpuset.mems"
        ;;
    esac
  done

  say "etcd"
  start_daemon etcd etcd --name cleanroom-k8s --data-dir "$STATE/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 10))" \
    --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 10))" \
    --initial-cluster "cleanroom-k8s=http://127.0.0.1:$((ETCD_PORT + 10))"

  say "containerd (private)"
  cat >"$STATE/containerd/config.toml" <<EOF
version = 2
root = "$STATE/containerd/root"
state = "$STATE/containerd/state"
[grpc]
  address = "$STATE/containerd/containerd.sock"
[ttrpc]
  address = "$STATE/containerd/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # This machine drops CAP_SYS_RESOURCE from root's bounding set: without this every
  # sandbox fails on oom_score_adj=-998.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
EOF
  cat >"$STATE/cni/net.d/10-cleanroom.conflist" <<EOF
{"cniVersion": "0.4.0", "name": "cleanroom-k8s", "plugins": [
  {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$NODE_IP"}]],
            "dataDir": "$STATE/cni/data"}},
  {"type": "loopback"}]}
EOF
  start_daemon containerd containerd --config "$STATE/containerd/config.toml"
  wait_for 30 containerd ctr -a "$STATE/containerd/containerd.sock" version
  import_images "$bin"

  say "kube-apiserver"
  local pki="$STATE/pki"
  start_daemon apiserver "$bin/kube-apiserver" --advertise-address="$NODE_IP" --bind-address="$NODE_IP" \
    --secure-port="$API_PORT" --insecure-port=0 --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --service-cluster-ip-range="$SERVICE_CIDR" --authorization-mode=Node,RBAC \
    --client-ca-file="$pki/ca.crt" --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
    --kubelet-client-certificate="$pki/admin.crt" --kubelet-client-key="$pki/admin.key" \
    --kubelet-certificate-authority="$pki/ca.crt" --kubelet-preferred-address-types=InternalIP \
    --service-account-issuer=https://kubernetes.default.svc --service-account-key-file="$pki/sa.pub" \
    --service-account-signing-key-file="$pki/sa.key" --allow-privileged=false \
    --enable-admission-plugins=NodeRestriction,ServiceAccount,LimitRanger,ResourceQuota
  wait_for 60 "the apiserver" kubectl_ get --raw /readyz

  say "controller-manager, scheduler"
  start_daemon controller-manager "$bin/kube-controller-manager" --kubeconfig="$STATE/controller.kubeconfig" \
    --bind-address=127.0.0.1 --port=0 --leader-elect=false --use-service-account-credentials=true \
    --service-account-private-key-file="$pki/sa.key" --root-ca-file="$pki/ca.crt" \
    --cluster-signing-cert-file="$pki/ca.crt" --cluster-signing-key-file="$pki/ca.key" \
    --controllers='*,-nodeipam,-cloud-node-lifecycle,-route,-service'
  start_daemon scheduler "$bin/kube-scheduler" --kubeconfig="$STATE/scheduler.kubeconfig" \
    --bind-address=127.0.0.1 --port=0 --leader-elect=false

  say "kubelet"
  cat >"$STATE/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
cgroupRoot: /$CGROUP_NAME
cgroupsPerQOS: true
failSwapOn: false
makeIPTablesUtilChains: false
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
tlsCertFile: $pki/node.crt
tlsPrivateKeyFile: $pki/node.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $pki/ca.crt}
# Only clients with a certificate of our CA reach the kubelet at all (the apiserver).
authorization: {mode: AlwaysAllow}
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
resolvConf: /etc/resolv.conf
EOF
  start_daemon kubelet "$bin/kubelet" --config="$STATE/kubelet/config.yaml" \
    --kubeconfig="$STATE/node.kubeconfig" --container-runtime=remote \
    --container-runtime-endpoint="unix://$STATE/containerd/containerd.sock" \
    --root-dir="$STATE/kubelet/root" --cert-dir="$STATE/kubelet/certs" \
    --node-ip="$NODE_IP" --hostname-override="$NODE_NAME"
  wait_for 90 "the node to be Ready" node_ready
  say "cluster up: KUBECONFIG=$STATE/admin.kubeconfig"
  echo "$STATE/admin.kubeconfig"
}

node_ready() {
  [ "$(kubectl_ get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = True ]
}

# Images come from the local Docker engine (read only: `docker save`), or are built
# here (the pause image): no registry is ever asked.
import_images() {
  local bin="$1" ctr_=(ctr -a "$STATE/containerd/containerd.sock" -n k8s.io)
  if ! "${ctr_[@]}" images ls -q | grep -qx "$PAUSE_IMAGE"; then
    python3 "$ROOT/scripts/k8s/oci_image.py" "$STATE/images/pause.tar" "$PAUSE_IMAGE" \
      "$bin/pause=/pause" /pause
    "${ctr_[@]}" images import "$STATE/images/pause.tar" >/dev/null
  fi
  local image id
  for image in ${CLEANROOM_K8S_IMAGES:-${CLEANROOM_IMAGE_REPOSITORY:-cleanroom}/notebook:latest}; do
    id="$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null)" ||
      die "image $image is not built on the Docker engine (cleanroom images build)"
    local mark="$STATE/images/$(echo "$image" | tr '/:' '__').id"
    if [ -f "$mark" ] && [ "$(cat "$mark")" = "$id" ] && "${ctr_[@]}" images ls -q | grep -qx "docker.io/$image"; then
      continue
    fi
    say "importing $image into the cluster"
    docker save "$image" | "${ctr_[@]}" images import - >/dev/null
    echo "$id" >"$mark"
  done
}

stop_pid() { # name [seconds]
  local f="$STATE/pids/$1" pid i
  [ -f "$f" ] || return 0
  pid="$(cat "$f")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq $((${2:-20} * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

cmd_down() {
  need_root
  [ -d "$STATE" ] || { say "no cluster state in $STATE"; return 0; }
  if alive apiserver && alive kubelet; then
    # Pods first, while the kubelet still runs: it tears their netns and veths down.
    kubectl_ delete pods --all --all-namespaces --grace-period=1 --wait=true --timeout=60s >/dev/null 2>&1 || true
  fi
  local name
  for name in kubelet scheduler controller-manager apiserver etcd; do stop_pid "$name"; done
  local ctr_=(ctr -a "$STATE/containerd/containerd.sock" -n k8s.io) t
  if alive containerd; then
    for t in $("${ctr_[@]}" tasks ls -q 2>/dev/null); do
      "${ctr_[@]}" tasks kill -s KILL "$t" >/dev/null 2>&1 || true
      "${ctr_[@]}" tasks rm -f "$t" >/dev/null 2>&1 || true
    done
  fi
  stop_pid containerd
  # Shims of *our* containerd (their command line names our socket), never another's.
  local pid
  for pid in $(pgrep -f "containerd-shim-runc-v2 .*-address $STATE/containerd/containerd.sock" || true); do
    kill -KILL "$pid" 2>/dev/null || true
  done
  # Mounts under our state folder (overlay snapshots, pod volumes, netns), deepest first.
  awk -v s="$STATE/" 'index($2, s) == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
  # The pods' network namespaces went with them (the kubelet runs CNI DEL when a pod is
  # deleted); we never delete a netns by name pattern, it could be someone else's.
  ip link delete "$BRIDGE" 2>/dev/null || true
  while iptables -D FORWARD -m comment --comment cleanroom-k8s -j "$FWD_CHAIN" 2>/dev/null; do :; done
  iptables -F "$FWD_CHAIN" 2>/dev/null || true
  iptables -X "$FWD_CHAIN" 2>/dev/null || true
  local c
  # The kubelet also makes our cgroup root in the unified (v2) hierarchy of this hybrid
  # setup, which `up` does not create: remove it as well.
  for c in $(cgroup_dirs) /sys/fs/cgroup/unified/"$CGROUP_NAME"; do
    [ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
  if [ -f "$STATE/sysctl.saved" ]; then
    while IFS= read -r kv; do sysctl -q -w "$kv" >/dev/null || true; done <"$STATE/sysctl.saved"
    rm -f "$STATE/sysctl.saved"
  fi
  if [ -f "$STATE/created-paths" ]; then
    while read -r d; do rm -rf "$d"; done <"$STATE/created-paths"
    rm -f "$STATE/created-paths"
  fi
  # etcd's data and the kubelet's pod folders go: the next `up` is a fresh cluster.
  # The PKI and the containerd image store stay (re-importing a 1 GB image takes a while).
  rm -rf "$STATE/etcd" "$STATE/kubelet" "$STATE/cni/data" "$STATE/containerd/state" "$STATE/pids"
  say "cluster down"
}

cmd_status() {
  if alive apiserver && alive kubelet && node_ready; then
    echo "up: KUBECONFIG=$STATE/admin.kubeconfig"
  else
    echo "down"
    return 1
  fi
}

case "${1:-}" in
  build) cmd_build ;;
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  kubeconfig) echo "$STATE/admin.kubeconfig" ;;
  images)
    need_root
    alive containerd || die "the cluster is down (scripts/k8s.sh up)"
    import_images "$(bin_dir)"
    ;;
  *) die "usage: scripts/k8s.sh build|up|down|status|kubeconfig|images" ;;
esac
