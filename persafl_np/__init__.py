"""persafl_np: personalized asynchronous federated learning in pure NumPy.

See README.md for the package map; the mathematics the code cites lives in ``theory/``.
"""

__version__ = "0.1.0"
