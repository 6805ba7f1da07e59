"""`edupulse user ...`, `edupulse key ...`, `edupulse accounts review`: accounts from the command line."""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Any

import click

from edupulse.cli_support import find_project, open_meta
from edupulse.conf import Settings


def _meta(ctx: click.Context) -> Any:
    settings: Settings = ctx.find_root().obj
    return open_meta(settings)


def _project_id(meta: Any, name: str) -> int:
    return int(find_project(meta, name).id)


def _user(meta: Any, email: str) -> Any:
    from edupulse.meta.accounts import AccountError

    try:
        user = meta.accounts.user_by_email(email)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    if user is None:
        raise click.ClickException(f"no user with email {email}; create one with 'edupulse user create {email}'")
    return user


@click.group("user")
def user_group() -> None:
    """Create and list users, change roles, reset passwords."""


@user_group.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice(["admin", "analyst", "viewer", "advisor"]), default=None,
              help="Role in --project.")
@click.option("--project", "project_name", default=None, help="Project the role is in.")
@click.option("--superuser", is_flag=True, help="Admin of every project (and of the organization's settings).")
@click.option("--name", default="", help="Display name.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (first line).")
@click.pass_context
def user_create(ctx: click.Context, email: str, role: str | None, project_name: str | None, superuser: bool,
                name: str, password_stdin: bool) -> None:
    """Create a user (with a role in a project); the password comes from standard input or a prompt."""
    from edupulse.auth.permissions import Role
    from edupulse.meta.accounts import AccountError

    if (role is None) != (project_name is None):
        raise click.ClickException("give --role and --project together")
    if role is None and not superuser:
        raise click.ClickException("give --role ROLE --project NAME, or --superuser")
    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else click.prompt(
        "password", hide_input=True, confirmation_prompt=True)
    meta = _meta(ctx)
    try:
        project_id = _project_id(meta, project_name) if project_name else None
        user = meta.accounts.create_user(email, password, name=name, superuser=superuser)
        if project_id is not None and role is not None:
            meta.accounts.set_role(user.id, project_id, Role(role))
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    meta.audit.record("user.create", "command line", target=user.email,
                      project_id=project_id, detail={"role": role, "superuser": superuser})
    click.echo(f"created {user.email} (id {user.id})" + (f", {role} in {project_name}" if role else "")
               + (", superuser" if superuser else ""))


