"""YOLO task packages (this fork ships detection)."""
