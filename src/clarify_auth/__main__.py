"""``python -m clarify_auth``: the same as the ``clarify-auth`` command."""

from clarify_auth.cli.main import main

raise SystemExit(main())
