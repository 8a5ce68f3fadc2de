#!/bin/sh
# SPDX-License-Identifier: MIT
# Consumer test (packaging): installs the build into a temporary prefix, then
# builds examples/echo_server.c and examples/echo_once.c out of tree against
# that copy, with pkg-config and with find_package(iomux), each linked to
# the shared and to the static library, and runs every pair: the client must
# get its message back byte for byte. A shared pair finds libiomux.so.0 the
# ways README.md says (LD_LIBRARY_PATH, an rpath, CMake's build rpath); a
# static pair must not need it at all. No installed .pc or .cmake file may
# name a path of this build machine (its liburing, build or source tree).
#   consumer_test.sh BUILD_DIR SOURCE_DIR CC [EXTRA_CFLAGS]
set -eu
build=$1 src=$2 cc=$3 extra=${4:-}
work=$(mktemp -d)
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "consumer_test: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$work/prefix" >"$work/install.log" 2>&1 ||
    fail "cmake --install failed: $(tail -n 3 "$work/install.log")"
libdir=$(dirname "$(find "$work/prefix" -name 'libiomux.so.0' | head -n 1)")
[ -n "$libdir" ] && [ -f "$libdir/libiomux.a" ] || fail "libiomux.so.0 / libiomux.a not installed"
for h in loop.h stream.h net.h buf.h export.h; do
    [ -f "$work/prefix/include/iomux/$h" ] || fail "include/iomux/$h not installed"
done
# Absolute paths of this machine in the installed package files: the
# liburing found at build time, the build and source trees.
build_abs=$(cd "$build" && pwd -P) src_abs=$(cd "$src" && pwd -P)
leaks=$(find "$work/prefix" \( -name '*.pc' -o -name '*.cmake' \) -exec \
    grep -lE -e '/[^ "]*liburing[^ "/]*\.(so|a)' -e "$build_abs" -e "$src_abs" {} +) || true
[ -z "$leaks" ] || fail "installed files name build-machine paths: $leaks: $(grep -hE 'liburing|/usr/lib' $leaks | head -n 3)"

# The library a binary loads, "static" when it has none: ldd_iomux BIN ENV...
ldd_iomux() {
    bin=$1
    shift
    found=$(env "$@" ldd "$bin" | awk '$1 == "libiomux.so.0" { print $3 }')
    echo "${found:-static}"
}

# Starts $1 (a server), waits for the address it prints (bounded), runs the
# client $2 against it, then stops the server and waits for it. $3 names the
# pair; the rest is the environment both run in (env syntax) and must make
# each load libiomux.so.0 from the prefix, or no libiomux when the pair is
# static (names ending in _static or -static).
run_pair() {
    server=$1 client=$2 label=$3
    shift 3
    want="$libdir/libiomux.so.0"
    case $label in *static) want=static ;; esac
    for bin in "$server" "$client"; do
        got=$(ldd_iomux "$bin" "$@")
        [ "$got" = "$want" ] || fail "$label: $(basename "$bin") loads libiomux from $got, not $want"
    done
    out="$work/server.out"
    : >"$out"
    env "$@" "$server" >"$out" &
    server_pid=$!
    tries=0
    until [ -s "$out" ]; do
        tries=$((tries + 1))
        [ "$tries" -le 200 ] || fail "$label: $server printed no address within 10 s"
        kill -0 "$server_pid" 2>/dev/null || fail "$label: $server exited early"
        sleep 0.05
    done
    addr=$(head -n 1 "$out")
    env "$@" "$client" "$addr" "consumer test: $label" || fail "$label: $client against $server failed"
    kill "$server_pid"
    wait "$server_pid" || fail "$label: $server did not exit cleanly after SIGTERM"
    server_pid=
    echo "$label: built and ran echo_server + echo_once (libiomux: $want)"
}

command -v pkg-config >/dev/null 2>&1 || fail "pkg-config is not installed (apt-get install pkg-config)"
export PKG_CONFIG_PATH="$libdir/pkgconfig"
# One version everywhere: the .pc file and the installed tools agree.
version=$(pkg-config --modversion iomux)
"$work/prefix/bin/echod" --version | grep -qF " $version" ||
    fail "echod --version does not print the library version $version"
cflags=$(pkg-config --cflags iomux) libs=$(pkg-config --libs iomux)
static_libs=$(pkg-config --static --libs iomux)
echo "pkg-config --static --libs iomux: $static_libs"
for p in echo_server echo_once; do
    # shellcheck disable=SC2086 # word splitting of flags is intended
    {
        "$cc" $extra -o "$work/pc_$p" "$src/examples/$p.c" $cflags $libs &&
            "$cc" $extra -o "$work/pc_rpath_$p" "$src/examples/$p.c" $cflags $libs \
                -Wl,-rpath,"$libdir" &&
            "$cc" $extra -o "$work/pc_static_$p" "$src/examples/$p.c" $cflags \
                -Wl,-Bstatic $static_libs -Wl,-Bdynamic
    } >"$work/pc.log" 2>&1 || fail "building $p with pkg-config failed: $(grep -m 3 -E 'error|undefined' "$work/pc.log")"
done
run_pair "$work/pc_echo_server" "$work/pc_echo_once" pkg-config LD_LIBRARY_PATH="$libdir"
run_pair "$work/pc_rpath_echo_server" "$work/pc_rpath_echo_once" pkg-config-rpath -u LD_LIBRARY_PATH
run_pair "$work/pc_static_echo_server" "$work/pc_static_echo_once" pkg-config-static -u LD_LIBRARY_PATH

cmake -S "$src/tests/consumer" -B "$work/cm" -DCMAKE_C_COMPILER="$cc" \
    -DCMAKE_PREFIX_PATH="$work/prefix" -DEXAMPLES_DIR="$src/examples" \
    -DCMAKE_C_FLAGS="$extra" >"$work/cm.log" 2>&1 || fail "configuring with find_package failed: $(tail -n 5 "$work/cm.log")"
cmake --build "$work/cm" >>"$work/cm.log" 2>&1 || fail "building with find_package failed: $(grep -m 3 -E 'error|undefined' "$work/cm.log")"
# CMake's build tree carries an rpath to the imported libiomux.so.
run_pair "$work/cm/echo_server" "$work/cm/echo_once" find_package -u LD_LIBRARY_PATH
run_pair "$work/cm/echo_server_static" "$work/cm/echo_once_static" find_package-static -u LD_LIBRARY_PATH
echo "1 passed, 0 failed"
