# The front door. `make demo` builds everything and runs the tour; `make test` builds and
# runs the whole suite. Missing Debian packages are installed by scripts/deps.sh.
PREFIX ?= /usr/local
JOBS ?= $(shell nproc)
CTEST_ARGS ?=

.PHONY: all deps demo test tsan asan tsa bench docs install format clean

all: test

deps:
	@bash scripts/deps.sh

build/default/build.ninja: | deps
	cmake --preset default

demo: deps
	cmake --preset default >/dev/null
	cmake --build --preset default -j $(JOBS)
	bash scripts/demo.sh build/default

test: deps
	cmake --preset default >/dev/null
	cmake --build --preset default -j $(JOBS)
	ctest --preset default -j $(JOBS) $(CTEST_ARGS)

tsan: deps
	cmake --preset tsan >/dev/null
	cmake --build --preset tsan -j $(JOBS)
	ctest --preset tsan -j $(JOBS) $(CTEST_ARGS)

asan: deps
	cmake --preset dev >/dev/null
	cmake --build --preset dev -j $(JOBS)
	ctest --preset dev -j $(JOBS) $(CTEST_ARGS)

# clang's -Wthread-safety over the library (CONCUR_GUARDED_BY & co., detail/
# thread_annotations.hpp): compiles only, as an error on any finding.
tsa: deps
	cmake --preset clang-tsa >/dev/null
	cmake --build --preset clang-tsa -j $(JOBS)

bench: deps
	cmake --preset bench >/dev/null
	cmake --build --preset bench -j $(JOBS)
	bash bench/run.sh build/bench

# The API reference from the headers (Doxygen; HTML in build/docs/html). Warnings fail it.
docs: deps
	doxygen docs/api/Doxyfile
	@echo "API reference: build/docs/html/index.html"

install: deps
	cmake --preset release >/dev/null
	cmake --build --preset release -j $(JOBS)
	cmake --install build/release --prefix $(PREFIX)

format:
	find include src tests examples bench -name '*.hpp' -o -name '*.cpp' -o -name '*.h' | xargs clang-format -i

clean:
	rm -rf build
