"""`python -m tracker` and the `tracker` command: the command line."""

import gc


def run() -> None:
    # Importing the command line makes a few hundred thousand objects and no garbage: without
    # collections meanwhile it starts about a tenth sooner.
    gc.disable()
    try:
        # imported here, inside the pause of collections
        from tracker.cli import main
    finally:
        gc.enable()
    main()


if __name__ == "__main__":
    run()
