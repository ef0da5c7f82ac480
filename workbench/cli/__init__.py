"""The ``snn-workbench`` commands: argument parsing and printing, no logic of their own.

``main`` builds the parser and maps errors to exit codes; ``args`` holds the arguments several
commands share; ``model_commands`` (run, verify, convert, neurons), ``eval_commands`` (evaluate,
diagnose, sweep) and ``trace_commands`` (compare, export-params, export-nir) call the same
functions the window calls; ``progress`` draws the terminal's progress bars.
May import every room (``views`` only to open the window or draw a report's plot).
"""
