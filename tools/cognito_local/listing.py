"""An index over moto's user lists: ListUsers and ListUsersInGroup pages in O(page), same answers.

moto answers every page by building (and filtering) the pool's whole user list, then finding
the page's start with a linear scan for the token's user id (moto.utilities.paginator): O(pool)
a page, so listing a pool of N users costs O(N²/60), and from ~50,000 users moto, not the quota,
binds a benchmark (docs/benchmarks.md). This index keeps, per pool and listing, **moto's own
answer list**, computed once by moto's own undecorated function, and each user's position in it;
a page is then a slice, paged with moto's own `Paginator` (the same tokens, `Limit` default,
checksum and `InvalidToken` errors), so the answers are moto's by construction.

A list stays valid while what it was computed from is unchanged:
- the pool's user dict (`CognitoIdpUserPool.users`) and each listed group's member set
  (`CognitoIdpGroup.users`) are swapped, on first use, for subclasses that count their
  mutations, whichever path changes them (AdminCreateUser, SignUp, AdminDeleteUser,
  AdminAddUserToGroup, AdminRemoveUserFromGroup, `seed`'s direct inserts); a mutation drops the
  lists computed from that container;
- only listings whose answer depends on nothing else are indexed: no filter, or a filter on
  `sub` or `username` (immutable: the strict engine refuses writes of `sub`; a rename does not
  exist). A filter on a mutable attribute (email, status, ...) goes to moto as before: O(pool),
  and still right.

`install()` patches moto's backend class for the process (LocalAws does it while it runs,
`index=True`); `uninstall()` puts moto's functions back. Nothing here changes what moto stores.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from moto.cognitoidp.models import CognitoIdpBackend
from moto.cognitoidp.utils import PAGINATION_MODEL
from moto.core.exceptions import InvalidToken
from moto.utilities.paginator import Paginator

# moto's own filter grammar (CognitoIdpBackend.list_users); the attribute names whose filtered
# answer cannot change without the pool's user dict changing.
_FILTER = re.compile(r"([\w:]+)\s*(=|\^=)\s*\"(.*)\"")
_IMMUTABLE_FILTER_NAMES = frozenset({"sub", "username"})

_LOCK = threading.Lock()


@dataclass(frozen=True)
class _Listing:
    """moto's full answer list for one listing, with each user's position in it."""

    users: list[Any]
    position: dict[str, int]
    pool_version: int

    @classmethod
    def of(cls, users: list[Any], pool_version: int) -> _Listing:
        position: dict[str, int] = {}
        for index, user in enumerate(users):
            position.setdefault(str(user.id), index)  # moto's scan stops at the first match
        return cls(users, position, pool_version)


class CountedUsers(OrderedDict[str, Any]):
    """A pool's user dict that counts its mutations and drops the lists computed from it."""

    def __init__(self, *args: Any) -> None:
        self.version = 0
        self.listings: dict[str, _Listing] = {}
        super().__init__(*args)

    def _changed(self) -> None:
        with _LOCK:
            self.version += 1
            self.listings.clear()

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self._changed()

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self._changed()

    def pop(self, *args: Any) -> Any:
        try:
            return super().pop(*args)
        finally:
            self._changed()

    def popitem(self, last: bool = True) -> tuple[str, Any]:
        try:
            return super().popitem(last)
        finally:
            self._changed()

    def clear(self) -> None:
        super().clear()
        self._changed()

    def update(self, *args: Any, **kwargs: Any) -> None:
        super().update(*args, **kwargs)
        self._changed()

    def setdefault(self, key: str, default: Any = None) -> Any:
        try:
            return super().setdefault(key, default)
        finally:
            self._changed()

    def move_to_end(self, key: str, last: bool = True) -> None:
        super().move_to_end(key, last)
        self._changed()


class CountedMembers(set[Any]):
    """A group's member set that drops the list computed from it when it changes."""

    def __init__(self, *args: Any) -> None:
        self.listing: _Listing | None = None
        self.version = 0
        super().__init__(*args)

    def _changed(self) -> None:
        with _LOCK:
            self.version += 1
            self.listing = None

    def _mutating(name: str) -> Callable[..., Any]:  # type: ignore[misc]  # a class-body helper
        def method(self: CountedMembers, *args: Any) -> Any:
            try:
                return getattr(set, name)(self, *args)
            finally:
                self._changed()

        method.__name__ = name
        return method

    add = _mutating("add")
    discard = _mutating("discard")
    remove = _mutating("remove")
    pop = _mutating("pop")
    clear = _mutating("clear")
    update = _mutating("update")
    difference_update = _mutating("difference_update")
    intersection_update = _mutating("intersection_update")
    symmetric_difference_update = _mutating("symmetric_difference_update")
    __ior__ = _mutating("__ior__")
    __iand__ = _mutating("__iand__")
    __isub__ = _mutating("__isub__")
    __ixor__ = _mutating("__ixor__")
    del _mutating


