"""``python -m ddapps.distributed``: one process per rank under ``torchrun``."""

from ddapps.distributed.cli import main

raise SystemExit(main())
