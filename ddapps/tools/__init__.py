"""Developer tools that check the package itself (``python -m ddapps.tools.layers``)."""