def counted_users(pool: Any) -> CountedUsers:
    users = pool.users
    if not isinstance(users, CountedUsers):
        users = pool.users = CountedUsers(users)
    return users


def counted_members(group: Any) -> CountedMembers:
    members = group.users
    if not isinstance(members, CountedMembers):
        members = group.users = CountedMembers(members)
    return members


def indexed_filter(filt: str | None) -> bool:
    """Whether a ListUsers filter's answer depends only on the pool's user dict."""
    if not filt:
        return True
    match = _FILTER.match(filt)
    return match is not None and match.group(1) in _IMMUTABLE_FILTER_NAMES


def _page(method: str, listing: _Listing, limit: Any, token: Any) -> tuple[list[Any], str | None]:
    """One page of `listing`, exactly as moto's `paginate` decorator would cut it."""
    config = PAGINATION_MODEL[method]
    paginator = Paginator(  # raises InvalidToken for an undecodable or foreign token, as moto does
        max_results=limit,
        max_results_default=config.get("limit_default"),
        starting_token=token,
        unique_attribute=config.get("unique_attribute"),
        param_values_to_check={},  # moto's wrapper: kwargs less the token and the limit
        fail_on_invalid_token=bool(config.get("fail_on_invalid_token", True)),
    )
    results = listing.users
    start = 0
    if token:
        parsed = paginator._parsed_token
        wanted = parsed.get("uniqueAttributes") if isinstance(parsed, dict) else None
        if not isinstance(wanted, str) or "|" in wanted:
            return paginator.paginate(results)  # anything unusual: moto's own scan
        found = listing.position.get(wanted)
        if found is None:
            raise InvalidToken("Resource not found!")
        start = found
    end = min(start + paginator._max_results, len(results))
    page = results[start:end]
    next_token = paginator._build_next_token(results[end]) if page and end < len(results) else None
    return page, next_token


def list_users(
    backend: Any, user_pool_id: str, filt: str, limit: Any = None, pagination_token: Any = None
) -> tuple[list[Any], str | None]:
    """`CognitoIdpBackend.list_users`, answered from the index where the filter allows."""
    if not indexed_filter(filt):
        moto = moto_function("list_users")
        answer: tuple[list[Any], str | None] = moto(
            backend, user_pool_id, filt, limit=limit, pagination_token=pagination_token
        )
        return answer
    pool = backend.describe_user_pool(user_pool_id)
    users = counted_users(pool)
    key = filt or ""
    listing = users.listings.get(key)
    if listing is None:
        version = users.version
        listing = _Listing.of(_raw("list_users")(backend, user_pool_id, filt), version)
        with _LOCK:
            if users.version == version:  # else a write came in meanwhile: use it once, keep none
                users.listings[key] = listing
    return _page("list_users", listing, limit, pagination_token)


def list_users_in_group(
    backend: Any, user_pool_id: str, group_name: str, limit: Any = None, next_token: Any = None
) -> tuple[list[Any], str | None]:
    """`CognitoIdpBackend.list_users_in_group`, answered from the index."""
    pool = backend.describe_user_pool(user_pool_id)
    group = backend.get_group(user_pool_id, group_name)
    users = counted_users(pool)
    members = counted_members(group)
    listing = members.listing
    if listing is None or listing.pool_version != users.version:
        version, member_version = users.version, members.version
        listing = _Listing.of(_raw("list_users_in_group")(backend, user_pool_id, group_name), version)
        with _LOCK:
            if users.version == version and members.version == member_version:
                members.listing = listing
    return _page("list_users_in_group", listing, limit, next_token)


_MOTO: dict[str, Callable[..., Any]] = {}
_INDEXED: dict[str, Callable[..., Any]] = {
    "list_users": list_users,
    "list_users_in_group": list_users_in_group,
}
_installs = 0


def _raw(name: str) -> Callable[..., list[Any]]:
    """moto's function under its `paginate` decorator: the whole answer list."""
    raw: Callable[..., list[Any]] = moto_function(name).__wrapped__  # type: ignore[attr-defined]
    return raw


def moto_function(name: str) -> Callable[..., Any]:
    """moto's own (paginated) function, installed or not: what the index must agree with."""
    return _MOTO.get(name) or getattr(CognitoIdpBackend, name)


def install() -> None:
    """Answer ListUsers / ListUsersInGroup from the index in this process (nests)."""
    global _installs
    with _LOCK:
        if _installs == 0:
            for name, function in _INDEXED.items():
                _MOTO[name] = getattr(CognitoIdpBackend, name)
                setattr(CognitoIdpBackend, name, function)
        _installs += 1


def uninstall() -> None:
    """Put moto's own functions back once every install() is undone."""
    global _installs
    with _LOCK:
        if _installs == 0:
            return
        _installs -= 1
        if _installs == 0:
            for name, function in _MOTO.items():
                setattr(CognitoIdpBackend, name, function)
            _MOTO.clear()


def installed() -> bool:
    return _installs > 0
