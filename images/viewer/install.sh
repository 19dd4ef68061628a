#!/bin/sh
# Builds cleanroom/viewer: runs as root in a throwaway container of cleanroom/base with
# the build inputs mounted read-only at $BUILD; the container is then committed with
# image.config. Everything comes from Debian's packages (no browser download).
set -eux
umask 022
BUILD=/run/cleanroom-build
export DEBIAN_FRONTEND=noninteractive

apt-get update
# shellcheck disable=SC2046
apt-get install --yes --no-install-recommends $(sed -e 's/#.*//' "$BUILD/packages.txt")
apt-get clean
rm -rf /var/lib/apt/lists/*

# The viewer's own user: not the researcher (1000) and not the workspace server (1001).
groupadd --gid 1002 viewer
useradd --uid 1002 --gid 1002 --home-dir /home/viewer --create-home --shell /usr/sbin/nologin viewer

# Chromium's managed policies (downloads, printing, devtools, extensions, file://,
# clipboard off): root-owned, read by Chromium at start, not writable by the viewer.
install -d -m 0755 /etc/chromium/policies/managed /etc/chromium/policies/recommended
install -m 0644 "$BUILD/chromium/cleanroom.json" /etc/chromium/policies/managed/cleanroom.json

# The entry point and the researcher's page (noVNC's own modules are linked in from
# Debian's novnc package, so the page and the library are files of this image).
install -d -m 0755 /opt/cleanroom/bin /opt/cleanroom/viewer/web
install -m 0755 "$BUILD/bin/cleanroom-viewer" /opt/cleanroom/bin/
install -m 0644 "$BUILD/web/index.html" "$BUILD/web/viewer.js" "$BUILD/web/viewer.css" \
    /opt/cleanroom/viewer/web/
ln -s /usr/share/novnc/core /opt/cleanroom/viewer/web/core
ln -s /usr/share/novnc/vendor /opt/cleanroom/viewer/web/vendor

# No setuid/setgid programs (Chromium's setuid sandbox among them): the container wall
# (seccomp, no capabilities, no-new-privileges) confines the browser instead.
find / -xdev -type f -perm /6000 -exec chmod ug-s {} +
rm -rf /root/.cache /tmp/* /var/tmp/*

# Contract checks: the policy parses and names what it must; the tools are there.
python3 - <<'PY'
import json
policy = json.load(open("/etc/chromium/policies/managed/cleanroom.json"))
for key in ("DownloadRestrictions", "PrintingEnabled", "DeveloperToolsAvailability",
            "ExtensionInstallBlocklist", "URLBlocklist", "DefaultClipboardSetting"):
    assert key in policy, key
PY
test -f /usr/share/novnc/core/rfb.js
command -v x11vnc Xvfb websockify chromium