@user_group.command("list")
@click.option("--project", "project_name", default=None, help="Only members of this project.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_context
def user_list(ctx: click.Context, project_name: str | None, as_json: bool) -> None:
    """List users with their roles and last activity."""
    meta = _meta(ctx)
    project_id = _project_id(meta, project_name) if project_name else None
    names = {p.id: p.name for p in meta.projects()}
    for u in meta.accounts.users(project_id):
        if as_json:
            click.echo(json.dumps(u.as_dict(), ensure_ascii=False))
            continue
        roles = ", ".join(f"{names.get(p, p)}: {r.value}" for p, r in sorted(u.roles.items()))
        state = "disabled" if u.disabled else "active"
        last = u.last_active_at.date().isoformat() if u.last_active_at else "never"
        click.echo(f"{u.id}\t{u.email}\t{state}\t{'superuser ' if u.superuser else ''}{roles}\tlast active {last}")


@user_group.command("role")
@click.argument("email")
@click.option("--project", "project_name", required=True)
@click.option("--role", type=click.Choice(["admin", "analyst", "viewer", "advisor", "none"]), required=True,
              help="none removes the user from the project.")
@click.pass_context
def user_role(ctx: click.Context, email: str, project_name: str, role: str) -> None:
    """Change a user's role in a project."""
    from edupulse.auth.permissions import Role

    meta = _meta(ctx)
    user = _user(meta, email)
    project_id = _project_id(meta, project_name)
    new = None if role == "none" else Role(role)
    before = meta.accounts.set_role(user.id, project_id, new)
    meta.audit.record("user.role", "command line", project_id=project_id, target=user.email,
                      detail={"before": before.value if before else None, "after": new.value if new else None})
    click.echo(f"{user.email} in {project_name}: {before.value if before else 'none'} -> {role}")


@user_group.command("password")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the new password from standard input.")
@click.pass_context
def user_password(ctx: click.Context, email: str, password_stdin: bool) -> None:
    """Reset a user's password (signs them out everywhere and clears a lockout)."""
    from edupulse.meta.accounts import AccountError

    meta = _meta(ctx)
    user = _user(meta, email)
    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else click.prompt(
        "new password", hide_input=True, confirmation_prompt=True)
    try:
        meta.accounts.set_password(user.id, password)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    meta.audit.record("user.password_reset", "command line", target=user.email)
    click.echo(f"password of {user.email} reset; their sessions ended")


@user_group.command("enable")
@click.argument("email")
@click.pass_context
def user_enable(ctx: click.Context, email: str) -> None:
    """Enable a disabled account."""
    meta = _meta(ctx)
    user = _user(meta, email)
    if meta.accounts.set_disabled(user.id, False):
        meta.audit.record("user.enable", "command line", target=user.email)
    click.echo(f"{user.email} is enabled")


@click.group("key")
def key_group() -> None:
    """Personal API keys."""


@key_group.command("create")
@click.argument("email")
@click.option("--scope", "scopes", multiple=True, type=click.Choice(["query", "admin"]), required=True,
              help="query and/or admin (repeat for both).")
@click.option("--name", default="key", help="What the key is for.")
@click.pass_context
def key_create(ctx: click.Context, email: str, scopes: tuple[str, ...], name: str) -> None:
    """Create a personal API key for a user; the key is printed once."""
    from edupulse.meta.accounts import parse_scopes

    meta = _meta(ctx)
    user = _user(meta, email)
    key, info = meta.accounts.create_key(user.id, name, parse_scopes(list(scopes)))
    meta.audit.record("key.create", "command line", actor_user_id=None, target=info.prefix,
                      detail={"key_id": info.id, "user": user.email, "scopes": sorted(scopes)})
    click.echo(f"key {info.id} for {user.email} ({' '.join(sorted(scopes))}): {key}   (shown only now)")


@key_group.command("list")
@click.option("--user", "email", default=None, help="Only this user's keys.")
@click.pass_context
def key_list(ctx: click.Context, email: str | None) -> None:
    """List personal API keys (prefix, scopes, last use); never the keys themselves."""
    meta = _meta(ctx)
    user_id = _user(meta, email).id if email else None
    for k in meta.accounts.keys(user_id):
        last = k.last_used_at.isoformat(timespec="seconds") if k.last_used_at else "never"
        click.echo(f"{k.id}\tuser {k.user_id}\t{k.prefix}...\t{' '.join(sorted(k.scopes))}\t{k.name}\t"
                   f"last used {last}\t{'revoked' if k.revoked else 'active'}")


@key_group.command("revoke")
@click.argument("key_id", type=int)
@click.pass_context
def key_revoke(ctx: click.Context, key_id: int) -> None:
    """Revoke a personal API key by id."""
    from edupulse.meta.accounts import AccountError

    meta = _meta(ctx)
    try:
        meta.accounts.revoke_key(key_id)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    meta.audit.record("key.revoke", "command line", target=str(key_id), detail={"key_id": key_id})
    click.echo(f"key {key_id} revoked")


@click.group("accounts")
def accounts_group() -> None:
    """Account lifecycle."""


@accounts_group.command("review")
@click.option("--dry-run", is_flag=True, help="Only show what would change.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per change.")
@click.pass_context
def accounts_review(ctx: click.Context, dry_run: bool, as_json: bool) -> None:
    """Apply the account lifecycle policy now: disable idle accounts, downgrade idle or view-only analysts."""
    from edupulse.ops import lifecycle
    from edupulse.ops.notify import Notifier

    settings: Settings = ctx.find_root().obj
    meta = _meta(ctx)
    changes = lifecycle.run(meta, dt.datetime.now(dt.UTC), dry_run=dry_run, actor="command line",
                            notifier=Notifier(meta, settings.smtp))
    for c in changes:
        if as_json:
            click.echo(json.dumps(c.__dict__, ensure_ascii=False))
        else:
            what = "disable" if c.action == "disable" else f"downgrade to viewer in project {c.project_id}"
            click.echo(f"{'would ' if dry_run else ''}{what}: {c.email} ({c.reason})")
    if not as_json:
        click.echo(f"{len(changes)} change(s){' (dry run: nothing changed)' if dry_run else ''}")
