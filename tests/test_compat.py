"""Every use of another package's internals still finds what it needs (pytest_orch.compat)."""

import pytest

from pytest_orch import compat


@pytest.mark.parametrize("name", sorted(compat.PROBES))
def test_internal_is_where_pytest_orch_expects_it(name):
    compat.PROBES[name]()  # raises CompatError naming the package and its version when one moved


def test_a_moved_internal_names_the_package_and_version():
    error = compat.moved("pytest-xdist", "WorkerInteractor.run_one_test")
    assert str(error).startswith("pytest-xdist 3.")
    assert "WorkerInteractor.run_one_test" in str(error)
    assert "checked against pytest-xdist 3.6 to 3.8" in str(error)
