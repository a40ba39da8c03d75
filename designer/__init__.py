"""designer: the dearpygui node editor, a thin view over an editor model (arrives with its issue)."""
