"""Let ``python -m ultralytics ARGS`` behave like the ``yolo ARGS`` console script."""

from ultralytics.cli import entrypoint

if __name__ == "__main__":
    entrypoint()
