# Distillery: the two commands of the README, and the steps they are made of.
#   make demo   set up a fresh machine, import the default teacher, embed sentences, then
#               run benchmarks/recipes/quickstart.json (sms-spam: teacher, student, pruned,
#               int8, int4, bench, report) into out/quickstart and print its trade-off table
#   make test   set up, build and run the whole test suite
#   make tuned-teachers   fine-tune MiniLM on the three packaged datasets (out/*.h5)
#   make journey          a new user's path with a small CSV (benchmarks/user_journey.sh)
#   make fuzz             every libFuzzer harness (Fuzz/) for FUZZ_SECONDS each (default 600)
SHELL := /bin/bash
KD_RELEASE := .build/release/kd
KERNEL_TESTS := TensorTests|TinyParityTests|OneForwardTests|ModelGradientTests|TrainingParityTests|OpGradientTests
# On the emulated AVX-512 path also the quantized models end to end (the VNNI and BF16 routes).
EMULATED_TESTS := $(KERNEL_TESTS)|QuantizationTests|ExportTests|QuantizeTests
TEACHER := teachers/minilm-l6/teacher.h5

.PHONY: demo test setup build release teacher bench clean tuned-teachers journey fuzz

setup:
	@scripts/setup.sh

release: setup
	swift build -c release --product kd

$(TEACHER): .cache/minilm-l6/model.safetensors $(KD_RELEASE)
	$(KD_RELEASE) import .cache/minilm-l6 --out $(TEACHER)

teacher: release $(TEACHER)

demo: teacher
	$(KD_RELEASE) info $(TEACHER) | head -4
	$(KD_RELEASE) embed --model $(TEACHER) --input examples/sentences.txt --out out-embeddings.jsonl --threads 2
	@python3 scripts/show_similarity.py out-embeddings.jsonl
	$(KD_RELEASE) run benchmarks/recipes/quickstart.json --out out/quickstart

test: setup
	swift build --build-tests
	swift test --skip-build --disable-swift-testing
	@# The kernel, parity and gradient tests again on every other path: the portable one,
	@# AVX2 when the default is AVX-512 (DISTILLERY_KERNELS forces a path), and on a CPU
	@# without every AVX-512 feature kd uses the AVX-512 kernels emulated by SIMDe in a second
	@# build, as three kinds of AVX-512 CPU (~3 min; scripts/test-avx512-emulated.sh).
	DISTILLERY_KERNELS=ref swift test --skip-build --disable-swift-testing --filter '$(KERNEL_TESTS)'
	if grep -qw avx512bw /proc/cpuinfo 2>/dev/null && grep -qw avx512vl /proc/cpuinfo && grep -qw avx512dq /proc/cpuinfo; then \
	    DISTILLERY_KERNELS=avx2 swift test --skip-build --disable-swift-testing --filter '$(KERNEL_TESTS)'; fi
	if ! { grep -qw avx512_vnni /proc/cpuinfo && grep -qw avx512bw /proc/cpuinfo && grep -qw avx512_bf16 /proc/cpuinfo; }; then \
	    scripts/test-avx512-emulated.sh '$(EMULATED_TESTS)'; fi
	@# kd run killed with SIGKILL at random moments and resumed gives the same files (~40 s).
	scripts/kill-resume.sh
	@# Every reader's fuzzer, a few seconds each on the committed seed corpus (Fuzz/corpus).
	scripts/fuzz.sh 5

FUZZ_SECONDS ?= 600
fuzz:
	scripts/fuzz.sh $(FUZZ_SECONDS)

# Fine-tuned teachers (git-ignored; teachers/README.md has what they scored): kd's defaults
# (a probe head reading the mean of the last hidden states, as MiniLM pools), 128 tokens;
# BBC articles at 256. The model stores its length, so eval needs no flag for it.
FINETUNE_FLAGS_sms-spam := --epochs 3
FINETUNE_FLAGS_bbc-news := --epochs 4 --max-length 256
FINETUNE_FLAGS_tweet-sentiment := --epochs 1

data/%/manifest.json: | release
	$(KD_RELEASE) data prepare $* --out data/$* --force

out/%.h5: data/%/manifest.json | teacher
	$(KD_RELEASE) finetune --model $(TEACHER) --data data/$* --out $@ $(FINETUNE_FLAGS_$*) --threads 2
	$(KD_RELEASE) eval --model $@ --data data/$* --split test

tuned-teachers: out/sms-spam.h5 out/bbc-news.h5 out/tweet-sentiment.h5

bench: teacher
	$(KD_RELEASE) bench latency --model $(TEACHER) --batch-size 1,32 --seq 128 --threads 1,2

journey: teacher
	benchmarks/user_journey.sh

clean:
	rm -rf .build .build-fuzz out-embeddings.jsonl
