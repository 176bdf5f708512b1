"""`videofusion info DIR`: a prepared data folder's `dataset.json`, as a readable summary and table.

Example:

>>> print(format_info("datasets/demo/records"))  # doctest: +SKIP
datasets/demo/records: 480 clips from 480 videos, 960.0 s; 0 inputs skipped
...
"""

from videofusion import prepared_data as data


def format_info(data_dir: str) -> str:
    """The summary of `data_dir`: totals, parameters, and clips per label and split."""
    info = data.read_dataset_info(data_dir)
    counts, videos = info[data.COUNTS], info.get(data.VIDEOS, info[data.COUNTS])
    lines = [
        f"{data_dir}: {sum(counts.values())} clips from {sum(videos.values())} videos, "
        f"{info[data.TOTAL_DURATION_S]:.1f} s; {info[data.NUM_ERRORS]} inputs skipped",
        f"frames: {info[data.FPS]:g} fps, short side {info[data.SHORT_SIDE]} px; "
        f"audio: {info[data.SAMPLE_RATE]} Hz mono; "
        f"schema {info[data.SCHEMA_VERSION]}, videofusion {info[data.VIDEOFUSION_VERSION]}",
        "",
    ]
    width = max([len("label"), len("total")] + [len(label) for label in info[data.LABELS]])
    header = f"{'label':<{width}}" + "".join(f"{split:>8}" for split in data.SPLITS) + f"{'all':>8}"
    lines += [header, "-" * len(header)]
    for label in info[data.LABELS] + ["total"]:
        if label == "total":
            row = [counts[split] for split in data.SPLITS]
        else:
            row = [info[data.LABEL_COUNTS][split].get(label, 0) for split in data.SPLITS]
        lines.append(f"{label:<{width}}" + "".join(f"{n:>8}" for n in row) + f"{sum(row):>8}")
    return "\n".join(lines)
