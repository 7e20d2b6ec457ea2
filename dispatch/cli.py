"""The `eldercare` command (a composition root: it may import every package)."""

from __future__ import annotations

import os
import time
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from dispatch.core.config import get_settings
from dispatch.core.jobs import QueueName

app = typer.Typer(help="Jinghai elderly-care dispatch platform.", no_args_is_help=True, add_completion=False)
console = Console()


def _logging() -> None:
    # Scrubbed output (tokens, secrets, phone numbers): see dispatch/core/logs.py.
    from dispatch.core.logs import setup_logging

    setup_logging()


@app.command()
def migrate() -> None:
    """Apply the database migrations (also done by `serve` and `up`)."""
    from dispatch.core.db import migrate as run_migrations

    run_migrations()
    console.print(f"database ready: {_safe_url(get_settings().effective_database_url)}")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (PORT).")] = None,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes.")] = 1,
    migrate_first: Annotated[bool, typer.Option("--migrate/--no-migrate")] = True,
) -> None:
    """The API (uvicorn) alone."""
    import uvicorn

    from dispatch.core.db import migrate as run_migrations
    from dispatch.core.logs import uvicorn_log_config
    from dispatch.core.redis import redis_url

    settings = get_settings()
    if migrate_first:
        run_migrations()
    redis_url()  # resolve (or start) Redis once, before uvicorn forks its workers
    uvicorn.run(
        "dispatch.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_level=settings.log_level.lower(),
        log_config=uvicorn_log_config(),
        access_log=False,
        proxy_headers=True,
        # Console frames are small JSON sent to every console: compressing each one once per
        # connection cost more CPU than the fan-out itself (bench/load.py, py-spy).
        ws_per_message_deflate=False,
        # uvicorn's websockets protocol that also lets the hub write each event's frame,
        # encoded once, straight to every console (dispatch/console/wire.py).
        ws="dispatch.console.wire:FrameProtocol",
    )


@app.command()
def worker(
    queue: Annotated[
        str | None, typer.Option(help="The one queue to serve; all of them when omitted.")
    ] = None,
    burst: Annotated[bool, typer.Option(help="Exit when the queue is empty.")] = False,
    worker_class: Annotated[str, typer.Option("--class", help="simple (default) or fork.")] = "simple",
) -> None:
    """An RQ worker. Without --queue, one worker process per platform queue."""
    if queue is None:
        from dispatch.supervisor import Child, Supervisor, eldercare_argv

        _ensure_shared_redis()
        children = [
            Child(
                f"worker:{q.value.split('-')[-1]}",
                eldercare_argv("worker", "--queue", q.value, "--class", worker_class),
            )
            for q in QueueName
        ]
        raise typer.Exit(Supervisor(children).run())
    if queue not in {q.value for q in QueueName}:
        raise typer.BadParameter(f"unknown queue {queue!r}; queues: {', '.join(q.value for q in QueueName)}")
    from workers.runner import run_worker

    _logging()
    run_worker(queue, burst=burst, worker_class=worker_class)


@app.command()
def scheduler() -> None:
    """The `rq cron` scheduler: outbox relay, sweeper, plans, welfare guarantee, statistics rollups."""
    from workers.runner import run_scheduler

    _logging()
    run_scheduler()


@app.command()
def seed(
    demo: Annotated[bool, typer.Option("--demo", help="Seed the Jinghai demo district.")] = False,
    elders: Annotated[int, typer.Option(help="How many demo elders.")] = 2000,
    history: Annotated[
        int, typer.Option(min=0, max=3660, help="Also seed this many days of service history (once).")
    ] = 0,
) -> None:
    """Seed demo data (idempotent)."""
    if not demo:
        raise typer.BadParameter("nothing to seed: pass --demo")
    _seed_demo(elders)
    if history:
        _seed_history(history)  # issue 5: synthetic history for the manager page


