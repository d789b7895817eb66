#!/usr/bin/env bash
# QGIS version matrix: run the QGIS test tiers of this checkout inside a Debian chroot that carries
# a newer QGIS than the host's Debian 12 (3.22). Built on first use, kept under .chroots/, rebuilt
# when its package list changes (hash stamp), so a second run adds no setup time.
#
#   tools/qgis_chroot.sh 3.40 setup                       build or refresh the chroot only
#   tools/qgis_chroot.sh 3.40 test [core processing e2e desktop]  run tiers, counts in out/test-matrix/
#   tools/qgis_chroot.sh 3.40 run CMD...                  any command, in the checkout, inside it
#
# Everything runs in a private mount namespace (unshare -m), so the bind mounts of /proc, /dev and
# the checkout vanish with the process even if it is killed; a trap also unmounts them in order.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
SHARED=$(cd "$REPO/.." && pwd)/shared   # tests read ../shared/data relative to the checkout

usage() { echo "usage: $0 {3.40|3.44} {setup|test [tier...]|run CMD...}" >&2; exit 2; }
[ $# -ge 2 ] || usage
VERSION=$1; ACTION=$2; shift 2
case "$VERSION" in
    3.40) SUITE=trixie ;;   # QGIS 3.40.x LTR, Python 3.13, numpy 2.2
    3.44) SUITE=forky ;;    # QGIS 3.44.x, Python 3.14, numpy 2.4 (forky = Debian testing, like sid)
    *) echo "qgis_chroot: no chroot for QGIS '$VERSION'; choose 3.40 or 3.44 (make test QGIS=3.22 is the host's)" >&2; exit 2 ;;
