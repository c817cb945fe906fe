"""`python -m tunelab.cli.launch ARGS` = `tunelab train ARGS`: the entry point `accelerate launch -m` runs."""

import sys

from tunelab.cli.main import main

if __name__ == "__main__":
    sys.argv = ["tunelab", "train", *sys.argv[1:]]
    main()
