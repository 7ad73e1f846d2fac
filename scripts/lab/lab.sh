#!/bin/bash
# Low-level lab plumbing (namespaces, switch with mirror port, two libvirt daemons, guest
# image). Driven by scripts/lab/lab.ts; usable by hand: lab.sh setup|teardown|status|vm-start HOST|vm-destroy HOST|virsh HOST ARGS...
set -euo pipefail

LAB=${MIGSCOPE_LAB_DIR:-/var/lib/migscope-lab}
HERE=$(cd "$(dirname "$0")" && pwd)
NS_SW=mlab-sw NS_SRC=mlab-src NS_DST=mlab-dst NS_CLI=mlab-cli
PACKAGES="qemu-system-x86 libvirt-daemon-system libvirt-clients tshark libvirt-wireshark tcpdump busybox-static linux-image-cloud-amd64 iputils-ping ethtool iproute2 util-linux gzip"
declare -A ADDR=([src]=10.77.0.1 [dst]=10.77.0.2 [cli]=10.77.0.3)
declare -A UUID=([src]=6d1a0c1e-77a0-4c2b-9a01-000000000001 [dst]=6d1a0c1e-77a0-4c2b-9a01-000000000002)
GUEST_MODULES="failover net_failover virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_net"

die() { echo "lab: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (namespaces, tc, libvirtd, tcpdump need it)"
ns() { local n=$1; shift; ip netns exec "$n" "$@"; }
nsname() { case $1 in src) echo $NS_SRC;; dst) echo $NS_DST;; cli) echo $NS_CLI;; *) die "unknown host $1";; esac; }
daemon_pid() { local f=$LAB/hosts/$1/run/libvirtd.pid; [ -s "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && cat "$f"; }
# virsh over the daemon's local unix socket, inside its namespaces: control traffic stays off the wire.
host_virsh() { local h=$1; shift; local p; p=$(daemon_pid "$h") || die "libvirtd on $h not running"; nsenter -t "$p" -n -m -u virsh -q -c qemu:///system "$@"; }

install_packages() {
  local missing=""
  for p in $PACKAGES; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
  [ -z "$missing" ] && return 0
  echo "lab: installing$missing"
  DEBIAN_FRONTEND=noninteractive flock /tmp/apt.lock apt-get install -y --no-install-recommends $missing
}

guest_kernel() { ls -1v /boot/vmlinuz-*-cloud-amd64 2>/dev/null | tail -1; }

build_guest() {
  local k; k=$(guest_kernel); [ -n "$k" ] || die "no cloud kernel in /boot (package linux-image-cloud-amd64)"
  local ver=${k#/boot/vmlinuz-} out=$LAB/guest
  if [ -s "$out/initrd.img" ] && [ "$out/initrd.img" -nt "$HERE/guest/init" ] && [ "$(cat "$out/kernel-version" 2>/dev/null)" = "$ver" ]; then return 0; fi
  local t; t=$(mktemp -d)
  mkdir -p "$t"/{bin,sbin,proc,sys,dev,lib/modules} "$out"
  cp /bin/busybox "$t/bin/busybox"
  for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$t/bin/$a"; done
  for m in $GUEST_MODULES; do
    local f; f=$(find "/lib/modules/$ver" -name "$m.ko*" | head -1); [ -n "$f" ] || die "module $m missing for $ver"
    case $f in *.xz) xz -dc "$f" > "$t/lib/modules/$m.ko";; *.zst) zstd -dcq "$f" > "$t/lib/modules/$m.ko";; *) cp "$f" "$t/lib/modules/$m.ko";; esac
  done
  cp "$HERE/guest/init" "$t/init"; chmod +x "$t/init"
  (cd "$t" && find . | cpio -o -H newc --quiet | gzip -9) > "$out/initrd.img"
  cp "$k" "$out/vmlinuz"; echo "$ver" > "$out/kernel-version"
  rm -rf "$t"
  echo "lab: guest built: kernel $ver, initramfs $(stat -c %s "$out/initrd.img") bytes" >&2
}

# KVM when a KVM guest really boots here, else TCG: nested KVM may open /dev/kvm and still hang
# or abort (lab-findings). Probed once with the lab's own guest, cached in $LAB/accel.
probe_accel() {
  if [ -s "$LAB/accel" ]; then cat "$LAB/accel"; return; fi
  local accel=qemu log=$LAB/accel-probe.log
  if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
    rm -f "$log"
    timeout 25 qemu-system-x86_64 -accel kvm -m 128 -display none -no-reboot -nic none \
      -kernel "$LAB/guest/vmlinuz" -initrd "$LAB/guest/initrd.img" \
      -append "console=ttyS0 rdinit=/init panic=-1" -serial "file:$log" >/dev/null 2>&1 &
    local qpid=$!
    for i in $(seq 100); do
      if grep -q "migscope-lab guest up" "$log" 2>/dev/null; then accel=kvm; break; fi
      kill -0 $qpid 2>/dev/null || break
      sleep 0.2
    done
    kill $qpid 2>/dev/null || true; wait $qpid 2>/dev/null || true
  fi
  echo $accel > "$LAB/accel"; echo $accel
}

offloads_off() { local n=$1 d=$2; ns "$n" ethtool -K "$d" tso off gso off gro off tx off >/dev/null 2>&1 || true; }

net_up() {
  if ip netns list | grep -qw $NS_SW; then return 0; fi
  for n in $NS_SW $NS_SRC $NS_DST $NS_CLI; do ip netns add $n; ns $n ip link set lo up; done
  ns $NS_SW ip link add sw type bridge; ns $NS_SW ip link set sw type bridge stp_state 0 forward_delay 0
  # Monitor port: every frame entering the switch is mirrored out of mon0 (tcpdump reads there).
  ns $NS_SW ip link add mon0 type veth peer name mon0p
  ns $NS_SW ip link set mon0 up; ns $NS_SW ip link set mon0p up; ns $NS_SW ip link set sw up
  offloads_off $NS_SW sw; offloads_off $NS_SW mon0; offloads_off $NS_SW mon0p
  for h in src dst cli; do
    local n; n=$(nsname $h)
    ns $NS_SW ip link add sw-$h type veth peer name up0 netns $n
    ns $NS_SW ip link set sw-$h master sw up
    offloads_off $NS_SW sw-$h; offloads_off $n up0
    ns $NS_SW tc qdisc add dev sw-$h ingress
    ns $NS_SW tc filter add dev sw-$h parent ffff: protocol all u32 match u32 0 0 action mirred egress mirror dev mon0
    if [ $h = cli ]; then
      ns $n ip addr add ${ADDR[$h]}/24 dev up0; ns $n ip link set up0 up
    else
      # Host bridge holds the uplink and the VM's tap, so the guest keeps IP and MAC across hosts.
      ns $n ip link add br0 type bridge; ns $n ip link set br0 type bridge stp_state 0 forward_delay 0
      ns $n ip link set up0 master br0 up; ns $n ip addr add ${ADDR[$h]}/24 dev br0; ns $n ip link set br0 up
      offloads_off $n br0
    fi
  done
}

host_dirs() {
  local h=$1 d=$LAB/hosts/$1
  if [ ! -d "$d/etc" ]; then
    mkdir -p "$d"/{etc,run,lib,cache,log}
    cp -a /etc/libvirt/. "$d/etc/"
  fi
  mkdir -p "$d/log/qemu" "$d/lib/boot" "$d/lib/qemu" "$d/run"
  rm -f "$d/etc/qemu/networks/autostart/"*.xml
  cat > "$d/etc/libvirtd.conf" <<CONF
listen_tls = 0
listen_tcp = 1
listen_addr = "${ADDR[$h]}"
auth_tcp = "none"
auth_unix_rw = "none"
host_uuid = "${UUID[$h]}"
log_filters = "1:qemu.qemu_migration 1:qemu.qemu_monitor 1:qemu.qemu_process 1:rpc.virnetserverclient 1:rpc.virnetclient 1:remote 3:rpc.keepalive 3:util 3:conf 3:security 4:*"
log_outputs = "1:file:/var/log/libvirt/libvirtd.log"
CONF
  cat > "$d/etc/qemu.conf" <<CONF
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
namespaces = []
cgroup_controllers = []
stdio_handler = "file"
migration_address = "${ADDR[$h]}"
migration_host = "${ADDR[$h]}"
CONF
  cp "$LAB/guest/vmlinuz" "$LAB/guest/initrd.img" "$d/lib/boot/"
}

daemon_up() {
  local h=$1 n d; n=$(nsname "$h"); d=$LAB/hosts/$h
  daemon_pid "$h" >/dev/null && return 0
  host_dirs "$h"
  rm -f "$d/run/libvirtd.pid"
  mkdir -p /etc/libvirt /run/libvirt /var/lib/libvirt /var/cache/libvirt /var/log/libvirt
  setsid ip netns exec "$n" unshare -m -u --propagation private sh -c "
    hostname lab-$h
    mount --bind $d/etc /etc/libvirt; mount --bind $d/run /run/libvirt; mount --bind $d/lib /var/lib/libvirt
    mount --bind $d/cache /var/cache/libvirt; mount --bind $d/log /var/log/libvirt
    exec libvirtd --listen --pid-file /run/libvirt/libvirtd.pid" </dev/null >"$d/libvirtd.out" 2>&1 &
  for i in $(seq 100); do
    if daemon_pid "$h" >/dev/null && host_virsh "$h" uri >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  cat "$d/libvirtd.out" >&2; die "libvirtd on $h did not come up"
}

domain_xml() { # HOST-INDEPENDENT: paths are libvirt's own, so no path of this machine reaches the wire
  local ram=$1 load=$2 bridge=${3:-br0} accel=${4:-qemu} loadmb=${5:-16}
  cat <<XML
<domain type='$accel'>
  <name>vm</name>
  <uuid>6d1a0c1e-77a0-4c2b-9a01-0000000000aa</uuid>
  <memory unit='MiB'>$ram</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type>
    <kernel>/var/lib/libvirt/boot/vmlinuz</kernel>
    <initrd>/var/lib/libvirt/boot/initrd.img</initrd>
    <cmdline>console=ttyS0 rdinit=/init init_on_free=1 vmip=10.77.0.10/24 load=$load loadmb=$loadmb</cmdline>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <controller type='usb' model='none'/>
    <interface type='bridge'>
      <source bridge='$bridge'/>
      <mac address='52:54:00:77:00:10'/>
      <model type='virtio'/>
    </interface>
    <serial type='file'><source path='/var/log/libvirt/qemu/vm-console.log' append='on'/></serial>
    <video><model type='none'/></video>
    <memballoon model='none'/>
  </devices>
</domain>
XML
}

vm_destroy() { # leave no domain on HOST
  local h=$1
  daemon_pid "$h" >/dev/null || return 0
  host_virsh "$h" domjobabort vm >/dev/null 2>&1 || true
  host_virsh "$h" destroy vm >/dev/null 2>&1 || true
  host_virsh "$h" undefine vm >/dev/null 2>&1 || true
}

vm_start() { # HOST RAM LOAD [ACCEL]: fresh persistent guest on HOST, wait until it answers pings
  local h=$1 ram=${2:-128} load=${3:-0} accel=${4:-qemu}
  vm_destroy src; vm_destroy dst
  local x=$LAB/hosts/$h/lib/vm.xml
  domain_xml "$ram" "$load" br0 "$accel" > "$x"
  host_virsh "$h" define /var/lib/libvirt/vm.xml >/dev/null
  host_virsh "$h" start vm >/dev/null
  for i in $(seq 300); do
    if ns $NS_CLI ping -c1 -W1 -q 10.77.0.10 >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  die "guest on $h did not answer pings within 60 s"
}

setup() {
  install_packages
  mkdir -p "$LAB"
  build_guest
  echo "lab: accelerator: $(probe_accel) (qemu = TCG)"
  net_up
  daemon_up src; daemon_up dst
  echo "lab: up (namespaces $NS_SW $NS_SRC $NS_DST $NS_CLI, libvirtd src pid $(daemon_pid src), dst pid $(daemon_pid dst))"
}

teardown() {
  for h in src dst; do
    local p; p=$(daemon_pid "$h" || true)
    if [ -n "$p" ]; then
      vm_destroy "$h"
      kill "$p" 2>/dev/null || true
      for i in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$p" 2>/dev/null || true
    fi
  done
  # Any process still inside a lab namespace (qemu, tcpdump, ping) belongs to the lab.
  for n in $NS_SW $NS_SRC $NS_DST $NS_CLI; do
    if ip netns list | grep -qw "$n"; then
      for p in $(ip netns pids "$n" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
      ip netns del "$n"
    fi
  done
  echo "lab: down"
}

status() {
  ip netns list | grep mlab- || echo "no lab namespaces"
  for h in src dst; do echo "libvirtd $h: $(daemon_pid $h || echo down)"; done
}

cmd=${1:-}; shift || true
case $cmd in
  setup) setup;;
  teardown) teardown;;
  status) status;;
  install) install_packages;;
  build-guest) mkdir -p "$LAB"; build_guest;;
  vm-start) vm_start "$@";;
  vm-destroy) vm_destroy "$@";;
  # exec: the caller's signal (e.g. stopping an event monitor) reaches virsh itself.
  virsh) h=$1; shift; p=$(daemon_pid "$h") || die "libvirtd on $h not running"; exec nsenter -t "$p" -n -m -u virsh -q -c qemu:///system "$@";;
  daemon-pid) daemon_pid "$1";;
  domain-xml) domain_xml "$@";;
  accel) probe_accel;;
  *) die "usage: lab.sh setup|teardown|status|install|build-guest|vm-start HOST RAM LOAD|vm-destroy HOST|virsh HOST ARGS|daemon-pid HOST|domain-xml RAM LOAD [BRIDGE]";;
esac
