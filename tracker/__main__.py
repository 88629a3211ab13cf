"""`python -m tracker` and the `tracker` command: the command line."""

import gc


def run() -> None:
    # Loading the command line, and then the modules of the command that runs, makes a few hundred
    # thousand objects and no garbage: without collections meanwhile it starts about a tenth sooner.
    # They stay off until the command is found (tracker.cli's root then freezes what was made and
    # turns them back on).
    gc.disable()
    # imported here, inside the pause of collections
    from tracker.cli import main

    main()


if __name__ == "__main__":
    run()
