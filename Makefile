# Distillery: the two commands of the README, and the steps they are made of.
#   make demo   set up a fresh machine, import the default teacher, embed sentences
#   make test   set up, build and run the whole test suite
SHELL := /bin/bash
KD_RELEASE := .build/release/kd
TEACHER := teachers/minilm-l6/teacher.h5

.PHONY: demo test setup build release teacher bench clean

setup:
	@scripts/setup.sh

release: setup
	swift build -c release --product kd

$(TEACHER): .cache/minilm-l6/model.safetensors $(KD_RELEASE)
	$(KD_RELEASE) import .cache/minilm-l6 --out $(TEACHER)

teacher: release $(TEACHER)

demo: teacher
	$(KD_RELEASE) info $(TEACHER) | head -4
	$(KD_RELEASE) embed --model $(TEACHER) --input examples/sentences.txt --output out-embeddings.jsonl --threads 2
	@python3 scripts/show_similarity.py out-embeddings.jsonl

test: setup
	swift build --build-tests
	swift test --skip-build --disable-swift-testing

bench: teacher
	$(KD_RELEASE) bench latency --model $(TEACHER) --batch 1,32 --seq 128 --threads 1,2

clean:
	rm -rf .build out-embeddings.jsonl
