# Two commands for a new user (see README.md):
#   make run    set everything up and open the workbench on the bundled demo
#   make test   set everything up and run the test suite
.PHONY: setup run test bench screenshots clean

setup:
	@bash scripts/setup.sh

run: setup
	@if [ -n "$$DISPLAY$$WAYLAND_DISPLAY" ]; then \
		.venv/bin/snn-workbench gui; \
	else \
		echo "No display found: running the headless demo instead (for the window: xvfb-run make run)."; \
		.venv/bin/snn-workbench run --demo; \
	fi

test: setup
	QT_QPA_PLATFORM=offscreen .venv/bin/python -m pytest -q

bench: setup
	.venv/bin/python -m benchmarks

clean:
	rm -rf .venv .pytest_cache build *.egg-info
