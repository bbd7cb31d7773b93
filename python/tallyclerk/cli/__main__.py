"""``python -m tallyclerk.cli``: the same as the ``tallyclerk`` console script."""

from tallyclerk.cli import console_main

console_main()
