"""Markdown + matplotlib (Agg) report of evaluation results."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from .claims import claims_from

__all__ = ["readme_table", "save_results", "write_report"]

_OFFLINE_COLUMNS = ["ndcg@10", "recall@20", "page_ndcg@12", "page_recall@12", "precision@10", "auc", "coverage@10",
                    "ild@10", "novelty@10"]


def save_results(results: dict[str, Any], path: str | Path) -> Path:
    """Write results as one JSON object (NaN written as null)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_clean(results), indent=1, sort_keys=False) + "\n")
    return path


def _clean(obj: Any) -> Any:
    if isinstance(obj, float):
        return None if math.isnan(obj) or math.isinf(obj) else obj
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return _clean(obj.item())
    return obj


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _cell(entry: dict[str, Any] | None, digits: int = 4) -> str:
    if not entry:
        return "n/a"
    value = entry.get("value", entry.get("diff"))
    ci = entry.get("ci")
    if ci and None not in ci:
        return f"{_fmt(value, digits)} [{_fmt(ci[0], digits)}, {_fmt(ci[1], digits)}]"
    return _fmt(value, digits)


def _split_parts(results: dict[str, Any]) -> tuple[dict | None, dict | None, dict | None]:
    kind = results.get("kind")
    if kind == "offline":
        return results, None, None
    if kind == "simulation":
        return None, results, None
    if kind == "tuning":
        return None, None, results
    return results.get("offline"), results.get("simulation"), results.get("tuning")


def write_report(results: dict[str, Any], out_dir: str | Path = "benchmarks/results") -> Path:
    """Write ``eval.md`` (+ ``eval_*.png`` plots, + ``eval.json``) into ``out_dir``; return the md path.

    ``results`` is what :func:`run_offline`, :func:`run_simulation` or :func:`run_tuning` returned,
    or a dict combining them under ``offline`` / ``simulation`` / ``tuning``.
    """
    import matplotlib

    matplotlib.use("Agg")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    offline, simulation, tuning = _split_parts(results)
    lines = ["# ForYou recommender evaluation", ""]
    run = (offline or simulation or {}).get("run")
    if run:
        parts = "; ".join(f"{name} {t['wall_seconds']:.0f} s wall / {t['cpu_seconds']:.0f} s CPU"
                          for name, t in run.get("parts", {}).items())
        lines += [f"Run: {run.get('workers')} worker processes, {run.get('wall_seconds'):.0f} s wall, "
                  f"{run.get('cpu_seconds'):.0f} s CPU in all (load average at the end "
                  f"{run.get('load_average', 'n/a')}); {parts}.", ""]
    lines += _summary(offline, simulation)
    if offline:
        lines += _offline_section(offline, out)
    if tuning:
        lines += _tuning_section(tuning)
    if simulation:
        lines += _simulation_section(simulation, out)
    path = out / "eval.md"
    path.write_text("\n".join(lines).rstrip() + "\n")
    if offline:
        (out / "eval_table.md").write_text(readme_table(offline))
    save_results(results, out / "eval.json")
    if not any(part.get("quick") for part in (offline, simulation) if part):
        # the relative claims of a full run: the smoke run in ``make test`` is checked against them
        save_results({"source": "eval.json", "claims": claims_from(results)}, out / "eval_claims.json")
    return path


def _summary(offline: dict | None, simulation: dict | None) -> list[str]:
    """Where ForYou's served defaults win and lose, by the paired interval, before any table."""
    wins, losses, ties = [], [], []
    for claim in claims_from({"offline": offline or {}, "simulation": simulation or {}}):
        text = f"{claim['metric']} vs {claim['baseline']} ({claim['where']}: {claim['diff']:+.4f} " \
               f"[{claim['ci'][0]:+.4f}, {claim['ci'][1]:+.4f}])"
        {"better": wins, "worse": losses, "tied": ties}[claim["verdict"]].append(text)
    if not (wins or losses or ties):
        return []
    return [
        "## Summary: `foryou` (the app's served defaults) against each baseline, paired 95% intervals",
        "",
        f"**Loses** ({len(losses)}): " + ("; ".join(losses) if losses else "nowhere") + ".",
        "",
        f"**Wins** ({len(wins)}): " + ("; ".join(wins) if wins else "nowhere") + ".",
        "",
        f"**Tied** (interval spans zero, {len(ties)}): " + ("; ".join(ties) if ties else "none") + ".",
        "",
    ]


