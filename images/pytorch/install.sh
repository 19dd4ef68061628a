#!/bin/sh
# Builds cleanroom/pytorch on top of cleanroom/notebook (same procedure as
# notebook/install.sh). The torch wheel is read from the mounted wheel folder, so its
# 183 MiB never land in a layer of their own.
set -eux
umask 022  # see notebook/install.sh
BUILD=/run/cleanroom-build
VENV=/opt/cleanroom/venv
if [ -f "$BUILD/pip-ca.crt" ]; then export PIP_CERT="$BUILD/pip-ca.crt"; fi
export PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore PIP_PROGRESS_BAR=off

set -- --find-links "$BUILD/wheels"
# Without a local wheel, the CPU build comes from PyTorch's own index; PyPI's torch
# is the CUDA build and drags in gigabytes of nvidia-* packages.
if ! ls "$BUILD"/wheels/torch-*.whl >/dev/null 2>&1; then
    set -- "$@" --extra-index-url "$(cat "$BUILD/torch-index-url")"
fi
"$VENV/bin/pip" install "$@" -r "$BUILD/requirements.txt"
"$VENV/bin/pip" check
if "$VENV/bin/pip" list --format=freeze | grep -i '^nvidia'; then
    echo "CUDA packages were installed; the CPU build of torch was expected" >&2
    exit 1
fi
# The demo notebooks (training on the press-line data, a model's release): read-only here,
# researchers copy them to ~/work (docs/images.md).
install -d -m 0755 /opt/cleanroom/examples
install -m 0644 "$BUILD"/examples/*.ipynb /opt/cleanroom/examples/
rm -rf /root/.cache /tmp/* /var/tmp/*
"$VENV/bin/python" /opt/cleanroom/verify_image.py
