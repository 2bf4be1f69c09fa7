# Sourced by the other scripts: makes `uv` available (installing it with pip if needed)
# and sets UV to the command that runs it. Python downloads stay off: uv uses this
# machine's python3.
export UV_PYTHON_DOWNLOADS=never
export PATH="$HOME/.local/bin:$PATH"
UV_VENV="${XDG_CACHE_HOME:-$HOME/.cache}/stemedb-uv"
if command -v uv >/dev/null 2>&1; then
    UV=(uv)
elif [[ -x "$UV_VENV/bin/uv" ]]; then
    UV=("$UV_VENV/bin/uv")
elif python3 -m pip install --quiet --user uv >/dev/null 2>&1 && command -v uv >/dev/null 2>&1; then
    UV=(uv)
else
    # An externally managed python3 (PEP 668) refuses pip installs: use a private venv.
    python3 -m venv "$UV_VENV"
    "$UV_VENV/bin/pip" install --quiet uv
    UV=("$UV_VENV/bin/uv")
fi