# -- offline -----------------------------------------------------------------------------------


def _offline_section(res: dict[str, Any], out: Path) -> list[str]:
    lines = [
        f"## Offline: {res.get('dataset')}",
        "",
        f"{res.get('n_users')} users, {res.get('n_items')} items, {res.get('n_interactions')} interactions; "
        f"{res.get('positive_rule', '')}. Embedder: `{res.get('embedder', 'n/a')}`. "
        f"Bootstrap: {res.get('n_boot')} user resamples, 95% percentile intervals. "
        f"Tuning budget: {res.get('tuning_budget')} configs per method (ForYou's tuned config included) on a "
        f"validation split carved from training by the same protocol. `foryou` = the app's served defaults, "
        f"asked page by page ({res.get('page_size')} a page); `foryou_tuned` = relevance lists of "
        f"{res.get('list_length')}, tuned. Quick: {res.get('quick')}. Run time: {_fmt(res.get('seconds'), 1)} s.",
        "",
    ]
    for name, block in res.get("protocols", {}).items():
        lines += [
            f"### Protocol `{name}` ({block.get('n_eval_users')} evaluated users, {block.get('n_train')} train / "
            f"{block.get('n_test')} test events, catalogue at the cut {block.get('n_catalogue')} items)",
            "",
            "| method | " + " | ".join(_OFFLINE_COLUMNS) + " |",
            "|---|" + "---|" * len(_OFFLINE_COLUMNS),
        ]
        for method, metrics in block["methods"].items():
            lines.append(f"| {method} | " + " | ".join(_cell(metrics.get(c)) for c in _OFFLINE_COLUMNS) + " |")
        lines.append("")
        for key, ours in (("comparisons", "foryou"), ("comparisons_tuned", "foryou_tuned")):
            if block.get(key):
                lines += _comparison_table(block[key], ours)
        losses = _losses(block.get("comparisons", {}))
        lines += [f"Where `foryou` loses ({name}): " + (", ".join(losses) if losses else
                                                         "nowhere with the interval below zero") + ".", ""]
        for method, job in (block.get("jobs") or {}).items():
            ranker = job.get("ranker_training") or {}
            if "skipped" in ranker:
                lines += [f"`{method}`'s ranker in the test fit: not trained ({ranker['skipped']}).", ""]
            elif ranker:
                cand, prior = ranker.get("candidate") or {}, ranker.get("prior") or {}
                lines += [f"`{method}`'s ranker in the test fit: {ranker.get('note')} (held-out AUC "
                          f"{_fmt(cand.get('auc'))} vs the prior's {_fmt(prior.get('auc'))}, log loss "
                          f"{_fmt(cand.get('log_loss'))} vs {_fmt(prior.get('log_loss'))}; {ranker.get('n_train')} "
                          f"training / {ranker.get('n_holdout')} held-out cards).", ""]
            fused = job.get("candidate_fusion") or {}
            lines += _job_line(method, "candidate fusion", fused, "note",
                               f" (held-out NDCG@10 {_fmt(fused.get('ndcg@10'))} vs "
                               f"{_fmt(fused.get('baseline_ndcg@10'))} for the current ordering; "
                               f"{fused.get('train_users')} training / {fused.get('holdout_users')} held-out cut "
                               "users)")
            sequence = job.get("sequence_model") or {}
            lines += _job_line(method, "sequence model", sequence, "status",
                               f" (held-out recall@{sequence.get('k')} {_fmt(sequence.get('recall'))} vs popularity's "
                               f"{_fmt(sequence.get('popularity_recall'))}, {sequence.get('users_held_out')} users, "
                               f"{sequence.get('items')} items)")
        png = _plot_offline(name, block, out)
        lines += [f"![{name}]({png.name})", ""]
        if block.get("tuning"):
            lines += [f"Tuning ({block.get('validation')}, {block.get('tuning_users')} users; validation NDCG@10 "
                      "per config, best refitted on the full training part):", ""]
            lines += ["| method | best config | trials (ndcg@10) |", "|---|---|---|"]
            for m, t in block["tuning"].items():
                trials = ", ".join(_fmt(x["ndcg@10"]) for x in t["trials"])
                lines.append(f"| {m} | `{json.dumps(t['best'])}` | {trials} |")
            lines.append("")
    if res.get("notes"):
        lines += ["### Notes", ""] + [f"- {n}" for n in res["notes"]] + [""]
    return lines


