"""The export tests' pools and readers: a pool of every kind of user, records of a snapshot,
rounds of changes. Shared by the test_export* and test_incremental modules (which imported them
from each other before)."""

from __future__ import annotations

import json
from typing import Any

from cognito_backup.chain import open_view
from cognito_backup.models import Manifest
from cognito_backup.store import SnapshotStore
from cognito_local.seed import pool_state

USERNAMES = ["alice", "bob+test", "carol.smith", "dave@example.com", "zoë", "李雷"]


def make_pool(cognito: Any, *, extra_users: int = 70, groups: int = 65, big_group: int = 65) -> str:
    pool_id: str = cognito.create_user_pool(
        PoolName="source",
        Schema=[
            {"Name": "tenant", "AttributeDataType": "String", "Mutable": False},
            {"Name": "level", "AttributeDataType": "Number", "Mutable": True},
        ],
        AutoVerifiedAttributes=["email"],
    )["UserPool"]["Id"]
    cognito.create_user_pool_client(UserPoolId=pool_id, ClientName="web", GenerateSecret=True)
    names = USERNAMES + [f"user{i:03d}" for i in range(extra_users)]
    for i, name in enumerate(names):
        attrs = [
            {"Name": "email", "Value": f"u{i}@example.com"},
            {"Name": "email_verified", "Value": "true" if i % 3 else "false"},
            {"Name": "given_name", "Value": "José" if i % 2 else "Zoë"},
            {"Name": "custom:tenant", "Value": f"t{i % 4}"},
        ]
        if i % 5 == 0:
            attrs += [
                {"Name": "phone_number", "Value": f"+1555000{i:04d}"},
                {"Name": "phone_number_verified", "Value": "false"},
            ]
        cognito.admin_create_user(
            UserPoolId=pool_id, Username=name, UserAttributes=attrs, MessageAction="SUPPRESS"
        )
        if i % 7 == 0:
            cognito.admin_disable_user(UserPoolId=pool_id, Username=name)
    for g in range(groups):
        cognito.create_group(
            UserPoolId=pool_id,
            GroupName=f"group-{g:02d}",
            Description=f"Group {g}",
            Precedence=g,
            RoleArn=f"arn:aws:iam::123456789012:role/group-{g}",
        )
    for name in names[:big_group]:
        cognito.admin_add_user_to_group(UserPoolId=pool_id, Username=name, GroupName="group-00")
    cognito.admin_add_user_to_group(UserPoolId=pool_id, Username="zoë", GroupName="group-01")
    return pool_id


def read_records(store: SnapshotStore, manifest: Manifest) -> list[dict[str, Any]]:
    """The snapshot's data records (the state index parts left out)."""
    out: list[dict[str, Any]] = []
    for part in manifest.parts:
        if part.kind == "state":
            continue
        out.extend(r.model_dump(mode="json") for r in store.iter_records(part))
    return out


def comparable(records: list[dict[str, Any]]) -> list[str]:
    """Records as sorted JSON strings: same content whatever the part boundaries."""
    return sorted(json.dumps(r, sort_keys=True) for r in records)


def view_state(store: Any, manifest_key: str) -> dict[str, Any]:
    """The pool a snapshot chain describes, in pool_state's shape (sub and status aside)."""
    view = open_view(store, manifest_key)
    users = {
        u.username: {
            "attributes": {k: v for k, v in u.attributes.items() if k != "sub"},
            "enabled": u.enabled,
        }
        for u in view.users()
    }
    groups = {
        g.name: {"description": g.description, "precedence": g.precedence, "role_arn": g.role_arn}
        for g in view.groups()
    }
    return {
        "users": users,
        "groups": groups,
        "memberships": {(m.group, m.username) for m in view.memberships()},
    }


def source_state(cognito: Any, pool_id: str) -> dict[str, Any]:
    state = pool_state(cognito, pool_id)
    return {
        "users": {
            k: {"attributes": v["attributes"], "enabled": v["enabled"]} for k, v in state["users"].items()
        },
        "groups": state["groups"],
        "memberships": state["memberships"],
    }


def change_round(cognito: Any, pool_id: str, round_no: int) -> None:
    """Add 7 users, change 10 (attributes, disable, group moves), delete 5, add and delete groups."""
    users = []
    token = None
    while True:
        page = cognito.list_users(
            UserPoolId=pool_id, Limit=60, **({"PaginationToken": token} if token else {})
        )
        users += [u for u in page["Users"]]
        token = page.get("PaginationToken")
        if not token:
            break
    names = sorted(u["Username"] for u in users)
    enabled = {u["Username"]: u["Enabled"] for u in users}
    groups = sorted(g["GroupName"] for g in cognito.list_groups(UserPoolId=pool_id, Limit=60)["Groups"])
    new_group = f"added-in-round-{round_no}"
    cognito.create_group(UserPoolId=pool_id, GroupName=new_group, Description="new", Precedence=50 + round_no)
    for i in range(7):
        name = f"r{round_no}.new{i}"
        cognito.admin_create_user(
            UserPoolId=pool_id,
            Username=name,
            UserAttributes=[
                {"Name": "email", "Value": f"{name}@example.com"},
                {"Name": "custom:tenant", "Value": "n"},
            ],
            MessageAction="SUPPRESS",
        )
        cognito.admin_add_user_to_group(UserPoolId=pool_id, Username=name, GroupName=new_group)
    off = round_no * 20
    for name in names[off : off + 4]:
        cognito.admin_update_user_attributes(
            UserPoolId=pool_id,
            Username=name,
            UserAttributes=[{"Name": "family_name", "Value": f"Changed{round_no}"}],
        )
    for name in names[off + 4 : off + 7]:
        if enabled[name]:
            cognito.admin_disable_user(UserPoolId=pool_id, Username=name)
        else:
            cognito.admin_enable_user(UserPoolId=pool_id, Username=name)
    for name in names[off + 7 : off + 10]:
        for g in cognito.admin_list_groups_for_user(UserPoolId=pool_id, Username=name)["Groups"]:
            cognito.admin_remove_user_from_group(UserPoolId=pool_id, Username=name, GroupName=g["GroupName"])
        cognito.admin_add_user_to_group(UserPoolId=pool_id, Username=name, GroupName=new_group)
    for name in names[off + 10 : off + 15]:
        cognito.admin_delete_user(UserPoolId=pool_id, Username=name)
    cognito.delete_group(UserPoolId=pool_id, GroupName=groups[round_no % len(groups)])
    cognito.update_group(UserPoolId=pool_id, GroupName=groups[-1], Description=f"edited in {round_no}")
