"""`videofusion info DIR`: a prepared data folder's `dataset.json`, as a readable summary and table.

Example:

>>> print(format_info("datasets/demo/records"))  # doctest: +SKIP
datasets/demo/records: 480 clips from 480 videos, 960.0 s; 0 inputs skipped
...
"""

from videofusion import manifest, prepare


def format_info(data_dir: str) -> str:
    """The summary of `data_dir`: totals, parameters, and clips per label and split."""
    info = prepare.read_dataset_info(data_dir)
    counts, videos = info["counts"], info.get("videos", info["counts"])
    lines = [
        f"{data_dir}: {sum(counts.values())} clips from {sum(videos.values())} videos, "
        f"{info['total_duration_s']:.1f} s; {info['num_errors']} inputs skipped",
        f"frames: {info['fps']:g} fps, short side {info['short_side']} px; audio: {info['sample_rate']} Hz mono; "
        f"schema {info['schema_version']}, videofusion {info['videofusion_version']}",
        "",
    ]
    width = max([len("label"), len("total")] + [len(label) for label in info["labels"]])
    header = f"{'label':<{width}}" + "".join(f"{split:>8}" for split in manifest.SPLITS) + f"{'all':>8}"
    lines += [header, "-" * len(header)]
    for label in info["labels"] + ["total"]:
        if label == "total":
            row = [counts[split] for split in manifest.SPLITS]
        else:
            row = [info["label_counts"][split].get(label, 0) for split in manifest.SPLITS]
        lines.append(f"{label:<{width}}" + "".join(f"{n:>8}" for n in row) + f"{sum(row):>8}")
    return "\n".join(lines)