_COMPARED = ("ndcg@10", "recall@20", "page_ndcg@12", "page_recall@12", "coverage@10")


def _comparison_table(comparisons: dict[str, Any], ours: str) -> list[str]:
    lines = [
        f"Paired bootstrap of **{ours} - other** (95% CI; ✔ above zero, ✘ below zero):",
        "",
        "| other | " + " | ".join(f"Δ {c}" for c in _COMPARED) + " |",
        "|---|" + "---|" * len(_COMPARED),
    ]
    for method, comp in comparisons.items():
        cells = []
        for c in _COMPARED:
            entry = comp.get(c, {})
            ci = entry.get("ci") or [None, None]
            mark = ""
            if ci[0] is not None and ci[0] > 0:
                mark = " ✔"
            elif ci[1] is not None and ci[1] < 0:
                mark = " ✘"
            cells.append(_cell(entry) + mark)
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    lines.append("")
    return lines


def _losses(comparisons: dict[str, Any]) -> list[str]:
    out = []
    for method, comp in comparisons.items():
        for c in _COMPARED:
            ci = comp.get(c, {}).get("ci") or [None, None]
            if ci[1] is not None and ci[1] < 0:
                out.append(f"{c} vs {method} ({_cell(comp[c])})")
    return out


def _job_line(method: str, what: str, job: dict, decided: str, detail: str) -> list[str]:
    """A job of the test fit in one sentence: what it decided (its ``decided`` key) with ``detail``, or why it did
    not run; nothing when it is not on record."""
    outcome = job.get(decided) or job.get("skipped") or job.get("error")
    if not outcome:
        return []
    return [f"`{method}`'s {what} in the test fit: {outcome}{detail if job.get(decided) else ''}.", ""]


def _plot_offline(split_name: str, split: dict[str, Any], out: Path) -> Path:
    import matplotlib.pyplot as plt

    metrics = ["ndcg@10", "recall@20", "page_ndcg@12", "page_recall@12"]
    methods = list(split["methods"])
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.6))
    for ax, metric in zip(axes, metrics, strict=True):
        vals = [split["methods"][m][metric]["value"] for m in methods]
        cis = [split["methods"][m][metric]["ci"] for m in methods]
        lo = [max(v - c[0], 0) if c[0] is not None else 0 for v, c in zip(vals, cis, strict=True)]
        hi = [max(c[1] - v, 0) if c[1] is not None else 0 for v, c in zip(vals, cis, strict=True)]
        colors = ["tab:red" if m.startswith("foryou") else "tab:gray" for m in methods]
        ax.bar(range(len(methods)), vals, yerr=[lo, hi], color=colors, capsize=3)
        ax.set_xticks(range(len(methods)))
        ax.set_xticklabels(methods, rotation=60, ha="right", fontsize=8)
        ax.set_title(metric)
    fig.suptitle(f"Offline metrics by method ({split_name}, 95% bootstrap CI)")
    fig.tight_layout()
    path = out / f"eval_offline_{split_name}.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


# -- tuning ------------------------------------------------------------------------------------


def _tuning_section(res: dict[str, Any]) -> list[str]:
    lines = [
        "## Tuning our recommender (validation split carved from training only)",
        "",
        f"Validation: `{res.get('validation')}`, {res.get('n_eval_users')} users. Differences are paired "
        "bootstrap 95% CIs against the default config.",
        "",
        "| variant | overrides | ndcg@10 | Δ ndcg@10 vs default | recall@20 | coverage@10 | seconds |",
        "|---|---|---|---|---|---|---|",
    ]
    for v in res.get("variants", []):
        lines.append(
            f"| {v['name']} | `{json.dumps(v['overrides'])}` | {_fmt(v['ndcg@10'])} | "
            f"{_cell(v.get('delta_ndcg@10'))} | {_fmt(v.get('recall@20'))} | {_fmt(v.get('coverage@10'))} | "
            f"{_fmt(v.get('seconds'), 1)} |"
        )
    lines.append("")
    if res.get("findings"):
        lines += ["What moved the numbers:", ""] + [f"- {f}" for f in res["findings"]] + [""]
    return lines


# -- simulation --------------------------------------------------------------------------------


