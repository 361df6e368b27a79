# Thin wrapper around meson/ninja and the scripts; see README.md.
GUEST ?= minimal
BUILD ?= build
MEM ?= 1GB

.PHONY: all deps build guest run test clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	@[ -d $(BUILD) ] || meson setup $(BUILD)
	@ninja -C $(BUILD)

guest: deps
	@scripts/guest.sh $(GUEST)

ifeq ($(GUEST),debian)
RUN_KERNEL = .cache/guest/debian/vmlinuz
RUN_INITRD = .cache/guest/debian/initrd.img
else
RUN_KERNEL = .cache/guest/minimal/bzImage
RUN_INITRD = .cache/guest/minimal/initrd.img
endif

run: build guest
	$(BUILD)/hvmm -k $(RUN_KERNEL) -r $(RUN_INITRD) -m $(MEM)

test: deps
	@tests/run.sh

clean:
	rm -rf $(BUILD) build-clang build-asan
