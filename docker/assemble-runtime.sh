#!/usr/bin/env bash
# Assembles the runtime image's file set under ROOT: the files listed in
# docker/runtime-files.txt plus every shared library they need.
#
#   docker/assemble-runtime.sh ROOT
#
# The Dockerfile's build stage runs this and the runtime stage copies ROOT/
# to /; tests/deploy/runtime_smoke_test.sh runs it too and starts romed from
# ROOT, so both use one list. Libraries: for each ELF file, ldd's resolved
# libraries are copied to ROOT/usr/local/lib/romed/<name the loader asks for>
# (symlinks such as Debian's libblas.so.3 alternative are followed), except
# glibc's own (the files of package libc6), which every glibc base image has.
# A library ldd cannot find is an error, except those listed in
# ROMED_HOST_PROVIDED_LIBS (default: the NVIDIA driver's libcuda.so.1 and
# libnvidia-ml.so.1, which the NVIDIA container runtime mounts into GPU pods).
# ROMED_BUNDLE_LIB_DIRS (space-separated directories) adds every shared object
# in them as well, for libraries loaded with dlopen, which ldd cannot see (the
# CUDA image sets /opt/libtorch/lib: libtorch's zip dlopens parts of CUDA).
# ROOT/usr/local/share/romed/runtime-libs.txt lists what was bundled.
#
# Environment: BUILD_DIR (default build) replaces $BUILD_DIR in the list;
# ROMED_ASSEMBLE_HARDLINK=1 hard-links instead of copying where it can (tests:
# the libraries are ~500 MB).
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 ROOT" >&2
  exit 2
fi
ROOT=$1
SOURCE_DIR=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-build}
MANIFEST="$SOURCE_DIR/docker/runtime-files.txt"
LIB_DIR=/usr/local/lib/romed
HOST_PROVIDED=" ${ROMED_HOST_PROVIDED_LIBS:-libcuda.so.1 libnvidia-ml.so.1} "

die() { echo "assemble-runtime: $*" >&2; exit 1; }

# place SOURCE DEST: copies (or hard-links) one file, following symlinks.
place() {
  local src dest=$2
  src=$(readlink -f "$1")
  mkdir -p "$(dirname "$dest")"
  rm -f "$dest"
  if [[ "${ROMED_ASSEMBLE_HARDLINK:-0}" == 1 ]] && ln "$src" "$dest" 2>/dev/null; then
    return 0
  fi
  cp "$src" "$dest"
}

# glibc's shared objects, by file name: the base image provides these.
glibc_names() {
  command -v dpkg >/dev/null || die "dpkg not found: cannot tell glibc's libraries apart"
  dpkg -L libc6 | sed -n 's|.*/\([^/]*\.so[^/]*\)$|\1|p' | sort -u
}

is_elf() { [[ $(head -c 4 "$1" | od -An -c | tr -d ' ') == '177ELF' ]]; }

# needed_libraries FILE: "NAME PATH" per resolved library; dies on a missing one.
needed_libraries() {
  local line name path
  while IFS= read -r line; do
    if [[ $line =~ ^[[:space:]]*([^[:space:]]+)\ =\>\ not\ found ]]; then
      name=${BASH_REMATCH[1]}
      [[ $HOST_PROVIDED == *" $name "* ]] && continue
      die "$1 needs $name, which ldd cannot find"
    elif [[ $line =~ ^[[:space:]]*([^[:space:]]+)\ =\>\ (/[^[:space:]]+) ]]; then
      echo "${BASH_REMATCH[1]} ${BASH_REMATCH[2]}"
    fi
  done < <(ldd "$1")
}

main() {
  [[ -f $MANIFEST ]] || die "missing $MANIFEST"
  mkdir -p "$ROOT$LIB_DIR" "$ROOT/usr/local/share/romed"
  local glibc elves=() src dest
  glibc=" $(glibc_names | tr '\n' ' ') "
  while read -r src dest; do
    [[ -z $src || $src == \#* ]] && continue
    [[ -n $dest && $dest == /* ]] || die "$MANIFEST: '$src' needs an absolute destination"
    src=${src//\$BUILD_DIR/$BUILD_DIR}
    [[ $src == /* ]] || src="$SOURCE_DIR/$src"
    [[ -f $src ]] || die "$src (listed in $MANIFEST) does not exist; build it first"
    place "$src" "$ROOT$dest"
    is_elf "$src" && elves+=("$src")
  done <"$MANIFEST"

  local listing="$ROOT/usr/local/share/romed/runtime-libs.txt" name path
  : >"$listing.tmp"
  for src in "${elves[@]}"; do
    while read -r name path; do
      [[ $glibc == *" $name "* ]] && continue
      echo "$name $(readlink -f "$path")" >>"$listing.tmp"
    done < <(needed_libraries "$src")
  done
  local dir
  for dir in ${ROMED_BUNDLE_LIB_DIRS:-}; do
    [[ -d $dir ]] || die "ROMED_BUNDLE_LIB_DIRS: $dir is not a directory"
    for path in "$dir"/*.so*; do
      [[ -f $path ]] && echo "$(basename "$path") $(readlink -f "$path")" >>"$listing.tmp"
    done
  done
  sort -u "$listing.tmp" >"$listing"
  rm -f "$listing.tmp"
  while read -r name path; do
    place "$path" "$ROOT$LIB_DIR/$name"
  done <"$listing"
  echo "assemble-runtime: $(grep -c . "$listing") libraries for ${#elves[@]} programs in $ROOT$LIB_DIR"
}

main
