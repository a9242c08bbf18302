"""``python -m fhir_safetyplan`` is the ``safetyplan`` command."""

from fhir_safetyplan.cli import main

raise SystemExit(main())
