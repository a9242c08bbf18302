"""Delivery: how a journal Bundle reaches a FHIR server, exactly once, and never the wrong one.

- :mod:`~fhir_safetyplan.delivery.deliver` — send one Bundle (through the outbox), flush what is pending, and
  classify what became of it (one :class:`~fhir_safetyplan.delivery.deliver.DeliveryResult`).
- :mod:`~fhir_safetyplan.delivery.outbox` — the outbox: a plan is stored before it is sent and marked delivered
  only after the server's 2xx; entries are leased so that several processes can share one outbox.
- :mod:`~fhir_safetyplan.delivery.outbox_sqlite`, :mod:`~fhir_safetyplan.delivery.outbox_repair` — the SQLite
  file behind the outbox (private creation, schema, damage) and ``outbox check`` / ``export``.
- :mod:`~fhir_safetyplan.delivery.outbox_keys` — the outbox key of a plan: its submission scoped by the patient.
- :mod:`~fhir_safetyplan.delivery.batch_send` — ``push --ndjson``'s sending threads: stored plans sent
  concurrently, one patient's plans one after the other in input order.
- :mod:`~fhir_safetyplan.delivery.guard` — the public-sandbox guard (no real-looking identity number is sent to
  a server anyone can read).
"""
