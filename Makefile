# The README's commands. Each target creates .venv on first use and reinstalls when pyproject.toml changes.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test bench clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/seqzoo demo $(ARGS)

# Two workers, a test file each at a time (module fixtures stay in one process): most of the
# suite's time is single-threaded graph tracing. ARGS='-n 0' runs it in one process.
test: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadfile tests $(ARGS)

bench: $(STAMP)
	$(PY) -m bench $(ARGS)

clean:
	rm -rf $(VENV) runs models