esac
MIRROR=${JANJA_DEBIAN_MIRROR:-http://deb.debian.org/debian}
ROOT_DIR=${JANJA_CHROOTS:-$REPO/.chroots}
C=$ROOT_DIR/$SUITE

# What the processing, e2e (qgis_process) and desktop (Xvfb) tiers need from Debian. OpenBLAS as on
# the host (a minbase chroot without it gets the reference BLAS, and kriging runs several times slower).
APT_PACKAGES="qgis python3-qgis qgis-providers python3-numpy python3-scipy python3-gdal python3-pytest \
python3-pip xvfb xauth ca-certificates libopenblas0-pthread e2fsprogs gdal-bin chromium"
# Pip-only packages go into a --target folder, as the plugin's own dependency installer does it.
PIP_REQUIREMENTS=$REPO/tools/qgis_chroot_requirements.txt
DEPS=/opt/janja-deps   # inside the chroot; on PYTHONPATH for pytest, qgis_process and the desktop

if [ "$(id -u)" != 0 ]; then
    echo "qgis_chroot: QGIS $VERSION runs in a chroot, which needs root (run make test as root, or QGIS=3.22)." >&2
    exit 1
fi
if ! command -v debootstrap >/dev/null; then
    echo "qgis_chroot: installing debootstrap (first use)"
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends debootstrap >/dev/null
fi
for tool in debootstrap unshare flock chroot; do
    command -v "$tool" >/dev/null || {
        echo "qgis_chroot: '$tool' is missing; install it with: apt-get install -y debootstrap util-linux" >&2; exit 1; }
done

# Re-exec once in a private mount namespace.
if [ -z "${JANJA_CHROOT_NS:-}" ]; then
    mkdir -p "$ROOT_DIR"
    export JANJA_CHROOT_NS=1
    exec unshare --mount --propagation private "$0" "$VERSION" "$ACTION" "$@"
fi
# Runs share the chroot (shared lock for their whole life); building or refreshing it takes the
# lock alone, so a rebuild never pulls the chroot from under a running test.
exec 9>"$ROOT_DIR/$SUITE.lock"
flock -s 9

log() { echo "qgis_chroot[QGIS $VERSION, $SUITE]: $*"; }

MOUNTED=()
cleanup() {
    local i
    for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do
        umount "${MOUNTED[$i]}" 2>/dev/null || umount -l "${MOUNTED[$i]}" 2>/dev/null || true
    done
    MOUNTED=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bind() {  # bind SRC DST [ro]
    mkdir -p "$2"
    mount --bind "$1" "$2"
    MOUNTED+=("$2")
    if [ "${3:-}" = ro ]; then mount -o remount,bind,ro "$2"; fi
}

mount_system() {
    mkdir -p "$C/proc" "$C/dev"
    mount -t proc proc "$C/proc"; MOUNTED+=("$C/proc")
    bind /dev "$C/dev"
    bind /dev/pts "$C/dev/pts"
    mount -t tmpfs -o mode=1777 shm "$C/dev/shm"; MOUNTED+=("$C/dev/shm")
    cp -L /etc/resolv.conf "$C/etc/resolv.conf"
    # The host's CA bundle (it may trust an egress proxy) for pip's https inside the chroot.
    cp -L /etc/ssl/certs/ca-certificates.crt "$C/etc/janja-host-ca.crt"
}

in_chroot() {  # in_chroot CMD...: clean environment, headless Qt
    chroot "$C" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive QT_QPA_PLATFORM=offscreen XDG_RUNTIME_DIR=/tmp/runtime-0 \
        PYTHONPATH=$DEPS PIP_CERT=/etc/janja-host-ca.crt PIP_DISABLE_PIP_VERSION_CHECK=1 \
        PIP_DEFAULT_TIMEOUT=180 JANJA_QGIS_LABEL="QGIS $VERSION ($SUITE chroot)" "$@"
}

build_base() {
    if findmnt -rn -o TARGET | grep -q "^$C/"; then
        echo "qgis_chroot: something is still mounted under $C; unmount it before a rebuild." >&2; exit 1
    fi
    rm -rf --one-file-system "$C" "$C.partial"
    local t0=$SECONDS script=""
    # Debian 12's debootstrap has no script for forky; sid's is the same recipe.
    [ -e "/usr/share/debootstrap/scripts/$SUITE" ] || script=/usr/share/debootstrap/scripts/sid
    log "building a minbase chroot in $C (first use or package list changed)"
    nice -n 10 debootstrap --variant=minbase "$SUITE" "$C.partial" "$MIRROR" $script >/dev/null
    mv "$C.partial" "$C"
    # Testing suites carry a Valid-Until date; a mirror snapshot older than that (as on the CI
    # machines) would make apt refuse it. The packages are still signed and checked.
    echo 'Acquire::Check-Valid-Until "false";' > "$C/etc/apt/apt.conf.d/99janja-no-valid-until"
    # No package may start a service inside the chroot.
    printf '#!/bin/sh\nexit 101\n' > "$C/usr/sbin/policy-rc.d"; chmod +x "$C/usr/sbin/policy-rc.d"
    mount_system
    log "installing $APT_PACKAGES"
    in_chroot nice -n 10 apt-get -q -o Dpkg::Use-Pty=0 update >/dev/null
    # shellcheck disable=SC2086
    in_chroot nice -n 10 apt-get -q -y -o Dpkg::Use-Pty=0 install --no-install-recommends $APT_PACKAGES >/dev/null
    in_chroot apt-get clean
    echo "$apt_stamp" > "$C/.janja-apt-stamp"
    cleanup
    log "chroot built in $((SECONDS - t0)) s"
}

pip_stamp() {  # the chroot's numpy and the requirement files
    local numpy
    numpy=$(chroot "$C" dpkg-query -W -f='${Version}' python3-numpy)
    (echo "$numpy"; cat "$PIP_REQUIREMENTS" "$REPO/requirements.txt") | sha256sum | cut -d' ' -f1
}

up_to_date() {
    [ "$(cat "$C/.janja-apt-stamp" 2>/dev/null)" = "$apt_stamp" ] &&
        [ "$(cat "$C/.janja-pip-stamp" 2>/dev/null)" = "$(pip_stamp)" ]
}

install_pip_deps() {
    # numpy pinned to the chroot's own, so QGIS's scipy and GDAL keep working (the installer's rule).
    local numpy want t0=$SECONDS
    want=$(pip_stamp)
    [ "$(cat "$C/.janja-pip-stamp" 2>/dev/null)" = "$want" ] && return 0
    numpy=$(in_chroot python3 -c 'import numpy; print(numpy.__version__)')
    log "pip install --target $DEPS (numpy pinned to $numpy)"
    echo "numpy==$numpy" > "$C/etc/janja-constraints.txt"
    cp "$REPO/requirements.txt" "$C/etc/janja-requirements.txt"
    cp "$PIP_REQUIREMENTS" "$C/etc/janja-chroot-requirements.txt"
    rm -rf "${C:?}$DEPS"
    # The plugin installer's command shape (branch models-download): python -m pip install --target
    # FOLDER -c constraints -r requirements. Switch to calling that installer here once it is merged.
    in_chroot nice -n 10 python3 -m pip install -q --root-user-action=ignore --no-warn-script-location --target "$DEPS" \
        -c /etc/janja-constraints.txt -r /etc/janja-requirements.txt -r /etc/janja-chroot-requirements.txt
    # The target folder must not shadow Debian's numpy (QGIS, scipy and GDAL are built against it).
    rm -rf "${C:?}$DEPS"/numpy "${C:?}$DEPS"/numpy-*.dist-info "${C:?}$DEPS"/numpy.libs
    in_chroot python3 -c 'import onnxruntime, rasterio, qgis.core, scipy'
    echo "$want" > "$C/.janja-pip-stamp"
    log "pip packages installed in $((SECONDS - t0)) s"
}

# The chroot is rebuilt when its package list or its recipe (build_base) changes.
apt_stamp=$( (printf '%s\n' "$SUITE" "$MIRROR" $APT_PACKAGES; declare -f build_base) | sha256sum | cut -d' ' -f1)

setup() {
    local t0=$SECONDS
    if ! up_to_date; then
        flock -u 9; flock -x 9   # alone while building; checked again, another run may have done it
        if [ "$(cat "$C/.janja-apt-stamp" 2>/dev/null)" != "$apt_stamp" ]; then build_base; fi
        mount_system
        install_pip_deps
        flock -s 9
    else
        mount_system
    fi
    QGIS_FULL=$(chroot "$C" dpkg-query -W -f='${Version}' qgis)
    log "ready (QGIS $QGIS_FULL, setup $((SECONDS - t0)) s)"
}

mount_checkout() {
    bind "$REPO" "$C$REPO"
    if [ -d "$SHARED" ]; then bind "$SHARED" "$C$SHARED" ro; fi
}

case "$ACTION" in
    setup)
        setup ;;
    run)
        [ $# -ge 1 ] || usage
        setup; mount_checkout
        in_chroot /bin/sh -c 'cd "$0" && exec "$@"' "$REPO" "$@" ;;
    test)
        tiers=("$@"); [ ${#tiers[@]} -gt 0 ] || tiers=(core processing e2e desktop)
        setup; mount_checkout
        rc=0
        for tier in "${tiers[@]}"; do
            in_chroot /bin/sh -c 'cd "$0" && exec tools/test_tier.sh python3 "$1"' "$REPO" "$tier" || rc=1
        done
        exit $rc ;;
    *) usage ;;
esac
