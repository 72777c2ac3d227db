"""``python -m ddapps.cli`` runs the ``ddapps`` command."""

from ddapps.cli import main

raise SystemExit(main())
