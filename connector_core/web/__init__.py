"""The operator web app: marketplace tiles, store settings, orders, shipments, packing slips.

``connector-host web`` serves it (:mod:`connector_core.web.commands`);
:func:`~connector_core.web.app.create_app` builds it for tests and other
ASGI servers. It needs the ``web`` extra: ``pip install 'connector-core[web]'``.
"""
