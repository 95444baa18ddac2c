# pageos: the two commands are `make run` and `make test` (see README.md).
# Both install what a fresh Debian machine lacks (scripts/setup.sh).

CARGO ?= cargo
SETUP := scripts/setup.sh

.PHONY: run test setup host-test qemu-test linux-test bench lint fmt clean

## Boot the kernel in QEMU and run /sbin/init (the guided tour).
run: setup
	$(CARGO) run -- $(ARGS)

## Every test: host unit/property tests, the QEMU integration tests, and
## the Linux-ABI cases run on a Debian Linux kernel in the same QEMU.
test: setup host-test qemu-test linux-test

host-test:
	$(CARGO) test -p vm

# The runner's own unit tests and the tests in boot/tests/ that boot QEMU.
# The dev profile already builds the kernel with opt-level 2 (Cargo.toml).
qemu-test:
	$(CARGO) test -p boot

## vmtest and proctest as init of Debian's Linux kernel: the cases both
## kernels share must pass there too (scripts/linux-run.py fetches the
## kernel once). The C programs' comparison is in boot/tests/proc.rs.
linux-test:
	python3 scripts/linux-run.py vmtest
	python3 scripts/linux-run.py proctest

## Host benchmarks of the VM bookkeeping (the VMA tree).
bench:
	$(CARGO) bench -p vm --bench vma_tree

## Install QEMU, OVMF, musl-tools and the pinned toolchain if missing.
setup:
	@sh $(SETUP)

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy -p vm --all-targets -- -D warnings
	$(CARGO) clippy -p boot --all-targets -- -D warnings
	$(CARGO) clippy -p kernel -p programs -p rt --target x86_64-unknown-none -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
