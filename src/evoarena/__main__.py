"""``python -m evoarena`` runs the command line."""

from evoarena.cli import main

raise SystemExit(main())
