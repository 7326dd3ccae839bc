# Podman settings this kind of VM needs (sourced by build-image.sh and the image test):
# - runc: crun refuses this VM's hybrid cgroup layout ("cgroups in hybrid mode not supported");
# - default_ulimits: root lacks the capability to raise limits here, so containers get the
#   host's hard limits instead of Podman's defaults ("setrlimit ... Operation not permitted");
# - cgroupfs and a file event log: there is no systemd.
# Kept in a file of its own under /var/tmp, pointed at by CONTAINERS_CONF: the machine's own
# /etc/containers is left alone.
PODMAN_CONF_DIR="${PODMAN_CONF_DIR:-/var/tmp/mlservice-podman}"
mkdir -p "$PODMAN_CONF_DIR"
NOFILE="$(ulimit -Hn)"
[ "$NOFILE" = unlimited ] && NOFILE=1048576
cat > "$PODMAN_CONF_DIR/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=$NOFILE:$NOFILE", "nproc=32768:32768"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
export CONTAINERS_CONF="$PODMAN_CONF_DIR/containers.conf"
