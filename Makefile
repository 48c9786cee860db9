# The two commands: `make demo` (set up and serve the demo) and `make test` (set up and pass the tests).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
EXTRAS := dev,eval

.PHONY: demo test lint serve bench eval venv clean-data

$(STAMP): pyproject.toml
	@echo "Setting up $(VENV): about 7 GB (torch, Whisper, CLIP, LanceDB...), roughly 5 minutes on a fast connection; once."
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[$(EXTRAS)]'
	@touch $(STAMP)

venv: $(STAMP)

## Set up everything, prepare models, seed the demo catalogue on first start and serve on 127.0.0.1:8000.
demo: venv
	$(BIN)/foryou demo

## Set up everything and run the linters, the layering contract and the test suite.
test: venv
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/pytest -q -rs

lint: venv
	$(BIN)/ruff check .
	$(BIN)/lint-imports

serve: venv
	$(BIN)/foryou serve

## Speed and memory benchmarks; results land in benchmarks/results/.
bench: venv
	$(BIN)/python benchmarks/run_all.py

## Offline evaluation on MovieLens-100k and the swipe simulator; the report lands in benchmarks/results/.
eval: venv
	$(BIN)/foryou eval report

clean-data:
	rm -rf data
