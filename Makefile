# pageos: the two commands are `make run` and `make test` (see README.md).
# Both install what a fresh Debian machine lacks (scripts/setup.sh).

CARGO ?= cargo
SETUP := scripts/setup.sh

.PHONY: chaos shell run test setup host-test qemu-test linux-test linux-swaptest stress linux-pressuretest bench lint fmt clean gdb docs lab fuzz fuzz-tools fuzz-host fuzz-host-short miri miri-short

## Boot the kernel in QEMU and run /sbin/init (the guided tour).
run: setup
	$(CARGO) run -- $(ARGS)

## Boot into busybox's sh, typed into from this terminal (exit or ^D to
## power off); ARGS go to the runner, e.g. ARGS=--trace-faults.
shell: setup
	sh scripts/shell.sh $(ARGS)

## Every test: host unit/property tests, the QEMU integration tests, and
## the Linux-ABI cases run on a Debian Linux kernel in the same QEMU.
## Miri (one host thread) runs beside the Linux boots, two jobs at a time.
test: setup host-test qemu-test
	@$(MAKE) --no-print-directory -j2 -Otarget miri-short $(LINUX_TESTS:%=linux-%)

# The vm crate's tests, with the cargo-fuzz targets' checks over their seeds
# and 2 000 000 fixed-seed mutations each (vm/tests/fuzz_corpus.rs).
host-test:
	$(CARGO) test -p vm

# The runner's own unit tests and the tests in boot/tests/ that boot QEMU.
# The dev profile already builds the kernel with opt-level 2 (Cargo.toml).
qemu-test:
	$(CARGO) test -p boot --no-fail-fast

## vmtest, filetest, proctest, timetest, remaptest, memfdtest and thptest as init of Debian's Linux
## kernel: the cases both kernels share must pass there too
## (scripts/linux-run.py fetches the kernel once). Two at a time, one per
## core (TCG runs a guest on one host thread). swaptest on Linux with a swap
## disk is boot/tests/swap.rs's linux_comparison_one_swap_image_for_both_kernels;
## `make linux-swaptest` runs it with a disk made by Debian's mkswap. The C
## programs' comparison is in boot/tests/proc.rs.
LINUX_TESTS := vmtest filetest proctest timetest remaptest memfdtest thptest
linux-test:
	@$(MAKE) --no-print-directory -j2 -Otarget $(LINUX_TESTS:%=linux-%)
## The stale-memory races (userland/c/racetest.c) on 4 CPUs for minutes:
## STRESS_SECONDS per race (default 60); `make test` runs them for 2 s.
## Then every pressuretest case on Linux. (vmtest, proctest, filetest,
## isotest, the fuzzers and the pthreads program on 4 CPUs are in
## `make test` again since December 8: boot/tests/smp.rs says why.)
STRESS_SECONDS ?= 60
stress: setup
	STRESS_SECONDS=$(STRESS_SECONDS) $(CARGO) test -p boot --test races -- --ignored --nocapture
	@$(MAKE) --no-print-directory linux-pressuretest
linux-swaptest:
	python3 scripts/linux-run.py --swap 64M swaptest -- /dev/vda 65532
## pressuretest on Linux with swap (boot/tests/pressure.rs runs it too):
## Debian's kernel does not boot in 64 MiB, so 128 MiB and pageos's 512 MiB of swap.
linux-pressuretest:
	python3 scripts/linux-run.py --memory 128M --swap 512M pressuretest
## thptest on Linux in 1 GiB: Linux turns transparent huge pages off on a
## machine with less than 512 MiB of RAM (mm/huge_memory.c, hugepage_init).
linux-thptest:
	python3 scripts/linux-run.py --memory 1G thptest
linux-%:
	python3 scripts/linux-run.py $*

## Boot paused and debug the kernel: gdb loads its symbols at the load
## address and stops at kmain (the runner writes target/pageos.gdb).
gdb: setup
	$(CARGO) build
	rm -f target/pageos.gdb
	$(CARGO) run -- --gdb $(ARGS) & runner=$$!; \
	while [ ! -f target/pageos.gdb ]; do sleep 0.2; done; \
	gdb -q -x target/pageos.gdb; kill $$runner 2>/dev/null; wait

## The book (docs/) with mdBook and its Mermaid preprocessor, installed
## from crates.io when missing (mdbook-mermaid 0.17.1 is built against
## mdbook 0.5.0: other versions print a warning). Warnings fail the build.
## mdBook is built without its `serve` and `watch` features (a web server
## on tokio and axum, a file watcher): `mdbook build` needs neither, and
## they were most of the install's time.
MDBOOK_VERSION := 0.5.0
MDBOOK_MERMAID_VERSION := 0.17.1
docs:
	@mdbook --version 2>/dev/null | grep -q "v$(MDBOOK_VERSION)$$" || \
	  $(CARGO) install --locked --quiet --no-default-features --features search \
	    mdbook@$(MDBOOK_VERSION)
	@mdbook-mermaid --version 2>/dev/null | grep -q "$(MDBOOK_MERMAID_VERSION)$$" || \
	  $(CARGO) install --locked --quiet mdbook-mermaid@$(MDBOOK_MERMAID_VERSION)
	mdbook-mermaid install docs >/dev/null
	mkdir -p target
	mdbook build docs 2>&1 | tee target/docs.log
	@! grep -qiE "warn|error" target/docs.log || { echo "make docs: warnings above"; exit 1; }

