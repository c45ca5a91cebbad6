# Makefile — the README's two commands and a few conveniences; the build itself is CMake.
#   make serve   install deps, build, fetch the default model, start the server on it
#   make test    install deps, build, fetch the default model, run every test (what CI runs)
BUILD ?= build
JOBS ?= $(shell nproc)

.PHONY: all deps build model serve run test unit e2e asan fuzz clean

all: build

deps:
	@scripts/setup-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

model: deps
	@scripts/fetch-model.sh >/dev/null

serve: build model
	$(BUILD)/locara serve

run: build model
	$(BUILD)/locara run -p "Write a haiku about memory bandwidth."

unit: build model
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

e2e: build model
	LOCARA_BIN=$(abspath $(BUILD))/locara .venv/bin/python -m pytest -q tests/e2e

test: unit e2e

asan: deps
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DLOCARA_SANITIZE=ON >/dev/null
	@cmake --build build-asan -j $(JOBS)
	cd build-asan && ctest --output-on-failure -j $(JOBS)

fuzz: deps
	@CC=clang cmake -S . -B build-fuzz -DLOCARA_FUZZ=ON -DLOCARA_WERROR=OFF -DLOCARA_CUDA=OFF >/dev/null
	@cmake --build build-fuzz -j $(JOBS)

clean:
	rm -rf $(BUILD) build-asan build-fuzz