def _simulation_section(res: dict[str, Any], out: Path) -> list[str]:
    lines = ["## Swipe simulator", ""]
    worlds = res.get("worlds", {res.get("world", "world"): res} if "methods" in res else {})
    lines.append(
        f"Embedder: `{res.get('embedder', 'n/a')}`. Quick: {res.get('quick')}. "
        f"Run time: {_fmt(res.get('seconds'), 1)} s. Gap share = (policy - random) / (oracle - random) "
        "watch time per session; 95% bootstrap CIs over simulated users. Every policy tried "
        f"{res.get('tuning_budget')} configs in the world's validation twin."
    )
    lines.append("")
    for name, w in worlds.items():
        lines += [
            f"### World `{name}` ({w.get('n_users')} users x {w.get('swipes')} swipes, "
            f"{w.get('n_items')} items, {w.get('n_background_events')} background events, taste shift at swipe "
            f"{w.get('shift_at')}; validation twin: {w.get('validation_users')} users)",
            "",
            "| policy | watch s/session | gap share | new-taste share after shift | likes/session | skip rate "
            "| feed ILD | topics/session | creator coverage |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for m, v in w["methods"].items():
            ad = v.get("adaptation", {})
            lines.append(
                f"| {m} | {_cell(v['watch_time_per_session'], 1)} | {_cell(v.get('gap_share'), 3)} | "
                f"{_cell(ad.get('new_taste_share'), 3)} | {_cell(v['likes_per_session'], 2)} | "
                f"{_fmt(v['skip_rate'], 3)} | {_fmt(v['feed_diversity']['ild'], 3)} | "
                f"{_fmt(v['feed_diversity']['distinct_topics_per_session'], 1)} | {_fmt(v['creator_coverage'], 3)} |"
            )
        lines.append("")
        if w.get("comparisons"):
            lines += ["Paired differences, foryou - policy (95% CI over the same simulated users; ✔ above zero, "
                      "✘ below):", ""]
            lines += ["| policy | Δ gap share | Δ watch seconds |", "|---|---|---|"]
            for m, c in w["comparisons"].items():
                cells = []
                for key, digits in (("gap_share", 3), ("watch_time_per_session", 1)):
                    entry = c.get(key, {})
                    ci = entry.get("ci") or [None, None]
                    mark = " ✔" if ci[0] is not None and ci[0] > 0 else (" ✘" if ci[1] is not None and ci[1] < 0
                                                                          else "")
                    cells.append(_cell(entry, digits) + mark)
                lines.append(f"| {m} | " + " | ".join(cells) + " |")
            lines.append("")
        if w.get("tuning"):
            lines += ["Tuning in the validation twin (watch s/session per config):", ""]
            lines += ["| policy | chosen config | trials |", "|---|---|---|"]
            for m, t in w["tuning"].items():
                trials = ", ".join(_fmt(x.get("watch_time_per_session"), 1) for x in t["trials"])
                lines.append(f"| {m} | `{json.dumps(t['best'])}` | {trials} |")
            lines.append("")
        if w.get("off_policy"):
            op = w["off_policy"]
            test = op.get("share_test", {})
            lines += [
                f"Off-policy check (SNIPS): a logging run of ForYou with its random-exposure slice at "
                f"{op.get('logging_share')}: {op.get('random_impressions')} of {op.get('impressions')} impressions "
                f"random ({_fmt(test.get('observed'), 3)}; binomial test p = {_fmt(test.get('p_value'), 3)}). "
                "Each target's mean watch ratio estimated from those slots vs the simulated truth on the same "
                "contexts:",
                "",
                "| target | SNIPS estimate | truth | truth in interval | effective n |",
                "|---|---|---|---|---|",
            ]
            for m, e in op.get("targets", {}).items():
                lines.append(f"| {m} | {_cell(e, 3)} | {_fmt(e.get('truth'), 3)} | {e.get('truth_in_interval')} | "
                             f"{_fmt(e.get('effective_n'), 1)} |")
            lines.append("")
        for png in _plot_simulation(name, w, out):
            lines += [f"![{png.stem}]({png.name})", ""]
    if res.get("notes"):
        lines += ["### Notes", ""] + [f"- {n}" for n in res["notes"]] + [""]
    return lines


def _plot_simulation(name: str, w: dict[str, Any], out: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    paths = []
    fig, ax = plt.subplots(figsize=(6, 4))
    for m, v in w["methods"].items():
        ax.plot(range(1, len(v["watch_curve"]) + 1), v["watch_curve"], label=m,
                lw=2.5 if m.startswith("foryou") else 1.2, ls="--" if m in {"oracle", "random"} else "-")
    if w.get("shift_at"):
        ax.axvline(w["shift_at"], color="k", lw=0.8, ls=":")
    ax.set_xlabel("swipe")
    ax.set_ylabel("cumulative watch time (s)")
    ax.set_title(f"Watch time per swipe ({name})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out / f"eval_sim_{name}_watch.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    paths.append(path)

    fig, ax = plt.subplots(figsize=(6, 4))
    for m, v in w["methods"].items():
        curve = v.get("adaptation", {}).get("curve")
        if curve:
            xs = v["adaptation"].get("curve_swipes") or list(range(len(curve)))
            ax.plot(xs, curve, marker="o", ms=3, label=m, lw=2.5 if m == "foryou" else 1.2,
                    ls="--" if m in {"oracle", "random"} else "-")
    ax.axhline(0.5, color="k", lw=0.8, ls=":")
    ax.set_xlabel("swipes since the user's taste changed")
    ax.set_ylabel("share of next page from the new taste's favourites")
    ax.set_title(f"Adaptation ({name})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out / f"eval_sim_{name}_adaptation.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    paths.append(path)
    return paths


# -- the README's table ----------------------------------------------------------------------------------------

_SERVED, _TUNED = "foryou", "foryou_tuned"
_LABELS = {_SERVED: "foryou (served defaults, pages of 6)", _TUNED: "foryou_tuned (relevance list of 100)"}
_README_METRICS = ("ndcg@10", "recall@20")


def _short(entry: dict[str, Any] | None, signed: bool = False) -> str:
    if not entry:
        return "n/a"
    value = entry.get("value", entry.get("diff"))
    lo, hi = (entry.get("ci") or [None, None])[:2]
    f = "{:+.3f}" if signed else "{:.3f}"
    if lo is None or hi is None:
        return f.format(value)
    return f"{f.format(value)} [{f.format(lo)}, {f.format(hi)}]"


def best_baseline(block: dict[str, Any], metric: str = "ndcg@10") -> str | None:
    """The baseline with the highest test value of ``metric`` (every baseline is tuned on validation)."""
    baselines = {m: v for m, v in block.get("methods", {}).items() if m not in (_SERVED, _TUNED)}
    if not baselines:
        return None
    return max(baselines, key=lambda m: baselines[m].get(metric, {}).get("value") or float("-inf"))


def readme_table(offline: dict[str, Any]) -> str:
    """Markdown for the README, generated from ``foryou eval offline --json`` (or the report's ``offline``): per
    protocol, every method's NDCG@10 and Recall@20 with 95% intervals, then the paired differences of the served
    defaults (and the tuned config) against the best tuned baseline."""
    lines: list[str] = []
    for protocol, block in offline.get("protocols", {}).items():
        methods = block.get("methods", {})
        order = [m for m in (_SERVED, _TUNED) if m in methods]
        order += sorted((m for m in methods if m not in order),
                        key=lambda m: -(methods[m].get("ndcg@10", {}).get("value") or 0.0))
        lines += [f"**`{protocol}`** ({block.get('n_eval_users')} users evaluated, {block.get('n_train')} train / "
                  f"{block.get('n_test')} test events)", "",
                  "| method | NDCG@10 | Recall@20 |", "|---|---|---|"]
        lines += [f"| {_LABELS.get(m, m)} | " + " | ".join(_short(methods[m].get(k)) for k in _README_METRICS) + " |"
                  for m in order]
        best = best_baseline(block)
        if best is not None:
            for ours, key in ((_SERVED, "comparisons"), (_TUNED, "comparisons_tuned")):
                comp = block.get(key, {}).get(best)
                if not comp:
                    continue
                cells = []
                for metric in _README_METRICS:
                    entry = comp.get(metric, {})
                    lo, hi = (entry.get("ci") or [None, None])[:2]
                    verdict = ("wins" if lo is not None and lo > 0 else
                               "loses" if hi is not None and hi < 0 else "tied")
                    cells.append(f"{_short(entry, signed=True)} {verdict}")
                lines.append(f"| Δ {ours} − {best} (paired) | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
