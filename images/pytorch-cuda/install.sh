#!/bin/sh
# Builds cleanroom/pytorch-cuda on top of cleanroom/notebook (same procedure as
# notebook/install.sh): torch with its CUDA libraries, for workspaces of the gpu tier.
# Built only when named (`cleanroom images build pytorch-cuda`): it is 6.6 GB.
# The wheels are read from the mounted folder, so none lands in a layer of its own.
set -eux
umask 022  # see notebook/install.sh
BUILD=/run/cleanroom-build
VENV=/opt/cleanroom/venv
if [ -f "$BUILD/pip-ca.crt" ]; then export PIP_CERT="$BUILD/pip-ca.crt"; fi
export PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore PIP_PROGRESS_BAR=off

# The build refuses to start without the torch wheel on disk (cleanroom.images.build);
# say so again here rather than let pip fetch 2.9 GB from an index.
ls "$BUILD"/wheels/torch-*.whl >/dev/null
# The wheels found on disk first, exactly as they are (pip could otherwise take the same
# version from the index and download gigabytes again); then the requirements, which
# fetches only what was not on disk and checks that the set fits together.
"$VENV/bin/pip" install --no-index --no-deps "$BUILD"/wheels/*.whl
"$VENV/bin/pip" install --find-links "$BUILD/wheels" -r "$BUILD/requirements.txt"
"$VENV/bin/pip" check
# A CPU build would install without complaint and leave the gpu tier's GPU unused.
"$VENV/bin/python" -c 'import sys, torch; sys.exit(0 if torch.version.cuda else "torch has no CUDA build")'
rm -rf /root/.cache /tmp/* /var/tmp/*
"$VENV/bin/python" /opt/cleanroom/verify_image.py
