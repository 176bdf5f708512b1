"""`videofusion summary` (parameters, FLOPs per clip) and `videofusion report` (the ablation table)."""

from videofusion import config as config_lib
from videofusion import fileio
from videofusion.evaluation import report
from videofusion.training import summary


def test_summary_counts_parameters_and_flops(tmp_path):
    config = config_lib.demo_config("smoke")
    config.data.dir = str(tmp_path)  # no prepared data: default rates
    full = summary.summarize(config)
    config.model.update(dict(modalities="video", video_encoder="frame"))
    single_frame = summary.summarize(config)
    assert full["model"] == "audio_video_lstm_cross_attention"
    assert full["inputs"]["frames"] == [1, 4, 32, 32, 3] and full["inputs"]["waveform"] == [1, 12800]
    # The article's Flatten → Dense holds most of its parameters; the fused model's pooled_cnn has no
    # such layer, so the single-frame baseline is the bigger model but the cheaper one to run.
    assert 0 < full["parameters"] < single_frame["parameters"]
    # One 32×32 frame through the article's CNN: 2 × (30·30·32·27 + 13·13·64·288 + 2304·128) ≈ 8.38 M
    # multiply-adds' FLOPs, plus biases, activations and the small head.
    assert 8.3e6 < single_frame["flops_per_clip"] < 8.7e6 < full["flops_per_clip"]


def test_report_makes_one_row_per_run(tmp_path):
    for name, modalities, accuracy in [("frame", "video", 0.3), ("fusion", "video,audio", 1.0)]:
        config = config_lib.demo_config()
        config.model.update(dict(modalities=modalities, video_encoder="frame"))
        config_lib.save_run_config(config, str(tmp_path / name))
        fileio.write_json(str(tmp_path / name / "metrics.json"),
                          {"accuracy": accuracy, "top_k": 5, "top_k_accuracy": 1.0, "num_parameters": 1234})
    # The single-frame run's evaluation knew the kind of every clip but picked its direction at random.
    labels = ["disk-left", "disk-right", "cross-left", "cross-right"]
    fileio.write_json(str(tmp_path / "frame" / "eval" / "test" / "confusion_matrix.json"),
                      {"labels": labels, "matrix": [[1, 1, 0, 0], [2, 0, 0, 0], [0, 0, 0, 2], [0, 0, 1, 1]]})
    rows = report.ablation_table([str(tmp_path / "frame"), str(tmp_path / "fusion")]).splitlines()
    assert rows[2] == "| frame | video | frame | – | 0.300 | 1.000 (5) | 1.00 · 0.25 | 1,234 |"
    assert rows[3] == "| fusion | video,audio | frame | cross_attention | 1.000 | 1.000 (5) | – | 1,234 |"
