"""Which vector spaces are live (one per CLIP model kept current) and the index that serves each: reads go to the
active one, writes to every one kept (live.py); the model state every process reads (state.py)."""
