# videofusion: `make demo` runs the whole job on the demo data; `make test` runs the test suite.
# Both create .venv/ and install the pinned dependencies first.

# The pinned wheels are built for Python 3.11: python3.11, else python3 if that is 3.11; stop at once
# (before creating anything) with neither.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3 2>/dev/null)
VENV := .venv
BIN := $(VENV)/bin
VF := $(BIN)/videofusion
EXP ?= demo
DEMO_RAW := datasets/demo/raw
DEMO_DATA := datasets/demo/records
DATA ?= $(DEMO_DATA)
DEMO_VIDEOS ?= 720
# pytest-xdist processes: much of a test's time is single-threaded (imports, graph tracing).
TEST_WORKERS ?= 2

ABLATION := frame frame_pooled_cnn frame_avg lstm transformer audio fusion_concat fusion_cross_attention fusion_bottleneck

.PHONY: install install-bench install-beam install-search install-litert test lint demo data train pretrain evaluate export predict embed search tensorboard ablation bench bench-appearance bench-pretrain bench-accelerator bench-retrieval bench-edge bench-stream clean

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt setup.py
	@test -n "$(PYTHON)" || { echo "videofusion needs Python 3.11: neither python3.11 nor python3 is on PATH (or pass PYTHON=/path/to/python3.11)" >&2; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || { echo "videofusion needs Python 3.11; $(PYTHON) is $$($(PYTHON) -V 2>&1)" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

# The linter first (ruff.toml), then the tests; those of the Beam runner (tests/test_beam.py), of the
# FAISS index (tests/test_vector_index.py), of LiteRT (tests/test_litert.py) and of live streams served by
# FFmpeg (tests/test_stream.py: the bench extra's static ffmpeg) run too: `make test` installs the beam,
# faiss, litert and bench extras.
test: install-beam install-search install-litert install-bench lint
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal

lint: install
	$(BIN)/ruff check videofusion tests benchmarks experiments setup.py

data: $(DEMO_DATA)/dataset.json

$(DEMO_DATA)/dataset.json: $(VENV)/.installed
	$(VF) demo-data --output $(DEMO_RAW) --num-videos $(DEMO_VIDEOS) --seed 0
	$(VF) prepare --manifest $(DEMO_RAW)/manifest.csv --output $(DEMO_DATA) --fps 10 --short-side 64 --num-shards 4

train: install
	$(VF) train --config experiments/$(EXP).py --workdir runs/$(EXP)

# Self-supervised: the experiment's encoders learn from all training clips, labels unused, into
# runs/$(EXP)_pretrain; then `make train EXP=…` with model.init_from=runs/$(EXP)_pretrain in the experiment.
pretrain: install
	$(VF) pretrain --config experiments/$(EXP).py --workdir runs/$(EXP)_pretrain

evaluate: install
	$(VF) evaluate --workdir runs/$(EXP) --split test

# The next version, exports/$(EXP)/<N+1>: TF Serving may be serving the versions already there.
export: install
	$(VF) export --workdir runs/$(EXP) --output exports/$(EXP)

# The newest version under exports/$(EXP) (the largest number).
predict: install
	$(VF) predict --model exports/$(EXP)/$$(ls exports/$(EXP) | grep -xE '[0-9]+' | sort -n | tail -n 1) --top-k 3 $(DEMO_RAW)/videos/00024_disk-left-low.mp4 $(DEMO_RAW)/videos/00035_cross-right-high.mp4

# One embedding per video of DATA (prepared shards) → embeddings/$(EXP) (resumes an unfinished one).
embed: install
	$(VF) embed --model runs/$(EXP) --data $(DATA) --output embeddings/$(EXP)

# The videos nearest a demo test video (a disk moving left, low tone), as JSON lines.
search: install
	$(VF) search --index embeddings/$(EXP) --top-k 5 $(DEMO_RAW)/videos/00024_disk-left-low.mp4

demo: install
	rm -rf $(DEMO_RAW) $(DEMO_DATA) runs/demo exports/demo embeddings/demo
	$(MAKE) data
	$(MAKE) train EXP=demo
	$(MAKE) evaluate EXP=demo
	$(MAKE) export EXP=demo
	$(MAKE) predict EXP=demo
	$(MAKE) embed EXP=demo
	$(MAKE) search EXP=demo

# Trains and evaluates every row of the model ablation on the demo data, then writes the table.
ablation: data
	for exp in $(ABLATION); do $(MAKE) train evaluate EXP=$$exp || exit 1; done
	$(VF) report --output results/ablation.md $(addprefix runs/,$(ABLATION))

# The speed benchmarks, one after the other (about 20 minutes on 2 cores) → results/benchmarks.md.
bench: install-bench install-beam
	$(BIN)/python benchmarks/run_benchmarks.py --output results/benchmarks.md

# The accuracy benchmark on a held-out set that needs appearance (an hour or more on 2 cores).
bench-appearance: install
	$(BIN)/python benchmarks/bench_appearance.py --epochs 15

# Few labels, from scratch and from `pretrain`, on the agreement set (about an hour on 2 cores).
bench-pretrain: install
	$(BIN)/python benchmarks/bench_pretrain.py --output results/pretrain.md

# Accelerators: first step (trace + compile), in-memory and from-shards step rates per model × backend ×
# precision at this machine's size (`--size gpu` on a GPU), and the input candidates (JPEG decoding per
# core at model resolution, a frame cache) → results/accelerator.md, results/input.md (about 15 minutes
# on 2 cores).
bench-accelerator: install-bench data
	$(BIN)/python benchmarks/bench_accelerator.py --size cpu --output results/accelerator.md
	$(BIN)/python benchmarks/bench_input.py --output results/input.md

# Retrieval quality (fused and pretrained spaces, demo and appearance sets) and the search index's cost
# (about 40 minutes on 2 cores) → results/retrieval.md.
bench-retrieval: install-beam install-search
	$(BIN)/python benchmarks/bench_retrieval.py --output results/retrieval.md

# LiteRT's float32, float16 and int8 models against the SavedModel (parity, size, latency on 1 core) for the
# demo, the appearance set and the edge configuration → results/edge.md.
bench-edge: install-litert
	test -f runs/demo/model.keras || $(MAKE) demo
	test -f runs/edge/model.keras || $(MAKE) train evaluate EXP=edge
	$(BIN)/python benchmarks/bench_edge.py --runs edge=runs/edge --output results/edge.md

# `videofusion stream` on 60 s of demo videos played at real speed, hop 0.5 and 1 s, with a new export of the
# demo run (its metadata has the clip's stride) → results/stream.md.
bench-stream: install-bench
	test -f runs/demo/model.keras || $(MAKE) demo
	$(MAKE) export EXP=demo
	$(BIN)/python benchmarks/bench_stream.py --output results/stream.md \
		--model exports/demo/$$(ls exports/demo | grep -xE '[0-9]+' | sort -n | tail -n 1)

install-bench: $(VENV)/.installed-bench

$(VENV)/.installed-bench: $(VENV)/.installed
	$(BIN)/pip install --quiet -e ".[bench]"
	touch $@

# Apache Beam for `videofusion prepare --runner beam` (the `beam` extra), at requirements-beam.txt's pins.
install-beam: $(VENV)/.installed-beam

$(VENV)/.installed-beam: $(VENV)/.installed requirements-beam.txt
	$(BIN)/pip install --quiet -r requirements-beam.txt
	touch $@

# FAISS for `videofusion search` over large collections (the `faiss` extra), at requirements-search.txt's pins.
install-search: $(VENV)/.installed-search

$(VENV)/.installed-search: $(VENV)/.installed requirements-search.txt
	$(BIN)/pip install --quiet -r requirements-search.txt
	touch $@

# The LiteRT interpreter for `videofusion export --format litert` and `predict` on .tflite models (the
# `litert` extra), at requirements-litert.txt's pins.
install-litert: $(VENV)/.installed-litert

$(VENV)/.installed-litert: $(VENV)/.installed requirements-litert.txt
	$(BIN)/pip install --quiet -r requirements-litert.txt
	touch $@

tensorboard: install
	$(BIN)/tensorboard --logdir runs

clean:
	rm -rf datasets/demo runs exports embeddings .pytest_cache
