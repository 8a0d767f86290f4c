"""The summary's markdown: for each input size, the tables of SIZE_TABLES (Table 6's shape per look,
Table 6's claims on it, the recipe options' effects, the learning-rate sweep, Table 3 in detection), then the gap
to GN by size, FRN's gap split into Table 3's steps, and the gap against images seen.

A table is a function of the runs at one size (every method's, at the study's schedule) that returns
markdown lines, or none when it has nothing to show; add one to SIZE_TABLES. It picks the methods it
shows (the tables here: cells.of_methods, Table 6's FRN, GN and BN and Table 3's ablations) and the
cells' rules are in cells (column_cell, which also gives AP50 or AP75 at the lr chosen by AP)."""
import functools

from frn_det.study.summary.cells import (ABLATIONS, LOOKS, METHOD_LABELS, METHODS, OPTIONS, TABLE_METHODS, best_cell, cell, claims,
                                         column_cell, gap_rows, gaps, look_name, look_rows, mean, of_methods, schedule_lines, seeds_of,
                                         select)
from frn_det.study.summary.ablation import GAP_STEPS, PAPER_P1, attribution, has_ablations, table3
from frn_det.study.report_format import METRICS, spread
from frn_det.study.summary.runs import REFERENCE_IMGS, SMALL_IMGS, sizes_of, study_budget


def fmt(values):
    """A cell: mean ± standard deviation and each seed's value."""
    if values is None:
        return "-"
    return spread(values) + ("" if len(values) == 1 else f" ({len(values)} seeds: " + ", ".join(f"{a:.1f}" for a in values) + ")")


def diff(a, b):
    return "-" if a is None or b is None else f"{a - b:+.1f}"


def markdown(runs, curve_runs=None, diverged=()):
    """The tables of every input size, the largest first, at the study's schedule, then FRN's and BN's
    gaps to GN by size, FRN's gap split into Table 3's steps, and FRN's gap to GN against images seen
    (from curve_runs: runs and the convergence curve's). diverged: the runs stopped by a non-finite loss
    (runs.load_runs(..., diverged=True)), which the learning-rate sweep shows."""
    lines = budget_markdown(study_budget(runs), study_budget(diverged))
    return "\n".join(lines + schedule_table(runs if curve_runs is None else curve_runs))


