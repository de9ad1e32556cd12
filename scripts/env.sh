# Sourced by the other scripts: where builds and caches live, outside the checkout, so
# that a fresh clone rebuilds incrementally. Override with CARGO_TARGET_DIR or
# LECTERN_CACHE_DIR.
if [ -z "${LECTERN_CACHE_DIR:-}" ]; then
    if mkdir -p /var/cache/lectern 2>/dev/null && [ -w /var/cache/lectern ]; then
        LECTERN_CACHE_DIR=/var/cache/lectern
    else
        LECTERN_CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/lectern"
    fi
fi
export LECTERN_CACHE_DIR
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$LECTERN_CACHE_DIR/target}"
mkdir -p "$LECTERN_CACHE_DIR" "$CARGO_TARGET_DIR"
# Two cores build faster with fewer debug symbols and no incremental cache churn in CI.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

# Installs missing system packages and fetches the given asset groups (default: core),
# exporting the paths they print (LECTERN_ORT_DYLIB, ...).
lectern_prepare() {
    scripts/setup-system.sh
    local lines
    lines="$(scripts/fetch-assets.sh "${@:-core}")"
    set -a
    eval "$lines"
    set +a
}
