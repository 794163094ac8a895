"""Model families built on the engine (this fork ships YOLO)."""
