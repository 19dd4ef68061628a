#!/usr/bin/env bash
# Build the cleanroom-workspace wheel into OUTDIR (exactly one wheel is left there).
#
#   extensions/build-wheel.sh OUTDIR
#
# 1. Copies policies/workspace.yaml into the package (the wheel's policy defaults).
# 2. Builds the JupyterLab front end with npm (npm ci from the committed lock file; the
#    npm registry is the only thing fetched) and JupyterLab's builder, unless its
#    sources are unchanged since the last build.
# 3. Builds the wheel with the Python of $PYTHON (default: the repository's .venv, which
#    has jupyterlab), unless its inputs are unchanged; a wheel for the same inputs is
#    reused from extensions/dist/. The venv's setuptools is used when it can build
#    wheels; otherwise pip fetches setuptools from the package index.
#
# Installing the wheel needs no node: the built front end is inside it.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
python=${PYTHON:-$repo/.venv/bin/python}
mkdir -p "$1"
out=$(cd "$1" && pwd)
cd "$here"

hash_of() {
    # A digest of the named files' paths and contents, in a stable order.
    find "$@" -type f -not -name '*.pyc' -not -path '*/__pycache__/*' -print0 \
        | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16
}

# 1. The packaged policy defaults are a copy of the repository's policy file.
if ! cmp -s "$repo/policies/workspace.yaml" cleanroom_workspace/workspace.yaml; then
    cp "$repo/policies/workspace.yaml" cleanroom_workspace/workspace.yaml
fi

# 2. The front end.
labext=cleanroom_workspace/labextension
source_hash=$(hash_of package.json package-lock.json tsconfig.json src style)
if [ "$(cat "$labext/.source-hash" 2>/dev/null)" != "$source_hash" ]; then
    if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
        npm ci --no-audit --no-fund
    fi
    rm -rf lib tsconfig.tsbuildinfo "$labext"
    npx --no-install tsc
    node node_modules/@jupyterlab/builder/lib/build-labextension.js \
        --core-path "$("$python" -c 'import jupyterlab, os; print(os.path.join(os.path.dirname(jupyterlab.__file__), "staging"))')" .
    echo "$source_hash" > "$labext/.source-hash"
else
    echo "front end unchanged ($source_hash): reusing $labext"
fi

# 3. The wheel.
wheel_hash=$(hash_of pyproject.toml install.json jupyter-config cleanroom_workspace)
cache=dist/wheel-$wheel_hash
if ! ls "$cache"/cleanroom_workspace-*.whl >/dev/null 2>&1; then
    rm -rf dist build
    mkdir -p "$cache"
    # Build with the venv's own setuptools when it can make wheels (setuptools >= 70.1,
    # or older with the `wheel` package); else let pip fetch them from the package index.
    isolation=--no-build-isolation
    if ! "$python" - <<'PY'
import importlib.util, sys
import setuptools
major, minor = (int(x) for x in setuptools.__version__.split(".")[:2])
ok = (major, minor) >= (70, 1) or (major >= 61 and importlib.util.find_spec("wheel"))
sys.exit(0 if ok else 1)
PY
    then
        isolation=
    fi
    "$python" -m pip wheel --quiet --no-deps $isolation --wheel-dir "$cache" .
    # setuptools' scratch folders
    rm -rf build cleanroom_workspace.egg-info
else
    echo "wheel unchanged ($wheel_hash): reusing $cache"
fi
wheel=$(ls "$cache"/cleanroom_workspace-*.whl)
find "$out" -maxdepth 1 -name 'cleanroom_workspace-*.whl' ! -name "$(basename "$wheel")" -delete
if ! cmp -s "$wheel" "$out/$(basename "$wheel")"; then
    cp "$wheel" "$out/"
fi
echo "$out/$(basename "$wheel")"
