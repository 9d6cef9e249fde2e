# The README's commands.  CMake does the building; this file only installs
# what is missing and strings the steps together.
#   make        build into build/ (the CLI is build/bin/ipcx)
#   make run    build, then run the benchmark (ipcx bench --quick, under a
#               minute): the table on the terminal, build/bench.json and
#               build/bench.html beside it.  The full run (all sizes, about
#               five minutes) is ./build/bin/ipcx bench; see docs/bench.md.
#   make lint   cppcheck over src, tools and bench
#   make test   build and run the whole suite twice: plainly, then under
#               AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/)

# Debian packages the build, the tests and the benchmark need.
PACKAGES := cmake make gcc clang pkg-config libcriterion-dev libjson-c-dev socat netcat-openbsd jq \
            libzmq3-dev libnng-dev iceoryx libiceoryx-binding-c-dev \
            python3 python3-pil chromium scdoc libspdlog-dev g++ nats-server libnats-dev procps
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all build run test test-plain test-asan deps clean install lint

all: build

deps:
	@missing=""; for p in $(PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" -ne 0 ]; then echo "run as root, or install:$$missing" >&2; exit 1; fi; \
	  apt-get -o DPkg::Lock::Timeout=600 update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq $$missing >/dev/null; \
	fi

build: deps
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	@cmake --build build -j $(JOBS)

run: build
	./build/bin/ipcx bench --quick --json build/bench.json --report build/bench.html

test: test-plain test-asan

test-plain: build
	ctest --test-dir build --output-on-failure -j $(JOBS)

test-asan: deps
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DIPCX_SANITIZE=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build build-asan -j $(JOBS)
	ctest --test-dir build-asan --output-on-failure -j $(JOBS)

# Static analysis: cppcheck over the library, the CLI and the benchmark.
lint:
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	  --inline-suppr -D_GNU_SOURCE -DIPCX_EXPORT= -Iinclude -Isrc src tools bench

# make install PREFIX=/opt/ipcx installs there; without PREFIX, where
# CMake was configured to (CMAKE_INSTALL_PREFIX, /usr/local by default).
install: build
	cmake --install build $(if $(PREFIX),--prefix "$(PREFIX)")

clean:
	rm -rf build build-asan
