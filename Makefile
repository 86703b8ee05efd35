# vdk: the one entry point. `make check` is the test command CI runs.
.PHONY: all build check demo deps fuzz-long bench format clean

all: build

deps:
	scripts/install-deps.sh

build: deps
	@[ -f build/build.ninja ] || meson setup build -Dwerror=true
	ninja -C build

# Installs missing Debian packages, builds (normal, ASan+UBSan, libFuzzer),
# runs every test and a short fuzz smoke run; ends "check: N passed, ...".
check:
	scripts/check.sh

# A stock Linux guest under QEMU uses vdk's vhost-user blk and rng backends.
demo:
	scripts/demo.sh

# The long fuzz run: FUZZ_SECONDS per target (default 600).
fuzz-long:
	FUZZ_SECONDS=$${FUZZ_SECONDS:-600} scripts/fuzz.sh

# Benchmarks, with instruction counts under callgrind.
bench: build
	scripts/bench.sh

format:
	git ls-files '*.c' '*.h' | xargs clang-format -i

clean:
	rm -rf build build-san build-fuzz