## The syscall fuzzer in QEMU (docs/src/reliability.md): SEED and N
## operations; `make test` runs seed 1 for 1500 (boot/tests/fuzz.rs).
SEED ?= 1
N ?= 20000
fuzz: setup
	$(CARGO) run -- --timeout 3600 --kernel-arg init=/bin/fuzz -- $(SEED) $(N)

## The chaos fuzzer (docs/src/reliability.md): N children of random calls
## to every syscall number from SEED; `make test` runs seeds 1 and 2.
chaos: setup
	$(CARGO) run -- --timeout 3600 --kernel-arg init=/bin/chaos -- $(SEED) $(N)

## cargo-fuzz (libFuzzer) on the mmap validator and the ELF parser (fuzz/),
## FUZZ_SECONDS each; fuzz-host-short: 2 000 000 inputs each with seed 1.
## `make test` runs the same checks as an ordinary test (host-test).
FUZZ_SECONDS ?= 300
FUZZ_TARGETS := mmap_validate elf_plan
# cargo-fuzz from crates.io, when missing (only the host fuzz targets need it).
fuzz-tools:
	@command -v cargo-fuzz >/dev/null 2>&1 || $(CARGO) install --locked --quiet cargo-fuzz

fuzz-host-short: fuzz-tools
	@for t in $(FUZZ_TARGETS); do \
	  (cd fuzz && mkdir -p corpus/$$t && $(CARGO) fuzz run $$t -O corpus/$$t seeds/$$t -- \
	    -seed=1 -runs=2000000 2>&1 | tail -1) || exit 1; \
	done
fuzz-host: fuzz-tools
	@for t in $(FUZZ_TARGETS); do \
	  (cd fuzz && mkdir -p corpus/$$t && $(CARGO) fuzz run $$t -O corpus/$$t seeds/$$t -- \
	    -max_total_time=$(FUZZ_SECONDS)) || exit 1; \
	done

## Miri on the vm crate's tests: `make test` runs the unit tests with few
## proptest cases, but for four that only repeat one operation (65 535
## references to one frame, 1 000 inserts into the VMA tree, 2 000 frames
## into the reverse map, with and without first-owner words: 17 s of
## Miri's 60, and as much again) in safe code: they and the model tests
## run natively in host-test. `make miri` runs every test file.
MIRI_SKIP := --skip reference_counts_pass_65535 --skip a_thousand_inserts_stay_balanced \
  --skip add_remove_many_frames_and_owners --skip many_frames_with_first_owner_words
miri-short:
	PROPTEST_CASES=4 MIRIFLAGS=-Zmiri-disable-isolation $(CARGO) miri test -p vm --lib -- $(MIRI_SKIP)
miri:
	PROPTEST_CASES=16 MIRIFLAGS=-Zmiri-disable-isolation $(CARGO) miri test -p vm

## pageos against Linux in the same QEMU (scripts/bench.py: the table,
## docs/src/bench/), then the host benchmark of the VMA tree.
bench: setup
	python3 scripts/bench.py
	$(CARGO) bench -p vm --bench vma_tree

## Install QEMU, OVMF, musl-tools and the pinned toolchain if missing.
setup:
	@sh $(SETUP)

# The kernel denies `unsafe` blocks without a `// SAFETY:` comment
# (clippy::undocumented_unsafe_blocks, kernel/src/main.rs).
lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy -p vm --all-targets -- -D warnings
	$(CARGO) clippy -p boot --all-targets -- -D warnings
	$(CARGO) clippy -p kernel -p programs -p rt --target x86_64-unknown-none -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean

## One exercise of the labs chapter (docs/src/labs.md): its tests fail
## until the lab is done. Labs 1-4 and 6 are host tests, labs 5 and 7 boot QEMU.
lab:
	@case "$(N)" in \
	  1|2|3|4|6) $(CARGO) test -p vm --test labs -- --ignored lab$(N)_ ;; \
	  5|7) $(CARGO) test -p boot --test labs -- --ignored lab$(N)_ ;; \
	  *) echo "usage: make lab N=<1-7>   (the labs are in docs/src/labs.md)"; \
	     echo "  1 a wider stack guard gap     2 fault-around for anonymous memory"; \
	     echo "  3 MADV_COLD                   4 bottom-up placement"; \
	     echo "  5 mremap                      6 FIFO page replacement"; \
	     echo "  7 munmap's missing shootdown"; \
	     exit 2 ;; \
	esac
