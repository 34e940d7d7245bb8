#!/usr/bin/env bash
# Installs tramontane for the composite action (action.yml), one subcommand per step:
#
#   install.sh download   the release binary of the version in the action's Cargo.toml,
#                         verified against its SHA-256 before it is unpacked or run. When
#                         no release binary is built for this platform, or the input
#                         from-source asks for it, it prepares a build from source instead:
#                         outputs source=build, the cache key and the install root. When
#                         the pinned release does not exist (HTTP 404), it fails, saying
#                         which version it looked for, where, and what to do.
#   install.sh build      the source build: `cargo install` into $INSTALL_ROOT, refused while
#                         MISTRAL_ADMIN_API_KEY is set.
#   install.sh activate   puts the built binary on the PATH.
#   install.sh version    prints the version the action installs (the release workflow
#                         checks its tag against it).
#
# What the checksum protects against, and what it does not:
#   - The expected digest comes from action/checksums.txt at the action's own commit when
#     that file lists the asset (the release workflow proposes it after each release). A
#     workflow that pins the action by full commit SHA then fixes the exact bytes it will
#     run: a replaced release asset, a moved tag or a compromised download path is refused.
#   - Otherwise it comes from SHA256SUMS published in the same release. That catches a
#     corrupted or truncated download and an asset swapped without its SUMS, but whoever
#     can change the release can change both files; pinning the action by commit then
#     still binds the version, not the bytes.
#   - Neither says the release was built from the source it claims: that trust is in the
#     release workflow and in who may push tags.
# A mismatch is always fatal: it never falls back to building from source, because a
# failed verification means something is wrong, not missing.
#
# Environment (a runner sets the first five):
#   GITHUB_ACTION_PATH   the action's checkout (default: this script's parent directory)
#   GITHUB_OUTPUT, GITHUB_PATH, RUNNER_OS, RUNNER_ARCH, RUNNER_TEMP
#   INPUT_RELEASE_URL, TRAMONTANE_RELEASE_URL
#                        where releases are downloaded from, as BASE/v<version>/<file>
#                        (the input first); default: the GitHub releases of the repository
#                        named in Cargo.toml
#   GITHUB_WORKSPACE     the workflow's checkout: an action inside it is built from source
#   INPUT_FROM_SOURCE    "auto" (default): build from source when the action is a checkout
#                        inside the workspace (`uses: ./`), else install the release;
#                        "true": always build; "false": always install the release
#   INSTALL_ROOT         build and activate: where `cargo install` puts bin/tramontane
#   TRAMONTANE_ACTION_BUILD_COMMAND
#                        build: the command run instead of `cargo install` (for tests)
set -euo pipefail

action_path="${GITHUB_ACTION_PATH:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"

# An error annotation on the run (the runner reads workflow commands on stderr too, and
# stderr still reaches the log from inside $(...)).
fail() {
  echo "::error::$*" >&2
  exit 1
}

# The value of `key = "value"` in section [section] of a TOML file, or nothing.
toml_value() {
  local file="$1" section="$2" key="$3"
  awk -v section="[$section]" -v key="$key" '
    /^[[:space:]]*\[/ { current = $0; sub(/[[:space:]]*(#.*)?$/, "", current); next }
    current == section && $0 ~ "^[[:space:]]*" key "[[:space:]]*=[[:space:]]*\"" {
      value = $0
      sub(/^[^"]*"/, "", value)
      sub(/".*$/, "", value)
      print value
      exit
    }
  ' "$file"
}

# The version the action installs: [workspace.package] in the root Cargo.toml, or the
# command-line crate's own [package] version.
action_version() {
  local version
  version=$(toml_value "$action_path/Cargo.toml" workspace.package version)
  if [ -z "$version" ]; then
    version=$(toml_value "$action_path/crates/tramontane-cli/Cargo.toml" package version)
  fi
  if ! [[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.+-]+)?$ ]]; then
    fail "No version found in $action_path/Cargo.toml ([workspace.package] version) or crates/tramontane-cli/Cargo.toml: got '$version'."
  fi
  printf '%s\n' "$version"
}

# Where this version's assets are: BASE/v<version>/.
release_base() {
  local base="${INPUT_RELEASE_URL:-${TRAMONTANE_RELEASE_URL:-}}"
  if [ -z "$base" ]; then
    local repository
    repository=$(toml_value "$action_path/Cargo.toml" workspace.package repository)
    [ -n "$repository" ] || fail "No [workspace.package] repository in $action_path/Cargo.toml, so no release to download; set the input release-url."
    base="${repository%/}/releases/download"
  fi
  printf '%s\n' "${base%/}"
}

# The Rust target of a release asset for this runner, or nothing where none is built.
runner_target() {
  case "${RUNNER_OS:-}/${RUNNER_ARCH:-}" in
    Linux/X64) echo x86_64-unknown-linux-gnu ;;
    Linux/ARM64) echo aarch64-unknown-linux-gnu ;;
    macOS/X64) echo x86_64-apple-darwin ;;
    macOS/ARM64) echo aarch64-apple-darwin ;;
    *) ;;
  esac
}

