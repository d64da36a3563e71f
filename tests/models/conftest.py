"""Parametrizes the shared model checks over each family's models."""


def pytest_generate_tests(metafunc):
    """`model_name` runs over the `NARROW` models of the test class that asks for it."""
    if "model_name" in metafunc.fixturenames:
        metafunc.parametrize("model_name", sorted(metafunc.cls.NARROW))
