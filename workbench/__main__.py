"""``python -m workbench`` does what the ``snn-workbench`` console script does."""

from workbench.cli.main import main

raise SystemExit(main())
