"""The built-in plugins: loaders, the Table Schema validator and sinks.

Each module is an ordinary tallyclerk plugin, registered through the ``tallyclerk`` entry-point
group like any third-party plugin, and uses only the public API (``tallyclerk.hookspecs``,
the classes of ``tallyclerk`` and ``tallyclerk.audit``).
"""
