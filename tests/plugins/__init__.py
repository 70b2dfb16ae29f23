"""User components imported by path in the config tests (``"tests.plugins.my_model:..."``)."""
