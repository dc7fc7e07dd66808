#!/usr/bin/env bash
# The project's Python environment: VENV with the project (editable) and its dev extra, every
# version pinned by the constraints files. Called by `make setup`; usage: install-python.sh VENV.
#
# uv (pinned below) resolves and unpacks the ~250 packages in about 40 s where pip took about
# 2 min, and the bytecode is then compiled on every core (pip compiled on one: 1.5 min more).
# Bytecode matters here: where PYTHONDONTWRITEBYTECODE is set (CI), nothing compiled now is ever
# cached, and every process would compile dbt, Dagster, ... again at each import.
# pip's own configuration (a wheel folder, extra indexes, a certificate bundle) is handed to uv.
# When uv cannot be installed or fails, pip installs as before.
set -euo pipefail

VENV=$1
UV_VERSION=0.13.8
PY=$VENV/bin/python
CONSTRAINTS=(-c constraints.txt -c constraints-airflow.txt)

pip_config() {  # the value of pip's setting $1 (environment or configuration files), or nothing
  "$PY" -m pip config list 2>/dev/null | sed -n "s/^[a-z]*\.$1='\(.*\)'$/\1/p" | head -n 1
}

with_uv() {
  "$PY" -m pip install -q --disable-pip-version-check "uv==$UV_VERSION" || return 1
  local args=() link index cert
  for link in ${PIP_FIND_LINKS:-$(pip_config find-links)}; do args+=(--find-links "$link"); done
  for index in ${PIP_EXTRA_INDEX_URL:-$(pip_config extra-index-url)}; do args+=(--extra-index-url "$index"); done
  index=${PIP_INDEX_URL:-$(pip_config index-url)}
  [ -n "$index" ] && args+=(--index-url "$index")
  cert=${PIP_CERT:-$(pip_config cert)}
  [ -n "$cert" ] && [ -f "$cert" ] && export SSL_CERT_FILE="$cert"
  # a package found on several indexes is taken where its pinned version is (pip's behaviour)
  "$VENV/bin/uv" pip install -q --python "$PY" --index-strategy unsafe-best-match "${args[@]}" \
    "${CONSTRAINTS[@]}" -C editable_mode=compat -e '.[dev]' || return 1
  # errors are Python 2 files some packages ship (pip's compile skips them silently too)
  "$PY" -m compileall -qq -j 0 "$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" || true
}

if ! with_uv; then
  echo "uv did not install the environment: installing with pip (slower)" >&2
  "$PY" -m pip install -q --disable-pip-version-check "${CONSTRAINTS[@]}" \
    --config-settings editable_mode=compat -e '.[dev]'
fi
