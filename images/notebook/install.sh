#!/bin/sh
# Builds cleanroom/notebook. Runs as root in a throwaway container of cleanroom/base
# with the build inputs mounted read-only at $BUILD; the container is then committed
# with image.config. Build-only settings (the CA bundle for pip) are exported here, so
# they never reach the image's configuration.
set -eux
# pip runs as root with this umask, so the venv ends up root-owned and writable by
# root alone. (A recursive chown/chmod would copy every file of a parent image's venv
# into the new layer.)
umask 022
BUILD=/run/cleanroom-build
VENV=/opt/cleanroom/venv
if [ -f "$BUILD/pip-ca.crt" ]; then export PIP_CERT="$BUILD/pip-ca.crt"; fi
export PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore PIP_PROGRESS_BAR=off

python3 -m venv "$VENV"
# The workspace extension (when the build found one) is resolved together with the
# pinned requirements, so pip can see conflicts between the two.
set -- -r "$BUILD/requirements.txt"
for wheel in "$BUILD"/extension/*.whl; do
    if [ -e "$wheel" ]; then set -- "$@" "$wheel"; fi
done
"$VENV/bin/pip" install "$@"
# jupyter-events asks for jsonschema[format-nongpl], which brings rfc3987-syntax: it
# compiles dozens of Earley parsers when jsonschema is imported, costing every workspace
# start about 1.2 s and 15 MiB for IRI formats no Jupyter event schema uses. jsonschema
# skips those formats when the module is absent. (verify_image.py keeps it out.) The
# same extras' other checkers (durations through isoduration and arrow, host names, URI
# templates, colours, JSON pointers) are imported with jsonschema too, about 0.1 s of
# every start, for formats no Jupyter schema uses; nothing else in the image needs them.
"$VENV/bin/pip" uninstall --yes rfc3987-syntax lark isoduration arrow fqdn uri-template \
    webcolors jsonpointer
"$VENV/bin/pip" check

# The test suites shipped inside the big scientific packages are about 130 MB and are
# never imported at run time.
SITE="$VENV/lib/python3.11/site-packages"
for package in numpy scipy pandas sklearn pyarrow matplotlib; do
    find "$SITE/$package" -depth -type d -name tests -exec rm -rf {} +
done

# Jupyter reads its configuration from here (JUPYTER_CONFIG_DIR): root-owned, so code
# running as the researcher cannot switch the extension off through config files.
install -d -m 0755 -o root -g root /etc/cleanroom/jupyter
if [ -d "$BUILD/jupyter-config" ]; then
    cp -R "$BUILD/jupyter-config/." /etc/cleanroom/jupyter/
    chown -R root:root /etc/cleanroom/jupyter
    chmod -R u=rwX,go=rX /etc/cleanroom/jupyter
fi
# jupyter_core writes this marker into the config dir the first time a command runs
# with ~/.ipython present (its one-off migration from IPython 3 config); the dir is
# read-only to the researcher, so without the marker `jupyter nbconvert` and kin fail in
# a workspace with "Permission denied: /etc/cleanroom/jupyter/migrated".
touch /etc/cleanroom/jupyter/migrated
chmod 0644 /etc/cleanroom/jupyter/migrated
install -d -m 0755 /opt/cleanroom
install -m 0644 "$BUILD/verify_image.py" /opt/cleanroom/verify_image.py

# The Jupyter server's own user: uid 1001 in the researcher's group (it saves files
# kernels wrote), so that researcher code (uid 1000) cannot signal, trace or read it.
# The entry point starts the server as this user; as-researcher starts kernels and
# terminals as uid 1000. Both are root-owned and not writable by either user.
if ! getent passwd 1001 >/dev/null; then
    useradd --uid 1001 --gid 1000 --no-create-home --home-dir /home/researcher \
        --shell /usr/sbin/nologin jupyter
fi
install -d -m 0755 -o root -g root /opt/cleanroom/bin /run/cleanroom
install -m 0755 -o root -g root "$BUILD/bin/cleanroom-entrypoint" "$BUILD/bin/as-researcher" \
    /opt/cleanroom/bin/

rm -rf /root/.cache /tmp/* /var/tmp/*
"$VENV/bin/python" /opt/cleanroom/verify_image.py
