"""`videofusion train` as the command line runs it, in the calling process, with callbacks of a test's
own: what the tests' subprocess scripts use to watch or disturb a real run."""

from videofusion import cli
from videofusion.training import train


def run_train(argv, callbacks=()) -> None:
    """Runs `videofusion train ARGV` (absl's `app.run`, its `sys.exit` absorbed when it succeeds), with
    `callbacks` first in every phase's `fit`."""
    fit = train.fit
    train.fit = lambda run, extra_callbacks=(): fit(run, [*callbacks, *extra_callbacks])
    try:
        cli.main(["videofusion", "train", *argv])
    except SystemExit as exit:  # absl's app.run ends with sys.exit
        assert not exit.code, exit.code
    finally:
        train.fit = fit