def _seed_history(days: int) -> None:
    from dispatch.core.db import session_scope
    from dispatch.demo.history import seed_history

    started = time.monotonic()
    with Progress(
        TextColumn("[bold]{task.description:>10}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console,
    ) as progress:  # fmt: skip
        tasks: dict[str, TaskID] = {}

        def note(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=total)
            progress.update(tasks[stage], completed=done)

        with session_scope() as session:
            report = seed_history(session, days=days, progress=note)
    if report.skipped:
        console.print("history already seeded (nothing added)")
        return
    console.print(
        f"history: {report.days} days, {report.plans} plans, {report.requests} requests, {report.visits} visits, "
        f"{report.ratings} ratings, {report.welfare_checks} welfare checks in {time.monotonic() - started:.1f} s"
    )


def _seed_demo(elders: int) -> None:
    from dispatch.core.db import migrate as run_migrations
    from dispatch.core.db import session_scope
    from dispatch.demo.seed import seed_demo

    run_migrations()
    with Progress(
        TextColumn("[bold]{task.description:>10}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console,
    ) as progress:  # fmt: skip
        tasks: dict[str, TaskID] = {}

        def note(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=total)
            progress.update(tasks[stage], completed=done)

        with session_scope() as session:
            report = seed_demo(session, elders=elders, progress=note)
    console.print(
        f"seeded: {report.providers} providers, {report.caregivers} caregivers, "
        f"{report.elders} elders, {report.users} accounts (existing rows were kept)"
    )


@app.command("create-user")
def create_user(
    role: Annotated[str, typer.Option(help="admin, manager, operator, provider or family")],
    username: Annotated[str, typer.Option()],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True)],
    provider: Annotated[int | None, typer.Option(help="Provider id (provider accounts).")] = None,
    caregiver: Annotated[int | None, typer.Option(help="Caregiver id (optional, provider accounts).")] = None,
    elder: Annotated[int | None, typer.Option(help="Elder id to link (family accounts).")] = None,
    phone: Annotated[str | None, typer.Option(help="Phone number (family accounts: caller lookup).")] = None,
) -> None:
    """Create an account."""
    from pydantic import ValidationError

    from dispatch.accounts import service as account_service
    from dispatch.accounts.schemas import UserCreate
    from dispatch.core.db import migrate as run_migrations
    from dispatch.core.db import session_scope
    from dispatch.core.errors import DomainError
    from dispatch.elders.models import Elder, FamilyLink

    run_migrations()
    try:
        user_in = UserCreate(
            username=username,
            password=password,
            role=role,
            phone=phone,
            provider_id=provider,
            caregiver_id=caregiver,
        )  # type: ignore[arg-type]
        with session_scope() as session:
            user = account_service.create_user(session=session, user_in=user_in)
            if elder is not None:
                if user_in.role != "family":
                    raise typer.BadParameter("--elder is for family accounts")
                if session.get(Elder, elder) is None:
                    raise typer.BadParameter(f"elder {elder} does not exist")
                assert user.id is not None
                session.add(FamilyLink(elder_id=elder, user_id=user.id))
            console.print(f"created {user.role} account {user.username!r} (id {user.id})")
    except ValidationError as exc:
        raise typer.BadParameter("; ".join(e["msg"] for e in exc.errors())) from None
    except DomainError as exc:
        console.print(f"[red]{exc.detail}[/red]")
        raise typer.Exit(1) from None


@app.command()
def up(
    demo: Annotated[bool, typer.Option("--demo", help="Seed the Jinghai demo district first.")] = False,
) -> None:
    """Everything on one machine: Redis (embedded unless REDIS_URL), API, workers, cron scheduler."""
    from dispatch.core.db import migrate as run_migrations
    from dispatch.core.redis import EmbeddedRedis
    from dispatch.supervisor import Child, Supervisor, eldercare_argv

    settings = get_settings()
    embedded = None
    if not settings.redis_url:
        embedded = EmbeddedRedis((settings.var_dir / "redis").resolve())
        os.environ["REDIS_URL"] = embedded.start()
        console.print(f"embedded Redis at {os.environ['REDIS_URL']}")
    try:
        run_migrations()
        if demo:
            _seed_demo(2000)
        env = {"REDIS_URL": os.environ.get("REDIS_URL", settings.redis_url)}
        children = [Child("api", eldercare_argv("serve", "--no-migrate"), env)]
        children += [
            Child(f"worker:{q.value.split('-')[-1]}", eldercare_argv("worker", "--queue", q.value), env)
            for q in QueueName
        ]
        children.append(Child("scheduler", eldercare_argv("scheduler"), env))
        Supervisor(children).run(on_started=lambda: _welcome(demo))
    finally:
        if embedded is not None:
            embedded.stop()


def _welcome(demo: bool) -> None:
    import urllib.error
    import urllib.request

    from dispatch.demo.seed import DEMO_ACCOUNTS

    settings = get_settings()
    url = f"http://{settings.host}:{settings.port}"
    deadline = time.monotonic() + 60
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via a proxy
    while time.monotonic() < deadline:  # wait until the API answers before inviting anyone in
        try:
            with opener.open(f"{url}/readyz", timeout=1) as answer:
                if answer.status == 200:
                    break
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    console.print(f"\n[bold green]eldercare is running at {url}[/bold green]  (API docs: {url}/docs)")
    if demo:
        table = Table(title="demo accounts")
        table.add_column("role")
        table.add_column("username")
        table.add_column("password")
        for username, password, role in DEMO_ACCOUNTS:
            table.add_row(role.value, username, password)
        console.print(table)
    console.print("Press Ctrl-C to stop everything.\n")


def _ensure_shared_redis() -> None:
    """Resolve Redis once here so every child worker uses the same server."""
    from dispatch.core.redis import redis_url

    os.environ["REDIS_URL"] = redis_url()


def _safe_url(url: str) -> str:
    """A database URL without its password, for printing."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def main() -> None:
    from dispatch.core.memory import use_one_malloc_arena

    use_one_malloc_arena()  # before any thread starts: see dispatch/core/memory.py
    app()


if __name__ == "__main__":
    main()