# Whether the action is a checkout inside the workflow's workspace (`uses: ./...`), as in
# this repository's own pull requests, rather than a published action the runner fetched
# (which lives outside it, under _actions/).
action_in_workspace() {
  local action workspace
  [ -n "${GITHUB_WORKSPACE:-}" ] || return 1
  action=$(cd "$action_path" && pwd -P) || return 1
  workspace=$(cd "$GITHUB_WORKSPACE" 2>/dev/null && pwd -P) || return 1
  case "$action/" in
    "$workspace"/*) return 0 ;;
    *) return 1 ;;
  esac
}

# SHA-256 of a file, or of stdin with no argument: sha256sum on Linux, shasum on macOS.
sha256() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$@" | cut -d ' ' -f 1
  elif command -v shasum >/dev/null 2>&1; then
    shasum -a 256 "$@" | cut -d ' ' -f 1
  else
    fail "Neither sha256sum nor shasum is installed, so the download cannot be verified; install one of them."
  fi
}

# The digest a SHA256SUMS-style file lists for an asset name, or nothing.
listed_digest() {
  local sums="$1" name="$2"
  [ -f "$sums" ] || return 0
  awk -v name="$name" '$1 !~ /^#/ && ($2 == name || $2 == "*" name) { print tolower($1); exit }' "$sums"
}

# Downloads URL to FILE and prints the HTTP status; a failure to get any answer is fatal.
download() {
  local url="$1" file="$2" status
  if ! status=$(curl --silent --show-error --location --retry 3 --connect-timeout 20 \
    --max-time 600 --output "$file" --write-out '%{http_code}' "$url"); then
    fail "Could not download $url (curl failed, see above); re-run the job, or set the input from-source to build instead."
  fi
  printf '%s\n' "$status"
}

output() {
  printf '%s\n' "$@" >> "$GITHUB_OUTPUT"
}

# No release binary: say why and hand over to the build steps.
prepare_build() {
  echo "::notice::$1 Building tramontane from the action's source instead (several minutes; cached afterwards)."
  if ! command -v cargo >/dev/null 2>&1; then
    fail "tramontane builds with cargo; add dtolnay/rust-toolchain@29eef336d9b2848a0b548edc03f92a220660cdb8 # stable, 2026-03-27 before this action"
  fi
  # The build is keyed by the source it compiles, so a cached binary is reused only for
  # the same source.
  local digest path sources=()
  for path in Cargo.toml Cargo.lock crates/tramontane crates/tramontane-cli/src schema catalog \
    .github/workflows; do
    if [ -e "$action_path/$path" ]; then
      sources+=("$path")
    fi
  done
  digest=$(cd "$action_path" && find "${sources[@]}" -type f | LC_ALL=C sort | while IFS= read -r path; do
    printf '%s  %s\n' "$(sha256 "$path")" "$path"
  done | sha256 | cut -c 1-16)
  output "source=build" \
    "key=tramontane-${RUNNER_OS:-unknown}-${RUNNER_ARCH:-unknown}-$digest" \
    "root=$HOME/.tramontane-action"
}

cmd_download() {
  : "${GITHUB_OUTPUT:?the runner names the step output file in GITHUB_OUTPUT}"
  : "${GITHUB_PATH:?the runner names the PATH file in GITHUB_PATH}"
  local version target
  version=$(action_version)
  target=$(runner_target)
  case "${INPUT_FROM_SOURCE:-auto}" in
    true)
      prepare_build "The input from-source is true."
      return
      ;;
    auto)
      if action_in_workspace; then
        prepare_build "The action runs from this workflow's own checkout (uses: ./...), whose source may differ from any release; set the input from-source to false to install the release binary of $version anyway."
        return
      fi
      ;;
    false) ;;
    *) fail "The input from-source is '$INPUT_FROM_SOURCE'; it takes auto, true or false." ;;
  esac
  if [ -z "$target" ]; then
    prepare_build "No release binary is built for ${RUNNER_OS:-?}/${RUNNER_ARCH:-?}."
    return
  fi

  local name="tramontane-$version-$target"
  local asset="$name.tar.gz"
  local base
  base="$(release_base)/v$version"
  local work="${RUNNER_TEMP:-${TMPDIR:-/tmp}}/tramontane-download-$version-$target"
  rm -rf "$work"
  mkdir -p "$work"

  local status
  status=$(download "$base/$asset" "$work/$asset")
  case "$status" in
    200) ;;
    404)
      # No silent fallback to a build: the pinned version is not published (or not for
      # this platform), and whoever pinned it should know.
      local missing
      if [ "$(download "$base/SHA256SUMS" "$work/SHA256SUMS")" = 200 ]; then
        missing="The release v$version exists at $base but has no $asset (HTTP 404), so there is no tramontane $version for $target."
      else
        missing="There is no release v$version: $base/$asset and $base/SHA256SUMS answered HTTP 404."
      fi
      rm -rf "$work"
      fail "$missing This action is at version $version (the version in its Cargo.toml); nothing was installed. Pin the action to the commit of a release that exists (a tag v<version> with published assets), or set the input from-source to true to build tramontane $version from the action's source (cargo install --locked --path crates/tramontane-cli; docs/releasing.md)."
      ;;
    *)
      rm -rf "$work"
      fail "Downloading $base/$asset answered HTTP $status; re-run the job, or set the input from-source to build instead."
      ;;
  esac

  local expected source
  expected=$(listed_digest "$action_path/action/checksums.txt" "$asset")
  if [ -n "$expected" ]; then
    source="action/checksums.txt at the action's commit"
  else
    status=$(download "$base/SHA256SUMS" "$work/SHA256SUMS")
    if [ "$status" != 200 ]; then
      rm -rf "$work"
      fail "action/checksums.txt at the action's commit does not list $asset (tramontane $version for $target), and the release's $base/SHA256SUMS answered HTTP $status, so the binary cannot be verified and was not installed; re-run the job, pin the action at a commit whose action/checksums.txt lists it, or set the input from-source to true to build it instead."
    fi
    expected=$(listed_digest "$work/SHA256SUMS" "$asset")
    source="$base/SHA256SUMS"
    if [ -z "$expected" ]; then
      rm -rf "$work"
      fail "Neither action/checksums.txt at the action's commit nor $source lists $asset (tramontane $version for $target), so the binary cannot be verified and was not installed; pin the action at a commit whose action/checksums.txt lists it, or set the input from-source to true to build it instead."
    fi
  fi

  local actual
  actual=$(sha256 "$work/$asset")
  if [ "$actual" != "$expected" ]; then
    rm -rf "$work"
    fail "Checksum mismatch for $asset downloaded from $base/$asset: its SHA-256 is $actual, but $source expects $expected. The download is corrupt or was substituted; tramontane was not installed."
  fi
  echo "$asset: SHA-256 $actual, as $source expects."

  local install="$work/unpacked"
  mkdir -p "$install"
  tar -xzf "$work/$asset" -C "$install"
  rm -f "$work/$asset" "$work/SHA256SUMS"
  local binary="$install/$name/tramontane"
  if [ ! -f "$binary" ] || [ -L "$binary" ]; then
    fail "$asset does not hold $name/tramontane; the release is malformed."
  fi
  chmod +x "$binary"
  local reported
  if ! reported=$("$binary" --version 2>&1); then
    fail "The release binary of tramontane $version does not run on this runner ($RUNNER_OS/$RUNNER_ARCH): $reported. Set the input from-source to build it here instead."
  fi
  if [ "$reported" != "tramontane $version" ]; then
    fail "$asset reports '$reported', not 'tramontane $version'; the release is mislabelled, so it was not installed."
  fi
  echo "$install/$name" >> "$GITHUB_PATH"
  output "source=release" "version=$reported"
  echo "Installed $reported from $base/$asset."
}

cmd_build() {
  : "${INSTALL_ROOT:?INSTALL_ROOT names where the build installs tramontane}"
  # Build scripts of every dependency run here: the admin key must not be in reach.
  if [ -n "${MISTRAL_ADMIN_API_KEY:-}" ]; then
    fail "MISTRAL_ADMIN_API_KEY is set while tramontane is built, so every dependency's build script could read it. Set it in 'env:' of the steps that run tramontane, not of the job or the workflow."
  fi
  if [ -n "${TRAMONTANE_ACTION_BUILD_COMMAND:-}" ]; then
    bash -c "$TRAMONTANE_ACTION_BUILD_COMMAND"
  else
    cargo install --locked --path "$action_path/crates/tramontane-cli" --root "$INSTALL_ROOT"
  fi
}

cmd_activate() {
  : "${INSTALL_ROOT:?INSTALL_ROOT names where the build installed tramontane}"
  : "${GITHUB_OUTPUT:?the runner names the step output file in GITHUB_OUTPUT}"
  : "${GITHUB_PATH:?the runner names the PATH file in GITHUB_PATH}"
  local reported
  reported=$("$INSTALL_ROOT/bin/tramontane" --version)
  echo "$INSTALL_ROOT/bin" >> "$GITHUB_PATH"
  output "version=$reported"
}

case "${1:-}" in
  download) cmd_download ;;
  build) cmd_build ;;
  activate) cmd_activate ;;
  version) action_version ;;
  *)
    echo "usage: $0 download|build|activate|version" >&2
    exit 2
    ;;
esac
