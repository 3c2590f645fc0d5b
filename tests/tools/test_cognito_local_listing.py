"""The listing index answers every ListUsers / ListUsersInGroup page exactly as moto does.

Both are asked the same questions in one process (so moto's page tokens, whose checksum is a
Python hash, are comparable): every page of every listing the tool makes (no filter, the 16
`sub ^=` shards, each group) and others (`username`, `sub =`, limits 1 to 60, a token reused
after its user is gone, a token from another listing), for a seeded pool and again after users
are created, deleted and updated and memberships change through moto's API.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from moto.backends import get_backend
from moto.core.exceptions import JsonRESTError

from cognito_backup.aws import AwsClients
from cognito_local import listing
from cognito_local.seed import create_pool, seed_pool

REGION = "us-east-1"
SHARDS = [f'sub ^= "{c}"' for c in "0123456789abcdef"]


@pytest.fixture
def cognito(aws: AwsClients) -> Any:
    return aws.cognito()


@pytest.fixture
def pool_id(cognito: Any) -> str:
    pool = create_pool(cognito, "indexed")
    seed_pool(cognito, pool, users=700, groups=4, big_group_members=200)
    return pool


def backend() -> Any:
    return get_backend("cognito-idp")["123456789012"][REGION]


Answer = tuple[str, list[str], str | None]


def answer(call: Any, *args: Any, **kwargs: Any) -> Answer:
    """What a call answers, as comparable data: ("ok", usernames, token) or ("error", type, None)."""
    try:
        users, token = call(backend(), *args, **kwargs)
    except JsonRESTError as error:  # moto's refusals (InvalidToken, ResourceNotFound, ...)
        return ("error", [type(error).__name__, str(error)], None)
    return ("ok", [u.username for u in users], token)


def walk(call: Any, args: tuple[Any, ...], limit: int | None, token_name: str) -> Iterator[Answer]:
    token: str | None = None
    while True:
        got = answer(call, *args, limit=limit, **{token_name: token})
        yield got
        if got[0] != "ok" or not got[2]:
            return
        token = got[2]


def listings(pool: str, group_names: list[str]) -> list[tuple[str, tuple[Any, ...], str]]:
    users = [("list_users", (pool, f), "pagination_token") for f in [None, "", *SHARDS]]
    users += [("list_users", (pool, f), "pagination_token") for f in ('username ^= "user-1"', 'sub = "x"')]
    users += [("list_users_in_group", (pool, g), "next_token") for g in group_names]
    return users


def compare_everything(cognito: Any, pool: str) -> int:
    names = [g["GroupName"] for g in cognito.list_groups(UserPoolId=pool, Limit=60)["Groups"]]
    pages = 0
    for name, args, token_name in listings(pool, names):
        for limit in (None, 1, 7, 60):
            ours = list(walk(getattr(listing, name), args, limit, token_name))
            moto = list(walk(listing.moto_function(name), args, limit, token_name))
            assert ours == moto, (name, args, limit)
            pages += len(ours)
    return pages


def test_every_page_is_moto_s_page_before_and_after_changes(cognito: Any, pool_id: str) -> None:
    # Given a seeded pool: every listing, at several limits, agrees page by page, tokens included
    assert compare_everything(cognito, pool_id) > 300

    # When users are created, deleted, updated, disabled, and memberships change through moto
    for n in range(30):
        cognito.admin_create_user(UserPoolId=pool_id, Username=f"late-{n}", MessageAction="SUPPRESS")
    listed = [u["Username"] for u in cognito.list_users(UserPoolId=pool_id, Limit=60)["Users"]]
    for name in listed[:25]:
        cognito.admin_delete_user(UserPoolId=pool_id, Username=name)
    group = cognito.list_groups(UserPoolId=pool_id, Limit=60)["Groups"][0]["GroupName"]
    for n in range(10):
        cognito.admin_add_user_to_group(UserPoolId=pool_id, Username=f"late-{n}", GroupName=group)
    members = cognito.list_users_in_group(UserPoolId=pool_id, GroupName=group, Limit=60)["Users"]
    for user in members[:5]:
        cognito.admin_remove_user_from_group(UserPoolId=pool_id, Username=user["Username"], GroupName=group)
    cognito.admin_update_user_attributes(
        UserPoolId=pool_id, Username="late-3", UserAttributes=[{"Name": "name", "Value": "Late Three"}]
    )
    cognito.admin_disable_user(UserPoolId=pool_id, Username="late-4")
    cognito.create_group(UserPoolId=pool_id, GroupName="new-group")
    cognito.admin_add_user_to_group(UserPoolId=pool_id, Username="late-5", GroupName="new-group")

    # Then every listing still agrees with moto, new group included
    assert compare_everything(cognito, pool_id) > 300


def test_a_token_whose_user_is_gone_or_from_another_listing_fails_as_in_moto(
    cognito: Any, pool_id: str
) -> None:
    # Given a token that points at some user, from the unfiltered listing and from a group
    _, _, token = answer(listing.list_users, pool_id, None, limit=10)
    group = cognito.list_groups(UserPoolId=pool_id, Limit=60)["Groups"][0]["GroupName"]
    _, _, group_token = answer(listing.list_users_in_group, pool_id, group, limit=10)
    assert token and group_token

    # Then a token of another filter, garbage, or one whose user was deleted fail alike
    for args, kwargs in (
        ((pool_id, 'sub ^= "0"'), {"pagination_token": token}),
        ((pool_id, None), {"pagination_token": "not-a-token"}),
    ):
        assert answer(listing.list_users, *args, **kwargs) == answer(
            listing.moto_function("list_users"), *args, **kwargs
        )
    page = answer(listing.list_users, pool_id, None, limit=10, pagination_token=token)[1]
    cognito.admin_delete_user(UserPoolId=pool_id, Username=page[0])
    ours = answer(listing.list_users, pool_id, None, limit=10, pagination_token=token)
    assert ours == answer(
        listing.moto_function("list_users"), pool_id, None, limit=10, pagination_token=token
    )
    assert ours[0] == "error"


def test_installed_it_answers_the_api_and_moto_functions_come_back(cognito: Any, pool_id: str) -> None:
    before = cognito.list_users(UserPoolId=pool_id, Limit=60, Filter='sub ^= "a"')
    listing.install()
    try:
        assert listing.installed()
        first = cognito.list_users(UserPoolId=pool_id, Limit=60, Filter='sub ^= "a"')
        assert first["Users"] == before["Users"] and first.get("PaginationToken") == before.get(
            "PaginationToken"
        )
        pool = backend().user_pools[pool_id]
        assert isinstance(pool.users, listing.CountedUsers) and pool.users.listings
        cognito.admin_create_user(UserPoolId=pool_id, Username="after-install", MessageAction="SUPPRESS")
        assert not pool.users.listings  # the write dropped the cached lists
        seen = {u["Username"] for u in walk_api(cognito, pool_id)}
        assert "after-install" in seen and len(seen) == len(pool.users)
    finally:
        listing.uninstall()
    assert not listing.installed()
    assert backend().__class__.list_users is listing.moto_function("list_users")


def walk_api(cognito: Any, pool_id: str) -> Iterator[dict[str, Any]]:
    kwargs: dict[str, Any] = {"UserPoolId": pool_id, "Limit": 60}
    while True:
        page = cognito.list_users(**kwargs)
        yield from page["Users"]
        if not page.get("PaginationToken"):
            return
        kwargs["PaginationToken"] = page["PaginationToken"]


def test_a_filter_on_a_mutable_attribute_is_left_to_moto() -> None:
    assert listing.indexed_filter(None) and listing.indexed_filter('sub ^= "a"')
    assert listing.indexed_filter('username = "x"')
    assert not listing.indexed_filter('email ^= "a"') and not listing.indexed_filter('status = "Enabled"')
    assert not listing.indexed_filter("garbage")


def test_the_local_server_lists_through_the_index_while_it_runs() -> None:
    from cognito_local.server import LocalAws

    with LocalAws(index=False):
        assert not listing.installed()
    with LocalAws():
        assert listing.installed()
    assert not listing.installed()
