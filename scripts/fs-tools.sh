#!/usr/bin/env bash
# The tools tests/case_insensitive_fs.py mounts its case-insensitive file systems with, on
# Debian 12: an exFAT image through FUSE (mkfs.exfat from exfatprogs, mount.exfat-fuse from
# exfat-fuse) and an NTFS image that ignores case (mkntfs and lowntfs-3g, from ntfs-3g); and
# libfuse 3, which tests/power_cut_fs.py serves its file system through (with mfusepy).
#
#   bash scripts/fs-tools.sh
#
# Run as root. Installs what is missing from Debian's packages; idempotent.
set -euo pipefail

if command -v mkfs.exfat >/dev/null && command -v mount.exfat-fuse >/dev/null \
    && command -v mkntfs >/dev/null && command -v lowntfs-3g >/dev/null \
    && ldconfig -p | grep 'libfuse3\.so\.3 ' >/dev/null; then
    exit 0
fi
[ "$(id -u)" -eq 0 ] || { echo "fs-tools: error: run as root" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
packages=(exfat-fuse exfatprogs ntfs-3g libfuse3-3)
if ! apt-get install -y -q --no-install-recommends "${packages[@]}" >&2; then
    echo "fs-tools: install failed; refreshing the package lists and retrying" >&2
    apt-get update -q >&2
    apt-get install -y -q --no-install-recommends "${packages[@]}" >&2
fi
