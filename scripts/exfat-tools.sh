#!/usr/bin/env bash
# The tools tests/case_insensitive_fs.py mounts a case-insensitive file system with (an exFAT
# image through FUSE), on Debian 12: mkfs.exfat (exfatprogs) and mount.exfat-fuse (exfat-fuse).
#
#   bash scripts/exfat-tools.sh
#
# Run as root. Installs what is missing from Debian's packages; idempotent.
set -euo pipefail

if command -v mkfs.exfat >/dev/null && command -v mount.exfat-fuse >/dev/null; then
    exit 0
fi
[ "$(id -u)" -eq 0 ] || { echo "exfat-tools: error: run as root" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
packages=(exfat-fuse exfatprogs)
if ! apt-get install -y -q --no-install-recommends "${packages[@]}" >&2; then
    echo "exfat-tools: install failed; refreshing the package lists and retrying" >&2
    apt-get update -q >&2
    apt-get install -y -q --no-install-recommends "${packages[@]}" >&2
fi
