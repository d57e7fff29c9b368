"""Settings from the environment: a misspelled FEEDBACKGUARD_* variable is an error."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from feedbackguard.cli import main
from feedbackguard.settings import (
    OTHER_NAMES,
    PREFIX,
    Settings,
    UnknownSettingError,
    check_environment,
    known_names,
)

FIELDS = Settings.model_fields


def test_a_misspelled_variable_is_an_error_naming_the_closest_known_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FEEDBACKGUARD_REDIS_ULR", "redis://127.0.0.1:6379/0")
    with pytest.raises(UnknownSettingError, match="did you mean FEEDBACKGUARD_REDIS_URL"):
        Settings()


def test_the_test_suites_own_variables_are_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEEDBACKGUARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    monkeypatch.setenv("FEEDBACKGUARD_TEST_DATABASE_URL", "postgresql://localhost/test")
    monkeypatch.setenv("FEEDBACKGUARD_TEST_SCREENSHOTS", "/tmp/shots")
    Settings()  # no UnknownSettingError


def test_cli_shows_an_unknown_variable_as_a_one_line_error() -> None:
    result = CliRunner(env={"FEEDBACKGUARD_STOER_URL": "sqlite://"}).invoke(
        main, ["store", "versions"]
    )
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "Error: unknown setting FEEDBACKGUARD_STOER_URL in the environment; "
        "did you mean FEEDBACKGUARD_STORE_URL?"
    ]


@given(st.sampled_from(known_names(FIELDS)))
def test_every_known_name_is_accepted(name: str) -> None:
    check_environment({name: "x", "PATH": "/bin"}, FIELDS)


@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789", min_size=1, max_size=30))
def test_every_other_prefixed_name_is_refused_by_name(suffix: str) -> None:
    name = PREFIX + suffix
    if name in known_names(FIELDS):
        return
    with pytest.raises(UnknownSettingError, match=name):
        check_environment({name: "x"}, FIELDS)


@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ_", min_size=1, max_size=30))
def test_names_without_the_prefix_are_none_of_our_business(name: str) -> None:
    if name.startswith(PREFIX):
        return
    check_environment({name: "x"}, FIELDS)


def test_the_names_read_outside_settings_are_known() -> None:
    assert set(known_names(FIELDS)) >= OTHER_NAMES
