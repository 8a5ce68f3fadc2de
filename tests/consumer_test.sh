#!/bin/sh
# SPDX-License-Identifier: MIT
# Consumer test (packaging): installs the build into a temporary prefix, then
# builds examples/echo_server.c and examples/echo_once.c out of tree against
# that copy twice, once with pkg-config and once with find_package(iomux),
# and runs each pair: the client must get its message back byte for byte.
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

# Starts $1 (a server), waits for the address it prints (bounded), runs the
# client $2 against it, then stops the server and waits for it.
run_pair() {
    out="$work/server.out"
    : >"$out"
    LD_LIBRARY_PATH=$libdir "$1" >"$out" &
    server_pid=$!
    tries=0
    until [ -s "$out" ]; do
        tries=$((tries + 1))
        [ "$tries" -le 200 ] || fail "$1 printed no address within 10 s"
        kill -0 "$server_pid" 2>/dev/null || fail "$1 exited early"
        sleep 0.05
    done
    addr=$(head -n 1 "$out")
    LD_LIBRARY_PATH=$libdir "$2" "$addr" "consumer test: $3" || fail "$2 against $1 failed"
    kill "$server_pid"
    wait "$server_pid" || fail "$1 did not exit cleanly after SIGTERM"
    server_pid=
}

if command -v pkg-config >/dev/null 2>&1; then
    export PKG_CONFIG_PATH="$libdir/pkgconfig"
    # One version everywhere: the .pc file and the installed tools agree.
    version=$(pkg-config --modversion iomux)
    "$work/prefix/bin/echod" --version | grep -qF " $version" ||
        fail "echod --version does not print the library version $version"
    for p in echo_server echo_once; do
        # shellcheck disable=SC2086 # word splitting of flags is intended
        "$cc" $extra -o "$work/pc_$p" "$src/examples/$p.c" $(pkg-config --cflags --libs iomux) ||
            fail "building $p with pkg-config failed"
    done
    ldd "$work/pc_echo_once" | grep -q 'libiomux.so.0' || fail "pkg-config build is not linked to libiomux.so.0"
    run_pair "$work/pc_echo_server" "$work/pc_echo_once" pkg-config
    echo "pkg-config: built and ran echo_server + echo_once against the installed libiomux.so"
else
    fail "pkg-config is not installed (apt-get install pkg-config)"
fi

cmake -S "$src/tests/consumer" -B "$work/cm" -DCMAKE_C_COMPILER="$cc" \
    -DCMAKE_PREFIX_PATH="$work/prefix" -DEXAMPLES_DIR="$src/examples" \
    -DCMAKE_C_FLAGS="$extra" >"$work/cm.log" 2>&1 || fail "configuring with find_package failed: $(tail -n 5 "$work/cm.log")"
cmake --build "$work/cm" >>"$work/cm.log" 2>&1 || fail "building with find_package failed: $(tail -n 5 "$work/cm.log")"
run_pair "$work/cm/echo_server" "$work/cm/echo_once" find_package
echo "find_package: built and ran echo_server + echo_once against iomux::iomux"
echo "1 passed, 0 failed"
