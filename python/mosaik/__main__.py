"""`python -m mosaik`: the same as the `mosaik` command."""

from mosaik.cli import main

if __name__ == "__main__":
    main()
