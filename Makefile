# Thin wrapper over the CMake presets: the two commands a newcomer needs,
# and a few more. All real build logic lives in CMakeLists.txt.
#   make run    build (release) and start echod on localhost:10000
#   make test   build and run every test, normal build then ASan+UBSan build
#   make bench  build (release) and run the benchmarks (not part of test)
#   make format reformat all C sources with clang-format
#   make package  build the .deb packages (release) into build/release/packages
# Set IOMUX_WERROR=ON to turn warnings into errors (CI does).

ECHOD_ARGS ?=
C_SOURCES = $(shell git ls-files '*.c' '*.h' 2>/dev/null || find . -name '*.[ch]' -not -path './build/*')

.PHONY: all build run test test-dev test-asan bench package format format-check clean

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
