# Thin wrapper over the CMake presets: the two commands a newcomer needs,
# and a few more. All real build logic lives in CMakeLists.txt.
#   make run    build (release) and start echod on localhost:10000
#   make test   build and run every test, normal build then ASan+UBSan build
#   make bench  build (release) and run the benchmarks (not part of test);
#               BENCH_QUICK=1 for one short round; results go to
#               bench/results/new/ unless BENCH_RECORD=1 (then bench/results/
#               and docs/benchmarks.md)
#   make format reformat all C sources with clang-format
#   make package  build the .deb packages (release) into build/release/packages
#   make test-fortify  gcc -O2 -D_FORTIFY_SOURCE=2 build and its tests
#   make valgrind  unit tests and one echod end-to-end test under valgrind
#   make fuzz   clang libFuzzer targets, FUZZ_SECONDS (60) each over fuzz/corpus
#   make soak   30 minutes of mixed load on a release echod (SOAK_MINUTES)
# Set IOMUX_WERROR=ON to turn warnings into errors (CI does).

ECHOD_ARGS ?=
C_SOURCES = $(shell git ls-files '*.c' '*.h' 2>/dev/null || find . -name '*.[ch]' -not -path './build/*')

.PHONY: all build run test test-dev test-asan test-fortify valgrind fuzz soak bench package \
	format format-check clean

all: build

build:
	cmake --preset dev
	cmake --build --preset dev

run:
	cmake --preset release >/dev/null
	cmake --build --preset release
	./build/release/apps/echod/echod $(ECHOD_ARGS)

test: test-dev test-asan

test-dev:
	cmake --workflow --preset dev

test-asan:
	cmake --workflow --preset asan

test-fortify:
	cmake --workflow --preset fortify

valgrind:
	cmake --preset dev >/dev/null
	cmake --build --preset dev
	python3 tests/valgrind.py build/dev

# New inputs go to build/fuzz/new-<target>, not to the committed corpus;
# copy the interesting ones into fuzz/corpus/<target> by hand.
FUZZ_SECONDS ?= 60
fuzz:
	cmake --preset fuzz >/dev/null
	cmake --build --preset fuzz
	set -e; for t in addr options stream proxy http; do \
	    mkdir -p build/fuzz/new-$$t; \
	    echo "== fuzz_$$t, $(FUZZ_SECONDS) s"; \
	    ./build/fuzz/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 -close_fd_mask=3 \
	        -artifact_prefix=build/fuzz/crash-$$t- build/fuzz/new-$$t fuzz/corpus/$$t \
	        >build/fuzz/fuzz_$$t.log 2>&1 || { tail -60 build/fuzz/fuzz_$$t.log; exit 1; }; \
	    grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|Done)' build/fuzz/fuzz_$$t.log; \
	done

SOAK_MINUTES ?= 30
soak:
	cmake --preset release >/dev/null
	cmake --build --preset release
	bench/soak.sh build/release $(SOAK_MINUTES)

bench:
	cmake --preset release >/dev/null
	cmake --build --preset release
	bench/run.sh build/release

package:
	cmake --preset release >/dev/null
	cmake --build --preset release
	cd build/release && cpack -G DEB

format:
	clang-format -i $(C_SOURCES)

format-check:
	clang-format --dry-run --Werror $(C_SOURCES)

clean:
	rm -rf build
