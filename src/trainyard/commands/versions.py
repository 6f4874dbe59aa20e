"""`trainyard promote`, `tag`, `delete`: moving aliases, labelling and removing model versions."""

from __future__ import annotations

import typer

from trainyard.commands._common import console, fmt, print_json, table
from trainyard.errors import ConfigError
from trainyard.registry.versions import describe_versions
from trainyard.registry.workspace import Workspace


def register(app: typer.Typer) -> None:
    app.command("promote")(promote)
    app.command("tag")(tag)
    app.command("delete")(delete)


def _versioned(ref: str) -> tuple[str, int]:
    """NAME@VERSION or NAME@ALIAS -> (name, version number); a bare NAME means its latest version."""
    row = Workspace.resolve().store.resolve_model(ref)
    return row["name"], row["version"]


def promote(
    ref: str = typer.Argument(..., help="The version to promote: NAME@VERSION (or NAME@ALIAS, NAME for the latest)."),
    alias: str = typer.Option("production", "--alias", "-a", help="The alias to point at it (production, staging, any name)."),
) -> None:
    """Point an alias at a version. Roll back by promoting an older version; running servers follow within seconds."""
    name, version = _versioned(ref)
    previous = Workspace.resolve().store.set_alias(name, alias, version)
    if previous == version:
        console.print(f"{name}@{alias} already points at version {version}.")
    elif previous is None:
        console.print(f"{name}@{alias} -> version {version} (new alias).")
    else:
        word = "rolled back" if version < previous else "promoted"
        console.print(f"{name}@{alias}: {word} from version {previous} to version {version}.")


def tag(
    ref: str = typer.Argument(..., help="NAME@VERSION (or NAME@ALIAS)."),
    tags: list[str] = typer.Argument(None, help="KEY=VALUE pairs (a bare KEY sets it to 'true')."),
    remove: list[str] = typer.Option(None, "--remove", "-r", help="Tag keys to remove."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Set or remove tags on a model version (team=growth, reviewed, ...)."""
    pairs = {}
    for item in tags or []:
        key, sep, value = item.partition("=")
        if not key.strip():
            raise ConfigError(f"'{item}' is not a tag.", "write KEY=VALUE or KEY, e.g. team=growth.")
        pairs[key.strip()] = value.strip() if sep else "true"
    name, version = _versioned(ref)
    result = Workspace.resolve().store.set_tags(name, version, pairs, list(remove or []))
    if as_json:
        print_json(result)
        return
    console.print(f"{name}@{version} tags: " + (", ".join(f"{k}={v}" for k, v in sorted(result.items())) or "none"))


def delete(
    ref: str = typer.Argument(..., help="NAME@VERSION to delete (an explicit version number)."),
    force: bool = typer.Option(False, "--force", help="Delete even if aliases point at it (the aliases go too)."),
) -> None:
    """Delete a model version and its artifact files."""
    import shutil

    from trainyard.registry.store import parse_ref

    name, selector = parse_ref(ref)
    if not selector or not selector.isdigit():
        raise ConfigError(f"'{ref}' does not name one version.", f"write the version number, e.g. `trainyard delete {name}@2`.")
    ws = Workspace.resolve()
    row = ws.store.delete_model_version(name, int(selector), force=force)
    path = (ws.home / row["artifact_path"]).resolve()
    removed = path.is_relative_to(ws.artifacts.resolve()) and path.is_dir()
    if removed:
        shutil.rmtree(path)
    note = f" and its artifact {row['artifact_path']}" if removed else " (its artifact folder was already gone or outside the workspace; left alone)"
    dropped = f"; removed alias(es) {', '.join(row['aliases'])}" if row["aliases"] else ""
    console.print(f"Deleted {name}@{row['version']}{note}{dropped}.")


def show_model(name: str, as_json: bool) -> None:
    """`trainyard models NAME`: every version with aliases, tags, metrics and lineage."""
    from trainyard.registry.store import parse_ref

    name = parse_ref(name)[0]
    rows = describe_versions(Workspace.resolve(), name)
    if as_json:
        print_json(rows)
        return
    console.print(table(f"Model {name}", ["version", "aliases", "family", "test metric", "score", "tags", "run", "data fingerprint", "code", "created"],
                        [[r["version"], ",".join(r["aliases"]) or "-", r["family"], r["metric"], r["test_score"],
                          ",".join(f"{k}={v}" for k, v in sorted(r["tags"].items())) or "-", r["run_id"],
                          (r["lineage"]["data_fingerprint"] or "-")[:12], _code(r["lineage"]["code"]), r["created_at"]] for r in rows]))
    for r in rows:
        lin = r["lineage"]
        test = (r.get("metrics") or {}).get("test") or {}
        console.print(f"[bold]{name}@{r['version']}[/]" + (f" ({', '.join(r['aliases'])})" if r["aliases"] else "")
                      + (f"  [red]{r['artifact_problem']}[/]" if r["artifact_problem"] else ""))
        console.print(f"  data: {lin['data_source'] or '-'}  fingerprint {lin['data_fingerprint'] or '-'}  target {lin['target'] or '-'}", highlight=False)
        console.print(f"  params: {lin['params'] or {}}", highlight=False)
        console.print("  test metrics: " + (", ".join(f"{k}={fmt(v)}" for k, v in test.items()) or "-"), highlight=False)


def _code(code: dict | None) -> str:
    code = code or {}
    text = f"trainyard {code.get('trainyard') or '?'}"
    if code.get("git_commit"):
        text += f" @{code['git_commit'][:8]}" + ("+dirty" if code.get("git_dirty") else "")
    return text