def budget_markdown(runs, diverged=()):
    iters = sorted({r["iters"] * r["imgs"] // REFERENCE_IMGS for r in runs})
    big, small = REFERENCE_IMGS, SMALL_IMGS
    lines = [f"Reference schedule: {', '.join(map(str, iters))} iterations of {big} images (steps x {big}/m at m images "
             f"per batch, lr x m/{big}); a cell run with several seeds gives mean ± standard deviation and each seed's "
             f"AP; AP on the look's val set; (lr) is the reference learning rate at {big} images: the {big}-image "
             f"column's best of those run, which the {small}-image column takes too (x {small}/{big}); @{small} - @{big} "
             "is at that same lr. Input sizes: the images resized at load time, anchors scaled alike "
             "(tools/batch_study.py --sizes). Table 6's claims: " + CLAIMS_RULE[0].lower() + CLAIMS_RULE[1:], ""]
    sections = [(size, size_tables([r for r in runs if r["size"] == size], [r for r in diverged if r["size"] == size]))
                for size in sizes_of(runs)]
    sections = [(size, tables) for size, tables in sections if tables]
    for size, tables in sections:
        if len(sections) > 1:
            lines += [f"### {size} px", ""]
        lines += tables
    return lines + gap_by_size(runs) + attribution_table(runs)


def size_tables(runs, diverged=()):
    """Every table of SIZE_TABLES for the runs of one size; the learning-rate sweep also shows the diverged
    runs of that size."""
    tables = [functools.partial(lr_table, diverged=diverged) if table is lr_table else table for table in SIZE_TABLES]
    return [line for table in tables for line in table(runs)]


def look_tables(runs):
    """Table 6's shape per look: AP at each images-per-GPU column, a row per method and option."""
    runs = of_methods(runs)
    cols = sorted({r["imgs"] for r in runs}, reverse=True)
    lines = []
    for look, what in LOOKS.items():
        if not any(r["variant"] == look for r in runs):
            continue
        lines += [f"#### {what}", "", "| | " + " | ".join(f"AP @{m}" for m in cols) + f" | @{SMALL_IMGS} - @{REFERENCE_IMGS} |",
                  "|---|" + "---:|" * (len(cols) + 1)]
        for label, variant, method in look_rows(runs, look):
            cells = {m: column_cell(runs, variant, method, m) for m in cols}
            lines.append(f"| {label} | " + " | ".join(
                "-" if lr is None else (f"{fmt(aps)} (lr {lr:g})" if aps else f"- (not run at lr {lr:g})")
                for lr, aps in cells.values()) + f" | {diff(*(mean(cells[m][1]) if m in cells else None for m in (SMALL_IMGS, REFERENCE_IMGS)))} |")
        lines.append("")
    return lines


def options_table(runs):
    """Each recipe option's change in AP: its cell against the same lr and seeds without it."""
    runs = of_methods(runs)
    cols = sorted({r["imgs"] for r in runs}, reverse=True)
    rows = []
    for look in LOOKS:
        for suffix, (what, key) in OPTIONS.items():
            variant = f"{look}_{suffix}"
            for method in TABLE_METHODS:
                for m in cols:
                    lr, with_ = column_cell(runs, variant, method, m)
                    if with_ is None:
                        continue
                    seeds = seeds_of(runs, variant, method, m, lr)  # without: the same lr and seeds
                    without = [r["AP"] for r in select(runs, look, method, m, lr, seeds)] or None
                    rows.append(f"| {look} | {what} (`{key}`) | {method.upper()} | {m} | {lr:g} | {fmt(without)} | "
                                f"{fmt(with_)} | {diff(mean(with_), mean(without))} |")
    if not rows:
        return []
    return ["#### Recipe options (beyond the paper)", "",
            "| look | option | method | images | lr | AP without | AP with | change |", "|---|---|---|---:|---:|---:|---:|---:|",
            *rows, ""]


def lr_table(runs, diverged=()):
    """Per look where a method ran at several learning rates at 8 images (a diverged run's lr counts): AP at
    each lr, "diverged" where a run of that lr stopped on a non-finite loss, each method's best of the
    finished ones."""
    runs = of_methods(runs)
    lines = []
    for look in LOOKS:
        at_8 = [r for r in runs if r["variant"] == look and r["imgs"] == REFERENCE_IMGS]
        stopped = {}  # (method, lr) -> the iterations its diverged runs stopped at
        for r in of_methods(diverged):
            if r["variant"] == look and r["imgs"] == REFERENCE_IMGS:
                stopped.setdefault((r["method"], r["lr"]), []).append(r["iteration"])
        lrs = sorted({r["lr"] for r in at_8} | {lr for _, lr in stopped})
        lrs_of = {m: {r["lr"] for r in at_8 if r["method"] == m} | {lr for n, lr in stopped if n == m}
                  for m in TABLE_METHODS}
        if all(len(lrs_of[m]) < 2 for m in TABLE_METHODS):
            continue
        lines += [f"#### Learning rate at 8 images ({look_name(look)}, reference lr at 8 images)", "",
                  "| method | " + " | ".join(f"lr {lr:g}" for lr in lrs) + " | best |", "|---|" + "---:|" * (len(lrs) + 1)]
        for method in [*METHODS, *(m for m in ABLATIONS if lrs_of[m])]:
            best = best_cell(runs, look, method, REFERENCE_IMGS)[0]
            lines.append(f"| {method.upper()} | " + " | ".join(
                _lr_cell(cell(runs, look, method, REFERENCE_IMGS, lr), stopped.get((method, lr), []))
                for lr in lrs) + f" | {'-' if best is None else f'{best:g}'} |")
        lines.append("")
    return lines


def _lr_cell(aps, stopped):
    """Mean AP over the finished seeds of one lr, and its diverged runs: where they stopped when none
    finished, how many when some did."""
    if aps is None:
        if not stopped:
            return "-"
        return "diverged" + ("" if None in stopped else " (iteration " + ", ".join(map(str, sorted(stopped))) + ")")
    return f"{mean(aps):.1f}" + (f" ({len(stopped)} of {len(aps) + len(stopped)} diverged)" if stopped else "")


def table3_table(runs):
    """Per look with Table 3's ablations run: its rows in detection at 8 images, each at its best lr, beside
    the paper's ImageNet rows."""
    lines = []
    for look in LOOKS:
        if not has_ablations(runs, look):
            continue
        rows = table3(runs, look)
        gn = next(r["AP"] for _, method, r in rows if method == "gn")
        lines += [f"#### Table 3 in detection ({look_name(look)}, 8 images, each row at its best lr)", "",
                  "| row | lr (of those run) | AP | AP50 | AP75 | AP - GN + ReLU | paper: ImageNet P@1 | paper: - GN + ReLU |",
                  "|---|---|---:|---:|---:|---:|---:|---:|"]
        for label, method, r in rows:
            lr = "not run" if r["lr"] is None else f"{r['lr']:g} (of {', '.join(f'{x:g}' for x in r['lrs'])})"
            metrics = " | ".join("-" if r[k] is None else f"{r[k]:.1f}" for k in METRICS)
            lines.append(f"| {label} | {lr} | {metrics} | {diff(r['AP'], gn)} | {PAPER_P1[method]:.2f} | "
                         f"{PAPER_P1[method] - PAPER_P1['gn']:+.2f} |")
        lines.append("")
    return lines


def all_claims(runs):
    """Table 6's claims of the paper's FRN (claims_table) at every input size where any was run, the largest
    first, each titled with its size."""
    runs = study_budget(runs)
    tables = [line.replace("#### Table 6's claims (", f"#### Table 6's claims ({size} px, ") for size in sizes_of(runs)
              for line in claims_table([r for r in runs if r["size"] == size], options=False)]
    return [CLAIMS_RULE, "", *tables] if tables else []


CLAIMS_RULE = ("Difference of the cells' means ± the half-width of its 95% interval (Welch's t: t(0.975, df) "
               "sqrt(sd_a^2/n_a + sd_b^2/n_b)); "
               "supported or contradicted when the whole interval lies on one side of the claim's bound, else "
               "within the spread. Claims whose cells were not run are left out.")


def claims_table(runs, options=True):
    """Per look: each of Table 6's claims that was run (cells.claims; with options, also each FRN
    option's) as a difference of the table's cells (means over seeds) with its 95% interval, and
    whether the runs support it."""
    runs = of_methods(runs)
    lines = []
    for look in LOOKS:
        rows = [row for row in claims(runs, look, options) if row[-1] != "not run"]
        if not rows:
            continue
        lines += [f"#### Table 6's claims ({look_name(look)}, each method at its {REFERENCE_IMGS}-image best lr)", "",
                  "| claim | paper (Table 6) | measured | seeds | verdict |", "|---|---:|---:|---:|---|"]
        for claim, paper, a, b, d, half_width, verdict in rows:
            measured = f"{d:+.1f}" + ("" if half_width is None else f" ± {half_width:.1f}")
            lines.append(f"| {claim} | {paper:+.1f} | {measured} | {len(a)} / {len(b)} | {verdict} |")
        lines.append("")
    return lines


SIZE_TABLES = (look_tables, claims_table, options_table, lr_table, table3_table)


def attribution_table(runs):
    """Per look with Table 3's ablations run at some size: FRN - GN split into its steps at that size
    (ablation.attribution), and at every other size FRN - GN and the steps that were run there (input
    centering), each with the runs behind it."""
    lines = []
    for look in LOOKS:
        sizes = sizes_of([r for r in runs if r["variant"] == look])
        full = [s for s in sizes if has_ablations([r for r in runs if r["size"] == s], look)]
        if not full:
            continue
        lines += [f"### FRN's gap to GN, step by step ({look_name(look)}, 8 images)", "",
                  f"Each method at its own best lr; the {len(GAP_STEPS)} steps after FRN - GN add up to it (before "
                  "rounding) where all are run. AP differences, with the runs behind each.", "",
                  "| size | step | AP | runs |", "|---:|---|---:|---|"]
        for size in sizes:
            steps = attribution([r for r in runs if r["size"] == size], look)
            if size not in full:  # FRN - GN, and the steps run there
                steps = [steps[0], *(s for s in steps[1:] if s[1] is not None)]
            for what, d, behind in steps:
                lines.append(f"| {size} px | {what} | {'not run' if d is None else f'{d:+.1f}'} | "
                             + ", ".join(f"`{b}`" for b in behind) + " |")
        lines.append("")
    return lines


def gap_by_size(runs):
    """Each FRN and BN row's AP minus GN's (same look, images per GPU, table rule) at every size; none
    with one size."""
    runs = of_methods(runs)
    sizes = sorted({r["size"] for r in runs})
    if len(sizes) < 2:
        return []
    lines = ["### The gap to GN by input size", "",
             "| look | row | images | " + " | ".join(f"{s} px: AP (- GN)" for s in sizes) + " |",
             "|---|---|---:|" + "---:|" * len(sizes)]
    for look, label, variant, method, m in gap_rows(runs):
        cells = []
        for s in sizes:
            ap, gn = gaps(runs, look, variant, method, m, s)
            cells.append("-" if ap is None else f"{ap:.1f} ({diff(ap, gn)})")
        if any(c != "-" for c in cells[1:]):  # rows run at another size than the first only
            lines.append(f"| {look} | {label} | {m} | " + " | ".join(cells) + " |")
    return lines + [""]


def headline_table(runs):
    """Table 6's shape in one table (the README's): a row per look and input size, FRN, GN and BN at each
    images-per-GPU column, on the tables' cells (column_cell: mean ± standard deviation over seeds), with
    the reference lr and each cell's number of seeds."""
    runs = of_methods(study_budget(runs), METHODS)
    cols = sorted({r["imgs"] for r in runs}, reverse=True)
    at = " / ".join(f"@{m}" for m in cols)
    lines = ["| look, input side | " + " | ".join(f"{METHOD_LABELS[method]} {at}" for method in METHODS) + " |",
             "|---|" + "---:|" * len(METHODS)]
    for look in LOOKS:
        for size in sorted({r["size"] for r in runs if r["variant"] == look}):
            here = [r for r in runs if r["size"] == size]
            row = []
            for method in METHODS:
                column = [column_cell(here, look, method, m) for m in cols]
                lrs = {lr for lr, aps in column if aps}
                values = " / ".join("-" if aps is None else spread(aps) for _, aps in column)
                seeds = " / ".join("-" if aps is None else str(len(aps)) for _, aps in column)
                row.append(values + (" (lr " + ", ".join(f"{lr:g}" for lr in sorted(lrs)) + f"; seeds {seeds})" if lrs else ""))
            lines.append(f"| {look_name(look)}, {size} px | " + " | ".join(row) + " |")
    return lines


def schedule_table(runs):
    """The schedule lines (cells.schedule_lines) as a table: FRN - GN (FRN AP / GN AP) per images seen."""
    lines = schedule_lines(of_methods(runs))
    if not any(len(points) > 1 for *_, points in lines):
        return []
    seen = sorted({n for *_, points in lines for n, _, _ in points})
    table = [f"### FRN - GN against images seen ({REFERENCE_IMGS} images per batch)", "",
             "Each method at its best lr of the study's schedule at that size (the tables' cells), and both at one "
             "lr where that was run at several lengths (the study's runs and the schedule curve's, "
             "tools/study_summary.py --convergence). Cells: FRN - GN (FRN AP / GN AP).", "",
             "| look | row | size | lr FRN / GN | " + " | ".join(f"{n:,} images" for n in seen) + " |",
             "|---|---|---:|---|" + "---:|" * len(seen)]
    for look, label, size, lf, lg, points in lines:
        at = {n: (f, g) for n, f, g in points}
        table.append(f"| {look} | {label} | {size} px | {lf:g} / {lg:g} | " + " | ".join(
            f"{at[n][0] - at[n][1]:+.1f} ({at[n][0]:.1f} / {at[n][1]:.1f})" if n in at else "-" for n in seen) + " |")
    return table + [""]
