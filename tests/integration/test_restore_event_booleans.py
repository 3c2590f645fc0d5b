"""The restore handler takes JSON booleans only: "yes", "true" or 1 for a flag is refused.

A flag parsed loosely ("yes" is true) would let a typo or a template string turn a dry run into
a real restore, or switch on force/allow_same_pool/mirror. The refusal comes before any AWS call
and names the field, never its value.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import load_event

from cognito_backup.errors import UsageError
from cognito_backup.handlers import parse_restore_event, restore_handler

FLAGS = ("dry_run", "force", "allow_same_pool", "mirror")


@pytest.mark.parametrize("flag", FLAGS)
@pytest.mark.parametrize("value", ["yes", "true", "false", 1, 0, None])
def test_a_flag_that_is_not_a_json_boolean_is_refused(flag: str, value: Any, lambda_context: Any) -> None:
    event = {**load_event("restore"), flag: value}
    with pytest.raises(UsageError, match=f"malformed restore event: {flag}: Input should be a valid boolean"):
        restore_handler(event, lambda_context)


def test_json_booleans_parse() -> None:
    for flag in FLAGS:
        assert getattr(parse_restore_event({**load_event("restore"), flag: True}), flag) is True
        assert getattr(parse_restore_event({**load_event("restore"), flag: False}), flag) is False
