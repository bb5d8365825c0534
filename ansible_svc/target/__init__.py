"""Code that runs inside target interpreters.

Shipped on demand by mitogen's module forwarder from the mux. It may import
only the standard library and mitogen, and must run on every Python that the
supported ansible-core versions allow on targets (3.8 and later).
"""

# !mitogen: minify_safe
